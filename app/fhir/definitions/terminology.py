"""The project's code systems and value sets, served read-only at `/fhir/CodeSystem` and
`/fhir/ValueSet` (read, search by url, name, status, version, _id), and `$validate-code` on both.
The resources are built once per app (`terminology_artefacts`); writes are 405.

Spec: http://hl7.org/fhir/R4/http.html, http://hl7.org/fhir/R4/valueset-operation-validate-code.html
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.clock import instant, now_micros
from app.errors import FhirError, Invalid, NotFound
from app.fhir import elements, wire
from app.fhir.bundles import assembly as bundles
from app.fhir.context import app_context
from app.fhir.definitions.artefacts import (
    CODE_SYSTEM,
    KINDS,
    SEARCH,
    VALUE_SET,
    VERSION,
    Artefact,
    Candidate,
    Catalogue,
    catalogue,
    shape,
    shown,
    validation,
)
from app.fhir.definitions.selection import select
from app.fhir.outcomes import ReadOnly
from app.fhir.search import options as search_options
from app.records.reads import Match

Endpoint = Callable[[Request], Awaitable[Response]]
VALIDATE_CODE = "$validate-code"
FORMAT_PARAMS = frozenset({"_format", "_pretty"})
# The in-parameters of $validate-code on each type (valueset- and codesystem-operation-...).
INPUTS = {
    VALUE_SET: frozenset(
        {
            "url",
            "valueSetVersion",
            "code",
            "system",
            "systemVersion",
            "display",
            "coding",
            "codeableConcept",
            "displayLanguage",
            "abstract",
        }
    ),
    CODE_SYSTEM: frozenset(
        {
            "url",
            "version",
            "code",
            "display",
            "coding",
            "codeableConcept",
            "displayLanguage",
            "abstract",
        }
    ),
}
VERSION_PARAM = {VALUE_SET: "valueSetVersion", CODE_SYSTEM: "version"}
UNSUPPORTED = frozenset({"context", "valueSet", "codeSystem", "date"})
COMPLEX = {"coding": "valueCoding", "codeableConcept": "valueCodeableConcept"}
STRING_VALUES = ("valueString", "valueUri", "valueCanonical", "valueUrl", "valueCode", "valueId")
CODINGS = ("code", "coding", "codeableConcept")  # exactly one of them is validated


def _catalogue(request: Request) -> Catalogue:
    """This app's artefacts, built on first use and kept (with their lastUpdated) for its life."""
    state = request.app.state
    found: Catalogue | None = getattr(state, "terminology", None)
    if found is None:
        micros = now_micros()
        found = catalogue(app_context(request).vocabulary, instant(micros), micros)
        state.terminology = found
    return found


def _reader(kind: str) -> Endpoint:
    async def read(request: Request) -> Response:
        """read (http://hl7.org/fhir/R4/http.html#read) of a code system or value set here."""
        wire.check_accept(request)
        logical_id = request.path_params["logical_id"]
        published = _catalogue(request)
        artefact = published.artefacts.get((kind, logical_id))
        if artefact is None:
            raise NotFound.of(f"{kind}/{logical_id[:64]} is not known")
        headers = {
            "ETag": wire.etag(1),
            "Last-Modified": wire.http_date(published.published_micros),
        }
        return wire.json_response(request, artefact.body, headers=headers)

    return read


@dataclass(frozen=True, slots=True)
class Paging:
    """The result parameters of one search: page size and start, and how entries are shaped."""

    count: int
    offset: int  # the `_cursor` of our links: matches skipped
    summary: str | None
    elements: tuple[str, ...] | None
    kept: list[tuple[str, str]]  # the shaping parameters every link repeats


