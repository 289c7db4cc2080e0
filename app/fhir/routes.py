"""One short function per FHIR interaction: parse -> one service call -> render.

Spec: http://hl7.org/fhir/R4/http.html
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.criteria import Query
from app.errors import Invalid, Issue, NotFound, UnsupportedMediaType
from app.fhir import auditing, history, permissions, sightings, wire
from app.fhir.bundles import idempotency
from app.fhir.context import AppContext, app_context
from app.fhir.outcomes import information
from app.fhir.patching import fhirpath_patcher, json_patcher
from app.fhir.permissions import Interaction
from app.fhir.resources import validate_structure
from app.fhir.search import options as search_options
from app.fhir.search import parsing as search
from app.fhir.search import running as searching
from app.records import reads, service
from app.records.reads import Repository
from app.records.service import Conditional, DeleteResult, WriteResult
from app.records.writing import prepare
from app.registry import COMPARTMENT_MEMBERS

Endpoint = Callable[[Request], Awaitable[Response]]
ROUTES: list[Route] = []
FORM = frozenset({"application/x-www-form-urlencoded"})


def _route(path: str, method: str, name: str | None = None) -> Callable[[Endpoint], Endpoint]:
    """Register an endpoint at `/fhir{path}` as a plain Starlette route.

    FastAPI's parameter machinery costs ~50 us a request and these endpoints take only the
    request; `app.openapi` documents them from its own tables.
    """

    def register(endpoint: Endpoint) -> Endpoint:
        route = Route(f"/fhir{path}", endpoint, methods=[method], name=name or endpoint.__name__)
        ROUTES.append(route)
        return endpoint

    return register


def _conditional(request: Request, resource_type: str, query: str | None = None) -> Conditional:
    pairs = (
        parse_qsl(query, keep_blank_values=True)
        if query is not None
        else list(request.query_params.multi_items())
    )
    parsed = search.conditional(resource_type, pairs, app_context(request).base)
    return Conditional(Query(resource_type, parsed.criteria, 2), parsed.normalised)


def _if_none_exist(request: Request, resource_type: str) -> Conditional | None:
    header = request.headers.get("if-none-exist")
    if header is None:
        return None
    return _conditional(request, resource_type, header.split("?", 1)[-1])


def _written(request: Request, result: WriteResult, warnings: Sequence[Issue] = ()) -> Response:
    version = result.version
    headers = wire.version_headers(app_context(request).base, result.resource_type, version)
    status = 201 if result.created else 200
    preference = wire.prefer(request, "return")
    if preference == "minimal":
        return Response(status_code=status, headers=headers)
    if preference == "OperationOutcome":
        text = "created" if result.created else "existing" if result.existing else "updated"
        note = information(f"{result.resource_type}/{version.logical_id} {text}", warnings)
        return wire.json_response(request, note, status, headers)
    assert version.body is not None
    return wire.json_response(request, version.body, status, headers)


def _deleted(request: Request, result: DeleteResult, warnings: Sequence[Issue] = ()) -> Response:
    if result.version is None:
        return wire.json_response(request, information("nothing to delete", warnings), 200)
    text = f"deleted {result.resource_type}/{result.logical_id}"
    headers = {"ETag": wire.etag(result.version.version_id)}
    return wire.json_response(request, information(text, warnings), 200, headers)


async def _write_once(
    request: Request,
    context: AppContext,
    write: Callable[[Repository], Awaitable[WriteResult]],
    warnings: Sequence[Issue] = (),
) -> Response:
    if idempotency.request_id(request) is None:  # rendered after the commit, not under it
        return _written(request, await context.write(request, write), warnings)

    async def work(repository: Repository) -> Response:
        return _written(request, await write(repository), warnings)

    return await idempotency.write_once(request, context, work)


async def _delete_once(
    request: Request,
    context: AppContext,
    delete: Callable[[Repository], Awaitable[DeleteResult]],
    warnings: Sequence[Issue] = (),
) -> Response:
    if idempotency.request_id(request) is None:
        return _deleted(request, await context.write(request, delete), warnings)

    async def work(repository: Repository) -> Response:
        return _deleted(request, await delete(repository), warnings)

    return await idempotency.write_once(request, context, work)


def _type(request: Request, interaction: Interaction) -> str:
    """The URL's resource type, once the caller's scopes allow `interaction` on it."""
    resource_type = wire.require_type(request.path_params["resource_type"])
    permissions.permit(request, resource_type, interaction)
    return resource_type


def _instance(request: Request, interaction: Interaction) -> tuple[str, str]:
    resource_type = _type(request, interaction)
    return resource_type, wire.known_id(resource_type, request.path_params["logical_id"])


async def _resource(request: Request, interaction: Interaction) -> tuple[str, dict[str, Any]]:
    wire.check_accept(request)
    resource_type = _type(request, interaction)
    limit = app_context(request).settings.max_body_bytes
    return resource_type, await wire.resource_body(request, resource_type, limit)


@_route("/metadata", "GET")
async def metadata(request: Request) -> Response:
    """capabilities (http://hl7.org/fhir/R4/http.html#capabilities)."""
    wire.check_accept(request)
    return wire.json_response(request, app_context(request).capability)


@_route("/_history", "GET")
async def history_system(request: Request) -> Response:
    """history-system (http://hl7.org/fhir/R4/http.html#history); `_type` limits it."""
    # No scope of its own: the types the caller may not read are left out inside the SQL.
    types = search_options.history_types(request.query_params.get("_type"))
    return await history.page(request, "_history", types, None)


@_route("/{resource_type}/_history", "GET")
async def history_type(request: Request) -> Response:
    """history-type (http://hl7.org/fhir/R4/http.html#history)."""
    resource_type = _type(request, "history-type")
    return await history.page(request, f"{resource_type}/_history", (resource_type,), None)


@_route("/{resource_type}/{logical_id}/_history", "GET")
async def history_instance(request: Request) -> Response:
    """history-instance (http://hl7.org/fhir/R4/http.html#history)."""
    resource_type, logical_id = _instance(request, "history-instance")
    path = f"{resource_type}/{logical_id}/_history"
    return await history.page(request, path, (resource_type,), logical_id)


@_route("/{resource_type}/{logical_id}/_history/{version}", "GET")
async def vread(request: Request) -> Response:
    """vread (http://hl7.org/fhir/R4/http.html#vread)."""
    wire.check_accept(request)
    resource_type, logical_id = _instance(request, "vread")
    version = request.path_params["version"]
    version_id = wire.version_number(version)
    if version_id is None:
        raise NotFound.of(f"{resource_type}/{logical_id}/_history/{version} is not known")
    context = app_context(request)
    async with context.reading(request) as repository:
        found = await reads.vread(repository, resource_type, logical_id, version_id)
    assert found.body is not None
    auditing.read_one(request, resource_type, logical_id, found.patient_id, version_id)
    headers = wire.version_headers(context.base, resource_type, found)
    del headers["Location"]
    return wire.json_response(request, found.body, headers=headers)


@_route("/{resource_type}/{logical_id}", "GET")
async def read(request: Request) -> Response:
    """read (http://hl7.org/fhir/R4/http.html#read)."""
    wire.check_accept(request)
    resource_type, logical_id = _instance(request, "read")
    async with app_context(request).reading(request) as repository:
        current = await reads.read(repository, resource_type, logical_id)
    auditing.read_one(request, resource_type, logical_id, current.patient_id)
    if resource_type == "Flag":
        sightings.saw_flags_of(request, (current.patient_id,))
        await sightings.tell(request)
    headers = {
        "ETag": wire.etag(current.version_id),
        "Last-Modified": wire.http_date(current.last_updated),
    }
    assert current.body is not None
    return wire.json_response(request, current.body, headers=headers)


@_route("/{resource_type}", "GET")
async def search_type(request: Request) -> Response:
    """search-type (http://hl7.org/fhir/R4/http.html#search)."""
    wire.check_accept(request)
    resource_type = _type(request, "search-type")
    pairs = list(request.query_params.multi_items())
    return await searching.run(request, resource_type, pairs, resource_type)


@_route("/{resource_type}/_search", "POST")
async def search_post(request: Request) -> Response:
    """search-type by POST with a form body (http://hl7.org/fhir/R4/http.html#search)."""
    wire.check_accept(request)
    resource_type = _type(request, "search-type")
    pairs = await form_pairs(request)
    return await searching.run(request, resource_type, pairs, resource_type)


async def form_pairs(request: Request) -> list[tuple[str, str]]:
    """The parameters of a search by POST: the URL's, then the form body's (if any)."""
    limit = app_context(request).settings.max_body_bytes
    has_body = (
        "content-type" in request.headers or request.headers.get("content-length", "0") != "0"
    )
    raw = await wire.read_body(request, limit, FORM) if has_body else b""
    try:
        form = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        raise Invalid.of("the body is not an application/x-www-form-urlencoded form") from None
    return [*request.query_params.multi_items(), *form]


async def search_compartment(request: Request) -> Response:
    """Patient compartment search (http://hl7.org/fhir/R4/compartmentdefinition-patient.html)."""
    wire.check_accept(request)
    resource_type = request.url.path.rstrip("/").rsplit("/", 1)[-1]  # a search of this type
    permissions.permit(request, resource_type, "search-type")
    patient_id = wire.known_id("Patient", request.path_params["logical_id"])
    pairs = list(request.query_params.multi_items())
    path = f"Patient/{patient_id}/{resource_type}"
    return await searching.run(request, resource_type, pairs, path, compartment=patient_id)


for _member in COMPARTMENT_MEMBERS:
    _route(f"/Patient/{{logical_id}}/{_member}", "GET", f"search_patient_{_member.lower()}")(
        search_compartment
    )


@_route("/{resource_type}", "POST")
async def create(request: Request) -> Response:
    """create and conditional create (http://hl7.org/fhir/R4/http.html#create)."""
    resource_type, body = await _resource(request, "create")
    ignored = wire.unused_parameters(request, "create")
    body.pop("id", None)
    validate_structure(resource_type, body)
    condition = _if_none_exist(request, resource_type)
    context = app_context(request)
    prepared = prepare(
        body, context.base, vocabulary=context.vocabulary, caller=context.caller(request)
    )
    return await _write_once(
        request,
        context,
        lambda repository: service.create(repository, prepared, condition),
        ignored,
    )


@_route("/{resource_type}/{logical_id}", "PUT")
async def update(request: Request) -> Response:
    """update and update-as-create (http://hl7.org/fhir/R4/http.html#update)."""
    resource_type, body = await _resource(request, "update")
    ignored = wire.unused_parameters(request, "update")
    logical_id = wire.require_id(request.path_params["logical_id"])
    if body.get("id") != logical_id:
        raise Invalid.of(
            f"the body's id ({body.get('id')!r}) must equal the id in the URL ({logical_id})",
            f"{resource_type}.id",
        )
    validate_structure(resource_type, body)
    version = wire.if_match(request)
    context = app_context(request)
    caller = context.caller(request)
    prepared = prepare(body, context.base, logical_id, vocabulary=context.vocabulary, caller=caller)

    async def write(repository: Repository) -> WriteResult:
        return permissions.created(caller, await service.update(repository, prepared, version))

    return await _write_once(request, context, write, ignored)


@_route("/{resource_type}", "PUT")
async def conditional_update(request: Request) -> Response:
    """Conditional update (http://hl7.org/fhir/R4/http.html#cond-update)."""
    resource_type, body = await _resource(request, "update")
    if "id" in body:
        wire.require_id(str(body["id"]), f"{resource_type}.id")
    validate_structure(resource_type, body)
    condition = _conditional(request, resource_type)
    version = wire.if_match(request)
    context = app_context(request)
    caller = context.caller(request)

    async def write(repository: Repository) -> WriteResult:
        result = await service.conditional_update(
            repository, body, condition, context.base, version, vocabulary=context.vocabulary
        )
        return permissions.created(caller, result)

    return await _write_once(request, context, write)


@_route("/{resource_type}/{logical_id}", "PATCH")
async def patch(request: Request) -> Response:
    """patch with JSON Patch or FHIRPath Patch (http://hl7.org/fhir/R4/http.html#patch)."""
    wire.check_accept(request)
    resource_type, logical_id = _instance(request, "patch")
    ignored = wire.unused_parameters(request, "patch")
    context = app_context(request)
    limit = context.settings.max_body_bytes
    if "content-type" not in request.headers:  # JSON Patch or FHIRPath Patch: it must say
        raise UnsupportedMediaType.of(
            "a PATCH needs a Content-Type: application/json-patch+json (JSON Patch) or "
            "application/fhir+json (FHIRPath Patch)",
            "Content-Type",
        )
    raw = await wire.read_body(request, limit, wire.PATCH_TYPES)
    is_json_patch = wire.media_type(request.headers.get("content-type")) == wire.JSON_PATCH
    patching = json_patcher if is_json_patch else fhirpath_patcher
    patcher = patching(resource_type, logical_id, wire.parse_json(raw), limit)
    version = wire.if_match(request)
    return await _write_once(
        request,
        context,
        lambda repository: service.patch(
            repository,
            resource_type,
            logical_id,
            patcher,
            context.base,
            version,
            vocabulary=context.vocabulary,
        ),
        ignored,
    )


@_route("/{resource_type}/{logical_id}", "DELETE")
async def delete(request: Request) -> Response:
    """delete (http://hl7.org/fhir/R4/http.html#delete)."""
    wire.check_accept(request)
    resource_type, logical_id = _instance(request, "delete")
    ignored = wire.unused_parameters(request, "delete")
    version = wire.if_match(request)
    context = app_context(request)
    return await _delete_once(
        request,
        context,
        lambda repository: service.delete(repository, resource_type, logical_id, version),
        ignored,
    )


@_route("/{resource_type}", "DELETE")
async def conditional_delete(request: Request) -> Response:
    """Conditional delete (http://hl7.org/fhir/R4/http.html#3.1.0.7.1)."""
    wire.check_accept(request)
    resource_type = _type(request, "delete")
    condition = _conditional(request, resource_type)
    return await _delete_once(
        request,
        app_context(request),
        lambda repository: service.conditional_delete(repository, condition),
    )
