"""Bulk Data `$export` over HTTP: kick-off (system and Patient level), status polling, cancel,
and file download. Only the client that asked may poll, cancel or download; for any other
the job is as unknown as one that never existed (404).

Scopes: none of its own, as system history: the types a client may not read are left out
inside the SQL of every chunk (`app.access.visibility`).
Spec: https://hl7.org/fhir/uv/bulkdata/STU2/export.html
"""

from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from app.criteria import Query
from app.errors import Invalid
from app.fhir import auditing, wire
from app.fhir.context import app_context
from app.fhir.elements import parse_elements, shape_bytes
from app.fhir.outcomes import information
from app.fhir.search import options as search_options
from app.fhir.search import parsing
from app.records.export_jobs import IN_PROGRESS, PATIENT_TYPES, SYSTEM_TYPES, ExportRequest, Kind
from app.records.exporter import RETRY_AFTER_SECONDS, Exporter

OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
PARAMETERS = frozenset({"_outputFormat", "_since", "_type", "_typeFilter", "_elements"})
NDJSON = "application/fhir+ndjson"


def _once(pairs: list[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in pairs if key == name]
    if len(values) > 1:
        raise Invalid.of(f"{name} may be given once", name)
    return values[0] if values else None


def _types(kind: Kind, pairs: list[tuple[str, str]]) -> tuple[str, ...]:
    """`_type` (comma lists, repeatable), each a type this export level holds; all if none."""
    allowed = PATIENT_TYPES if kind == "patient" else SYSTEM_TYPES
    named = [name.strip() for key, value in pairs if key == "_type" for name in value.split(",")]
    if not named:
        return allowed
    for name in named:
        if name not in allowed:
            where = "in a Patient compartment" if kind == "patient" else "exported here"
            raise Invalid.of(f"_type: {name!r} is not a resource type {where}", "_type")
    return tuple(dict.fromkeys(named))


def filter_query(resource_type: str, text: str, base: str) -> Query:
    """The search of one `_typeFilter` query: known search parameters only (400 otherwise)."""
    pairs = parse_qsl(text, keep_blank_values=True)
    for key, _ in pairs:
        if key in parsing.CONTROL_PARAMS or key.split(":", 1)[0] in parsing.CONTROL_PARAMS:
            raise Invalid.of(f"_typeFilter: {key} cannot filter an export", "_typeFilter")
    parsed = parsing.parse(resource_type, pairs, base)
    if parsed.ignored or not parsed.criteria:
        raise Invalid.of(
            f"_typeFilter: {resource_type}?{text} names no known search parameter of "
            f"{resource_type}, or one it does not know",
            "_typeFilter",
        )
    return Query(resource_type, parsed.criteria, 1)


def _type_filters(
    pairs: list[tuple[str, str]], types: tuple[str, ...], base: str
) -> dict[str, tuple[str, ...]]:
    """Each `_typeFilter` (`Type?query`) by type, each checked by parsing it."""
    found: dict[str, list[str]] = {}
    for key, value in pairs:
        if key != "_typeFilter":
            continue
        resource_type, mark, text = value.partition("?")
        if not mark or resource_type not in types:
            raise Invalid.of(
                f"_typeFilter: {value!r} must be Type?query for a type this export holds",
                "_typeFilter",
            )
        filter_query(resource_type, text, base)
        found.setdefault(resource_type, []).append(text)
    return {name: tuple(texts) for name, texts in found.items()}


def export_request(kind: Kind, pairs: list[tuple[str, str]], base: str) -> ExportRequest:
    """The kick-off's parameters, checked; any parameter not supported is 400, not ignored
    (https://hl7.org/fhir/uv/bulkdata/STU2/export.html#query-parameters)."""
    for key, _ in pairs:
        if key not in PARAMETERS:
            raise Invalid.of(f"$export does not support the parameter {key}", key[:64])
    output_format = _once(pairs, "_outputFormat")
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise Invalid.of(f"_outputFormat {output_format!r} is not supported", "_outputFormat")
    since = search_options.since(_once(pairs, "_since"))
    types = _types(kind, pairs)
    elements = parse_elements([value for key, value in pairs if key == "_elements"])
    return ExportRequest(kind, types, since, _type_filters(pairs, types, base), elements)


def _exporter(request: Request) -> Exporter:
    exporter = app_context(request).exporter
    assert exporter is not None, "the app was built without an exporter"
    return exporter


async def _kick_off(request: Request, kind: Kind) -> Response:
    wire.check_accept(request)
    if wire.prefer(request, "respond-async") is None:
        raise Invalid.of("$export runs asynchronously: send Prefer: respond-async", "Prefer")
    context = app_context(request)
    pairs = list(request.query_params.multi_items())
    wanted = export_request(kind, pairs, context.base)
    path = request.url.path.removeprefix("/fhir")
    query = request.url.query
    request_url = f"{context.base}{path}" + (f"?{query}" if query else "")
    caller = context.caller(request)
    auditing.operation(request, f"{path.lstrip('/')}?{query}" if query else path.lstrip("/"))
    job_id = await _exporter(request).kick_off(caller, request_url, wanted)
    status_url = f"{context.base}/$export-status/{job_id}"
    note = information(f"export started; poll {status_url}")
    return wire.json_response(request, note, 202, {"Content-Location": status_url})


async def export_system(request: Request) -> Response:
    """System-level export (https://hl7.org/fhir/uv/bulkdata/STU2/export.html#endpoint---system-level-export)."""
    return await _kick_off(request, "system")


async def export_patients(request: Request) -> Response:
    """All Patients and their compartments (https://hl7.org/fhir/uv/bulkdata/STU2/export.html#endpoint---all-patients)."""
    return await _kick_off(request, "patient")


async def export_status(request: Request) -> Response:
    """Status of a job: 202 while it runs, then its manifest, or 500 with an OperationOutcome
    if it failed (https://hl7.org/fhir/uv/bulkdata/STU2/export.html#bulk-data-status-request)."""
    context = app_context(request)
    caller = context.caller(request)
    job_id = request.path_params["job_id"]
    job = await _exporter(request).job(job_id, caller.subject)
    if job.status == IN_PROGRESS:
        headers = {"X-Progress": job.progress_text(), "Retry-After": str(RETRY_AFTER_SECONDS)}
        return Response(status_code=202, headers=headers)
    return Response(orjson.dumps(job.manifest(context.base)), media_type="application/json")


async def export_cancel(request: Request) -> Response:
    """Cancel a job and delete its files (https://hl7.org/fhir/uv/bulkdata/STU2/export.html#bulk-data-delete-request)."""
    caller = app_context(request).caller(request)
    job_id = request.path_params["job_id"]
    await _exporter(request).cancel(job_id, caller.subject)
    return wire.json_response(request, information(f"export job {job_id} cancelled"), 202)


async def export_file(request: Request) -> Response:
    """One output file of the client's job, as NDJSON (https://hl7.org/fhir/uv/bulkdata/STU2/export.html#file-request)."""
    caller = app_context(request).caller(request)
    job_id, name = request.path_params["job_id"], request.path_params["file_name"]
    auditing.operation(request, f"$export-file/{job_id}/{name}")
    path = await _exporter(request).file(job_id, caller, name)
    return FileResponse(path, media_type=NDJSON)


def shape(body: bytes, elements: tuple[str, ...]) -> bytes:
    """A resource with only the `_elements` asked for (and the mandatory ones)."""
    return shape_bytes(body, summary=None, elements=elements)


ROUTES = [
    Route("/fhir/$export", export_system, methods=["GET"], name="export_system"),
    Route("/fhir/Patient/$export", export_patients, methods=["GET"], name="export_patients"),
    Route("/fhir/$export-status/{job_id}", export_status, methods=["GET"], name="export_status"),
    Route("/fhir/$export-status/{job_id}", export_cancel, methods=["DELETE"], name="export_cancel"),
    Route(
        "/fhir/$export-file/{job_id}/{file_name}",
        export_file,
        methods=["GET"],
        name="export_file",
    ),
]
