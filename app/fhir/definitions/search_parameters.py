"""The SearchParameter resources this server defines itself, built from the registry and served
read-only at `/fhir/SearchParameter` (R4 Flag has no status, category or code parameter).

Spec: http://hl7.org/fhir/R4/searchparameter.html
"""

import html
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import Invalid, Issue, NotFound
from app.fhir import wire
from app.fhir.bundles import assembly as bundles
from app.fhir.context import app_context
from app.fhir.outcomes import ReadOnly
from app.fhir.search.parsing import CONTROL_PARAMS
from app.fhir.search.values import PREFIXES, allowed_modifiers, split_escaped
from app.registry import COMMON_PARAMS, SearchParam, custom_params

RESOURCE_TYPE = "SearchParameter"
VERSION = "0.1.0"  # business version of the definitions below: raise it when one changes
PUBLISHER = "safeguard-fhir"
INTERACTIONS = ("read", "search-type")
HL7 = "http://hl7.org/fhir/SearchParameter"
ORDERED_TYPES = ("number", "date", "quantity")  # the types that take prefixes (search.html#prefix)

# The parameters of `GET /SearchParameter`; each names the element it matches.
SEARCH_PARAMS: dict[str, SearchParam] = {
    "_id": COMMON_PARAMS["_id"],
    "base": SearchParam("base", "token", ("SearchParameter.base",),
                        "The resource type(s) this search parameter applies to",
                        "SearchParameter.base", definition=f"{HL7}/SearchParameter-base"),
    "code": SearchParam("code", "token", ("SearchParameter.code",), "Code used in URL",
                        "SearchParameter.code", definition=f"{HL7}/SearchParameter-code"),
    "url": SearchParam("url", "uri", ("SearchParameter.url",),
                       "The uri that identifies the search parameter", "SearchParameter.url",
                       definition=f"{HL7}/conformance-url"),
}  # fmt: skip
_ELEMENTS = {"_id": "id", "base": "base", "code": "code", "url": "url"}


def definition_url(param: SearchParam, canonical_base: str) -> str:
    """The canonical URL of a parameter's definition: ours under `canonical_base`, else HL7's."""
    return f"{canonical_base}/{param.definition}" if param.custom else param.definition


def _id(param: SearchParam) -> str:
    return param.definition.rsplit("/", 1)[-1]


def _modifiers(param: SearchParam) -> list[str]:
    """The modifiers the search code accepts on `param`, as search-modifier-code codes."""
    allowed = allowed_modifiers(param)
    if param.targets:
        allowed.add("type")  # `:[type]` on a reference
    return sorted("ofType" if code == "of-type" else code for code in allowed)


def search_parameter(base_type: str, param: SearchParam, canonical_base: str) -> dict[str, Any]:
    """The R4 SearchParameter resource defining `param` on `base_type`."""
    url = definition_url(param, canonical_base)
    summary = html.escape(f"{base_type}?{param.code}= ({param.type}): {param.description}")
    resource: dict[str, Any] = {
        "resourceType": RESOURCE_TYPE,
        "id": _id(param),
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{summary}</p></div>',
        },
        "url": url,
        "version": VERSION,
        "name": param.code,
        "status": "active",
        "experimental": False,
        "publisher": PUBLISHER,
        "description": param.description,
        "code": param.code,
        "base": [base_type],
        "type": param.type,
        "expression": param.expression,
        "xpathUsage": "normal",
        "multipleOr": True,
        "multipleAnd": True,
    }
    if param.targets:
        resource["target"] = list(param.targets)
    if param.type in ORDERED_TYPES:
        resource["comparator"] = list(PREFIXES)
    if modifiers := _modifiers(param):
        resource["modifier"] = modifiers
    return resource


def definitions(canonical_base: str) -> list[dict[str, Any]]:
    """Every SearchParameter this server defines, in registry order."""
    return [search_parameter(base, param, canonical_base) for base, param in custom_params()]


@lru_cache(maxsize=8)
def _published(canonical_base: str) -> dict[str, tuple[dict[str, Any], bytes]]:
    """Each definition by id, with the bytes a read sends."""
    return {r["id"]: (r, orjson.dumps(r)) for r in definitions(canonical_base)}