def _paging(request: Request, pairs: list[tuple[str, str]]) -> Paging:
    """`_count`, `_cursor`, `_summary`, `_elements` and `_total` (checked: the total is exact)."""
    settings, first = app_context(request).settings, dict(reversed(pairs))
    count = search_options.page_size(
        first.get("_count"),
        settings.default_page_size,
        settings.max_page_size,
        settings.count_over_max == "refuse",
    )
    search_options.total_mode(first.get("_total"))
    return Paging(
        count=count,
        offset=search_options.offset_cursor(first.get("_cursor")) or 0,
        summary=elements.parse_summary(first.get("_summary")),
        elements=elements.parse_elements([value for key, value in pairs if key == "_elements"]),
        kept=[(k, v) for k, v in pairs if k in ("_summary", "_elements", "_total")],
    )


def _searcher(kind: str) -> Endpoint:
    async def search(request: Request) -> Response:
        """search-type (http://hl7.org/fhir/R4/http.html#search) over the code systems or value
        sets here: `_count` pages, `_summary=count` and `_count=0` give the total alone."""
        wire.check_accept(request)
        pairs = request.query_params.multi_items()
        artefacts = {a.resource["id"]: a for a in _catalogue(request).of_kind(kind)}
        matched, applied, ignored = select(SEARCH, [a.resource for a in artefacts.values()], pairs)
        if ignored and wire.prefer(request, "handling") == "strict":
            raise Invalid.strictly(ignored)
        paging = _paging(request, pairs)
        end = paging.offset + paging.count
        page = [] if paging.summary == "count" else matched[paging.offset : end]
        rows = [
            Match(n, r["id"], shape(artefacts[r["id"]], paging.summary, paging.elements), ())
            for n, r in enumerate(page)
        ]
        base, more = app_context(request).base, bool(rows) and end < len(matched)
        body = bundles.searchset(
            base,
            kind,
            rows,
            [],
            links=_links(base, kind, applied, paging, more),
            total=len(matched),
            warnings=ignored,
            shape=lambda resource_bytes, _: resource_bytes,
        )
        return wire.json_response(request, body)

    return search


def _links(
    base: str, kind: str, applied: list[tuple[str, str]], paging: Paging, more: bool
) -> list[tuple[str, str]]:
    """self, first, and previous and next around the page (search.html#paging)."""
    params = [*applied, *paging.kept, ("_count", str(paging.count))]

    def at(offset: int) -> str:
        cursor = [("_cursor", str(offset))] if offset else []
        return bundles.page_url(base, kind, [*params, *cursor])

    links = [("self", at(paging.offset)), ("first", at(0))]
    if paging.offset and paging.count:
        links.append(("previous", at(max(paging.offset - paging.count, 0))))
    if more:
        links.append(("next", at(paging.offset + paging.count)))
    return links


