"""The audit trail over FHIR: AuditEvent read and search-type, for auditors only; every other
method, and history, is 405 for every caller, before any scope is looked at.

An AuditEvent is written once, by the server, and never changed: create, update, patch and
delete (conditional or not) are 405 with `Allow`. History is 405 too, not 404: the type is
served and the URL well-formed, the interaction is one this server does not offer on it (an
AuditEvent has one version), as the CapabilityStatement says.
Spec: http://hl7.org/fhir/R4/auditevent.html, http://hl7.org/fhir/R4/http.html
"""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Caller
from app.access.scopes import Interaction, require
from app.audit.searchset import searchset
from app.errors import Forbidden, NotFound
from app.fhir import auditing, wire
from app.fhir.context import app_context
from app.fhir.outcomes import ReadOnly
from app.fhir.routes import form_pairs
from app.registry.audit import AUDIT_EVENT
from app.storage import audit_search as storage

PATH = f"/fhir/{AUDIT_EVENT}"
NEVER_WRITTEN = f"{AUDIT_EVENT}s are recorded by the server and never changed through the API"
NO_HISTORY = f"{AUDIT_EVENT} history is not offered (an {AUDIT_EVENT} has one version)"


def auditor(request: Request, interaction: Interaction) -> Caller:
    """The caller, if an auditor whose scopes allow `interaction` on AuditEvent; 403 if not."""
    caller = app_context(request).caller(request)
    if caller.role != "auditor":
        text = f"only auditors may read the audit trail ({AUDIT_EVENT}); this client is not one"
        raise Forbidden.of(text)
    require(caller, AUDIT_EVENT, interaction)
    return caller


async def read_audit_event(request: Request) -> Response:
    """read (http://hl7.org/fhir/R4/http.html#read) of an AuditEvent, as recorded."""
    wire.check_accept(request)
    auditor(request, "read")
    audit_id = wire.known_id(AUDIT_EVENT, request.path_params["logical_id"])
    async with app_context(request).store.db.reader() as conn:
        found = await storage.read(conn, audit_id)
    if found is None:
        raise NotFound.of(f"{AUDIT_EVENT}/{audit_id} is not known")
    auditing.read_one(request, AUDIT_EVENT, audit_id, None)
    headers = {"ETag": wire.etag(1), "Last-Modified": wire.http_date(found.recorded)}
    return wire.json_response(request, found.body, headers=headers)


async def search_audit_events(request: Request) -> Response:
    """search-type (http://hl7.org/fhir/R4/http.html#search) of the audit trail."""
    wire.check_accept(request)
    caller = auditor(request, "search-type")
    pairs = list(request.query_params.multi_items())
    return wire.json_response(request, await searchset(request, caller, pairs))


async def search_audit_events_post(request: Request) -> Response:
    """search-type by POST with a form body (http://hl7.org/fhir/R4/http.html#search)."""
    wire.check_accept(request)
    caller = auditor(request, "search-type")
    return wire.json_response(request, await searchset(request, caller, await form_pairs(request)))


# Before the generic /fhir/{resource_type} routes, which would take these paths; each guard
# takes every method its path's own routes do not.
ROUTES: list[Route] = [
    Route(f"{PATH}/_history", ReadOnly(NO_HISTORY, ""), include_in_schema=False),
    Route(f"{PATH}/{{logical_id}}/_history", ReadOnly(NO_HISTORY, ""), include_in_schema=False),
    Route(
        f"{PATH}/{{logical_id}}/_history/{{version}}",
        ReadOnly(NO_HISTORY, ""),
        include_in_schema=False,
    ),
    Route(f"{PATH}/_search", search_audit_events_post, methods=["POST"]),
    Route(f"{PATH}/_search", ReadOnly("_search takes POST", "POST"), include_in_schema=False),
    Route(f"{PATH}/{{logical_id}}", read_audit_event, methods=["GET"]),
    Route(f"{PATH}/{{logical_id}}", ReadOnly(NEVER_WRITTEN, "GET, HEAD"), include_in_schema=False),
    Route(PATH, search_audit_events, methods=["GET"]),
    Route(PATH, ReadOnly(NEVER_WRITTEN, "GET, HEAD"), include_in_schema=False),
]