def _matches(resource: dict[str, Any], name: str, wanted: set[str]) -> bool:
    found = resource[_ELEMENTS[name]]
    return bool(wanted.intersection(found if isinstance(found, list) else [found]))


def _wanted(param: SearchParam, raw: str) -> set[str]:
    """The values one parameter asks for; any of them matches (search.html#combining)."""
    values = [v for v in split_escaped(raw, ",", unescape=False) if v != ""]
    if not values:
        raise Invalid.of(f"search parameter {param.name} has no value", param.name)
    wanted = set()
    for value in values:
        if param.type == "token" and "|" in value.replace("\\|", ""):
            system, code = split_escaped(value, "|", unescape=False)[:2]
            if system:  # codes, ids and type names have no system: nothing can match
                continue
            value = code
        wanted.add(value.replace("\\", ""))
    return wanted


def select(
    resources: Sequence[dict[str, Any]], params: Sequence[tuple[str, str]]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]], list[Issue]]:
    """The resources matching every known parameter, the parameters applied, and the unknown
    ones (ignored, reported as warnings). A modifier is 400: none is supported here."""
    matched, applied, ignored = list(resources), [], []
    for key, raw in params:
        name, _, modifier = key.partition(":")
        if name in CONTROL_PARAMS:
            continue
        param = SEARCH_PARAMS.get(name)
        if param is None:
            text = f"unknown search parameter '{key}' was ignored"
            ignored.append(Issue(text, "not-supported", (key,), severity="warning"))
            continue
        if modifier:
            raise Invalid.of(f"modifier :{modifier} is not supported on {name}", key)
        wanted = _wanted(param, raw)
        matched = [resource for resource in matched if _matches(resource, name, wanted)]
        applied.append((key, raw))
    return matched, applied, ignored


async def read_definition(request: Request) -> Response:
    """read (http://hl7.org/fhir/R4/http.html#read) of a SearchParameter defined here."""
    wire.check_accept(request)
    logical_id = request.path_params["logical_id"]
    found = _published(app_context(request).settings.canonical_base).get(logical_id)
    if found is None:
        raise NotFound.of(f"{RESOURCE_TYPE}/{logical_id[:64]} is not known")
    return wire.json_response(request, found[1])


async def search_definitions(request: Request) -> Response:
    """search-type (http://hl7.org/fhir/R4/http.html#search) over the SearchParameters here."""
    wire.check_accept(request)
    context = app_context(request)
    published = _published(context.settings.canonical_base)
    matched, applied, ignored = select(
        [resource for resource, _ in published.values()], request.query_params.multi_items()
    )
    if ignored and wire.prefer(request, "handling") == "strict":
        raise Invalid(ignored)
    rows = [(n, r["id"], published[r["id"]][1]) for n, r in enumerate(matched)]
    body = bundles.searchset(
        context.base,
        RESOURCE_TYPE,
        rows,
        [],
        links=[("self", bundles.page_url(context.base, RESOURCE_TYPE, applied))],
        total=len(rows),
        warnings=ignored,
        shape=lambda resource_bytes, _: resource_bytes,
    )
    return wire.json_response(request, body)


_READ_PATH, _SEARCH_PATH = f"/fhir/{RESOURCE_TYPE}/{{logical_id}}", f"/fhir/{RESOURCE_TYPE}"
# Registered before the generic routes, which would take these paths for an unknown type.
# The read-only guards match every method the GET routes do not; they are not documented.
ROUTES: list[Route] = [
    Route(_READ_PATH, read_definition, methods=["GET"], name="read_definition"),
    Route(_SEARCH_PATH, search_definitions, methods=["GET"], name="search_definitions"),
    Route(
        _READ_PATH,
        ReadOnly(f"{RESOURCE_TYPE} is read-only here"),
        name="read_only_definition",
        include_in_schema=False,
    ),
    Route(
        _SEARCH_PATH,
        ReadOnly(f"{RESOURCE_TYPE} is read-only here"),
        name="read_only_definitions",
        include_in_schema=False,
    ),
]