def _query_inputs(kind: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The in-parameters of a GET, each once; only primitive ones can be sent in a URL."""
    inputs: dict[str, Any] = {}
    for name, value in pairs:
        if name in FORMAT_PARAMS:
            continue
        _check_name(kind, name, inputs)
        if name in COMPLEX:
            raise Invalid.of(f"{name} is not primitive: send it in a POST Parameters body", name)
        if value == "":
            raise Invalid.of(f"parameter {name} is empty", name)
        if name == "abstract" and value not in ("true", "false"):
            raise Invalid.of("abstract must be true or false", name)
        inputs[name] = value == "true" if name == "abstract" else value
    return inputs


def _check_name(kind: str, name: str, inputs: dict[str, Any]) -> None:
    if name in UNSUPPORTED:
        raise Invalid.of(f"parameter {name} is not supported here", name, code="not-supported")
    if name not in INPUTS[kind]:
        raise Invalid.of(f"{shown(name)} is not a parameter of {kind}/{VALIDATE_CODE}", name)
    if name in inputs:
        raise Invalid.of(f"parameter {name} may be given only once", name)


def _body_inputs(kind: str, body: Any) -> dict[str, Any]:
    """The in-parameters of a POSTed Parameters resource, each once and of its type."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise Invalid.of("the body must be a Parameters resource", "resourceType")
    entries = body.get("parameter", [])
    if not isinstance(entries, list):
        raise Invalid.of("Parameters.parameter must be an array", "Parameters.parameter")
    inputs: dict[str, Any] = {}
    for index, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            where = f"Parameters.parameter[{index}]"
            raise Invalid.of(f"{where} must be an object with a name", f"{where}.name")
        _check_name(kind, name, inputs)
        inputs[name] = _value(name, entry)
    return inputs


def _value(name: str, entry: dict[str, Any]) -> Any:
    """The value[x] of one parameter, checked against the parameter's type."""
    keys = [key for key in entry if key.startswith("value") or key in ("resource", "part")]
    expected = COMPLEX.get(name) or ("valueBoolean" if name == "abstract" else None)
    allowed = (expected,) if expected else STRING_VALUES
    if len(keys) != 1 or keys[0] not in allowed:
        raise Invalid.of(f"parameter {name} takes one {' or '.join(allowed)}", name)
    value = entry[keys[0]]
    if expected == "valueBoolean" and not isinstance(value, bool):
        raise Invalid.of(f"{name} must be true or false", name)
    if expected in COMPLEX.values() and not isinstance(value, dict):
        raise Invalid.of(f"{name} must be a JSON object", name)
    if expected is None and not _text(value):
        raise Invalid.of(f"{name} must be a non-empty string", name)
    return value


def _text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _target(
    published: Catalogue, kind: str, logical_id: str | None, inputs: dict[str, Any]
) -> Artefact:
    """The value set or code system to validate against: the instance, or the one at `url`."""
    url, _, version = str(inputs.get("url", "")).partition("|")
    version_param = VERSION_PARAM[kind]
    if logical_id is not None:
        artefact = published.artefacts.get((kind, logical_id))
        if artefact is None:
            raise NotFound.of(f"{kind}/{logical_id[:64]} is not known")
        if url and url != artefact.url:
            raise Invalid.of(f"url {shown(url)} is not the url of {kind}/{logical_id}", "url")
    else:
        coding = inputs.get("coding")
        if not url and kind == CODE_SYSTEM and isinstance(coding, dict):
            url = str(coding["system"]) if _text(coding.get("system")) else ""
        if not url:
            raise Invalid.of(f"url is required: the canonical URL of the {kind}", "url")
        found = published.by_url(kind, url)
        if found is None:
            raise NotFound.of(f"no {kind} is known at url {shown(url)}", "url")
        artefact = found
    version = version or inputs.get(version_param, "")
    if version and version != VERSION:
        where = version_param if version_param in inputs else "url"
        raise NotFound.of(f"version {shown(version)} of {artefact.url} is not known", where)
    return artefact


def _coding(value: Any, where: str, system: str | None, display: str | None) -> Candidate:
    """A Coding (a parameter or in a CodeableConcept) to validate; `system` if it has none."""
    if not isinstance(value, dict):
        raise Invalid.of(f"{where} must be a Coding", where)
    for key in ("system", "code", "display", "version"):
        if key in value and not _text(value[key]):
            raise Invalid.of(f"{where}.{key} must be a non-empty string", f"{where}.{key}")
    system = value.get("system") or system
    if system is None:
        raise Invalid.of(f"{where}.system is required", f"{where}.system")
    if "code" not in value:
        raise Invalid.of(f"{where}.code is required", f"{where}.code")
    return Candidate(
        system, value["code"], display or value.get("display"), value.get("version"), where
    )


def _candidates(kind: str, artefact: Artefact, inputs: dict[str, Any]) -> list[Candidate]:
    """The codings to validate: from code (with system), coding or codeableConcept."""
    given = [name for name in CODINGS if name in inputs]
    if len(given) != 1:
        text = (
            f"only one of {', '.join(given)} may be given"
            if given
            else "one of code, coding or codeableConcept is required"
        )
        raise Invalid.of(text, *(given or ["code"]))
    own_system = artefact.url if kind == CODE_SYSTEM else None
    display, system = inputs.get("display"), inputs.get("system")
    if system is not None and given != ["code"]:
        raise Invalid.of("system goes with code (a Coding carries its own system)", "system")
    if display is not None and given == ["codeableConcept"]:
        raise Invalid.of("display goes with code or coding", "display")
    version = inputs.get("systemVersion")
    if given == ["code"]:
        code_system = system or own_system
        if code_system is None:
            raise Invalid.of("system is required with code", "system")
        return [Candidate(code_system, inputs["code"], display, version, "code")]
    if given == ["coding"]:
        return [_coding(inputs["coding"], "coding", own_system, display)]
    codings = inputs["codeableConcept"].get("coding")
    if not isinstance(codings, list) or not codings:
        raise Invalid.of("codeableConcept.coding must hold a Coding", "codeableConcept.coding")
    where = "codeableConcept.coding"
    return [_coding(c, f"{where}[{i}]", own_system, None) for i, c in enumerate(codings)]


async def _posted(request: Request, kind: str) -> dict[str, Any]:
    """The in-parameters of a POST: a Parameters body; the URL may hold only _format/_pretty."""
    for name in request.query_params:
        if name not in FORMAT_PARAMS:
            raise Invalid.of(f"send {name} in the Parameters body, not the URL", name)
    try:
        limit = app_context(request).settings.max_body_bytes
        body = wire.parse_json(await wire.read_body(request, limit, wire.JSON_TYPES))
    except FhirError as error:  # the body as a whole is at fault
        issues = [replace(i, expression=i.expression or ("Parameters",)) for i in error.issues]
        raise type(error)(issues) from None
    return _body_inputs(kind, body)


def _validator(kind: str, instance: bool, post: bool) -> Endpoint:
    async def validate_code(request: Request) -> Response:
        """$validate-code (http://hl7.org/fhir/R4/valueset-operation-validate-code.html,
        http://hl7.org/fhir/R4/codesystem-operation-validate-code.html)."""
        wire.check_accept(request)
        pairs = request.query_params.multi_items()
        inputs = await _posted(request, kind) if post else _query_inputs(kind, pairs)
        logical_id = request.path_params["logical_id"] if instance else None
        artefact = _target(_catalogue(request), kind, logical_id, inputs)
        return wire.json_response(
            request, validation(artefact, _candidates(kind, artefact, inputs))
        )

    return validate_code


def _routes(kind: str) -> list[Route]:
    """The operation routes first: the read route would take `$validate-code` for an id."""
    slug = "code_system" if kind == CODE_SYSTEM else "value_set"
    base = f"/fhir/{kind}"
    routes: list[Route] = []
    for path, suffix in ((base, ""), (f"{base}/{{logical_id}}", "_instance")):
        operation, name = f"{path}/{VALIDATE_CODE}", f"validate_{slug}_code{suffix}"
        routes += [
            Route(operation, _validator(kind, bool(suffix), False), methods=["GET"], name=name),
            Route(
                operation,
                _validator(kind, bool(suffix), True),
                methods=["POST"],
                name=f"{name}_post",
            ),
            Route(
                operation,
                ReadOnly(f"{VALIDATE_CODE} takes GET or POST", "GET, HEAD, POST"),
                include_in_schema=False,
            ),
        ]
    read_only = ReadOnly(f"{kind} is read-only here", "GET, HEAD")
    return [
        *routes,
        Route(f"{base}/{{logical_id}}", _reader(kind), methods=["GET"], name=f"read_{slug}"),
        Route(base, _searcher(kind), methods=["GET"], name=f"search_{slug}s"),
        Route(f"{base}/{{logical_id}}", read_only, include_in_schema=False),
        Route(base, read_only, include_in_schema=False),
    ]


# Registered before the generic routes, which would take these paths for an unknown type.
ROUTES: list[Route] = [route for kind in KINDS for route in _routes(kind)]
