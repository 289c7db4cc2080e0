"""`$safeguarding-summary`: the "Think Family" summary of a child, as a `collection` Bundle
of live records (the child, its flags, conditions and relatives, its linked parents' and
siblings' records and safeguarding flags) and an OperationOutcome of warnings. Never stored.

Scopes: finding the child is a read of its Patient (`Patient/x/$...`, Patient.r) or a search
by identifier (`Patient/$...?identifier=`, Patient.s); gathering its flags is a search of Flag
(Flag.s), the summary's purpose. The other types it gathers appear as far as the client may
read them, like any `_include` (`app.access.visibility`).

Spec: http://hl7.org/fhir/R4/operations.html#executing, http://hl7.org/fhir/R4/bundle.html
"""

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import Invalid
from app.fhir import auditing, permissions, sightings, wire
from app.fhir.bundles import assembly
from app.fhir.context import AppContext, app_context
from app.fhir.search.values import split_escaped
from app.flags import summary
from app.flags.summary_warnings import Limits
from app.nhs import NHS_NUMBER_SYSTEM, nhs_number_is_valid
from app.records import reads

OPERATION = "$safeguarding-summary"
HTML_FORMATS = frozenset({"html", "text/html"})
# The page runs no script and loads nothing: only its own inline styles are allowed.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Vary": "Accept",
}
VARY = {"Vary": "Accept"}  # one URL answers the Bundle or the page by Accept
EXAMPLE = f"{NHS_NUMBER_SYSTEM}|9449306753"


def _terms(context: AppContext) -> summary.Terms:
    settings = context.settings
    limits = Limits(
        settings.summary_was_not_brought_threshold,
        settings.summary_was_not_brought_window_days,
        datetime.now(UTC).date(),
    )
    return summary.Terms(context.vocabulary, context.base, limits)


def _identifier(request: Request) -> tuple[str, str]:
    """The `identifier` parameter as (system, value); 400 naming it when malformed."""
    given = request.query_params.getlist("identifier")
    if len(given) != 1:
        raise Invalid.of(f"give the child's identifier once, as identifier={EXAMPLE}", "identifier")
    if "\x00" in given[0]:
        raise Invalid.of("identifier contains a NUL character", "identifier")
    parts = split_escaped(given[0], "|")
    if len(parts) != 2 or not all(parts):
        raise Invalid.of(f"identifier must be system|value, e.g. {EXAMPLE}", "identifier")
    system, value = parts
    if system == NHS_NUMBER_SYSTEM and not nhs_number_is_valid(value):
        raise Invalid.of(f"identifier: '{value}' is not a valid NHS number", "identifier")
    return system, value


def _audited(request: Request, found: summary.Summary) -> summary.Summary:
    """Every Patient whose data the summary includes, in the request's trail; the children
    whose Flags it shows, for the access notification (`sightings`)."""
    auditing.held_data_of(request, (entry.patient_id for entry in found.entries))
    shown = (entry.patient_id for entry in found.entries if entry.resource_type == "Flag")
    sightings.saw_flags_of(request, shown)
    return found


def _bundle(base: str, found: summary.Summary) -> bytes:
    """The summary as a `collection` Bundle (http://hl7.org/fhir/R4/bundle.html#collection)."""
    held = [(entry.reference, entry.body) for entry in found.entries]
    return assembly.collection(base, held, found.outcome)


def _wants_page(request: Request) -> bool:
    """Whether the caller asks for the HTML page: `_format=html` (or text/html), else an
    Accept naming text/html before any FHIR JSON type (as a browser does). Otherwise the
    Accept header must allow FHIR JSON (406)."""
    requested = request.query_params.get("_format")
    if requested is not None:
        if wire.media_type(requested) in HTML_FORMATS:
            return True
    else:
        offered = [
            wire.media_type(item) for item in (request.headers.get("accept") or "").split(",")
        ]
        if "text/html" in offered:
            before = offered[: offered.index("text/html")]
            if not set(before) & wire.JSON_TYPES:
                return True
    wire.check_accept(request)
    return False


def _answer(request: Request, context: AppContext, found: summary.Summary, page: bool) -> Response:
    """The Bundle, or the page a person reads (no script, nothing loaded from elsewhere)."""
    if not page:
        return wire.json_response(request, _bundle(context.base, found), headers=VARY)
    return Response(
        found.page(context.vocabulary),
        media_type="text/html; charset=utf-8",
        headers=PAGE_HEADERS,
    )


async def summary_of_patient(request: Request) -> Response:
    """$safeguarding-summary on a Patient (http://hl7.org/fhir/R4/operations.html#executing)."""
    page = _wants_page(request)
    permissions.permit(request, "Patient", "read")
    permissions.permit(request, "Flag", "search-type")
    logical_id = wire.known_id("Patient", request.path_params["logical_id"])
    context = app_context(request)
    async with context.searching(request) as repository:
        current = await reads.read(repository, "Patient", logical_id)
        assert current.body is not None
        child = summary.held("Patient", logical_id, current.body, logical_id)
        found = _audited(request, await summary.for_patient(repository, child, _terms(context)))
    sightings.saw_flags_of(request, (logical_id,))
    await sightings.tell(request)
    return _answer(request, context, found, page)


async def summary_by_identifier(request: Request) -> Response:
    """$safeguarding-summary on the Patient type, of the one Patient with `identifier`
    (http://hl7.org/fhir/R4/operations.html#executing)."""
    page = _wants_page(request)
    permissions.permit(request, "Patient", "search-type")
    permissions.permit(request, "Flag", "search-type")
    system, value = _identifier(request)
    context = app_context(request)
    async with context.searching(request) as repository:
        found = await summary.for_identifier(repository, system, value, _terms(context))
    _audited(request, found)
    sightings.saw_flags_of(request, (e.patient_id for e in found.entries[:1]))
    await sightings.tell(request)
    return _answer(request, context, found, page)


ROUTES = [
    Route(
        f"/fhir/Patient/{{logical_id}}/{OPERATION}",
        summary_of_patient,
        methods=["GET"],
        name="safeguarding_summary",
    ),
    Route(
        f"/fhir/Patient/{OPERATION}",
        summary_by_identifier,
        methods=["GET"],
        name="safeguarding_summary_by_identifier",
    ),
]
