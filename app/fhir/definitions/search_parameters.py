"""The SearchParameter resources this server defines itself, built from the registry and served
read-only at `/fhir/SearchParameter` (R4 Flag has no status, category or code parameter).

Spec: http://hl7.org/fhir/R4/searchparameter.html
"""

import html
from functools import lru_cache
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import Invalid, NotFound
from app.fhir import wire
from app.fhir.bundles import assembly as bundles
from app.fhir.context import app_context
from app.fhir.definitions.selection import Parameter, Table, select
from app.fhir.outcomes import ReadOnly
from app.fhir.search.parsing import CONTROL_PARAMS
from app.fhir.search.values import PREFIXES, allowed_modifiers
from app.records.reads import Match
from app.registry import COMMON_PARAMS, SearchParam, custom_params

RESOURCE_TYPE = "SearchParameter"
VERSION = "0.1.0"  # business version of the definitions below: raise it when one changes
PUBLISHER = "safeguard-fhir"
INTERACTIONS = ("read", "search-type")
HL7 = "http://hl7.org/fhir/SearchParameter"
ORDERED_TYPES = ("number", "date", "quantity")  # the types that take prefixes (search.html#prefix)

# The parameters of `GET /SearchParameter`: none takes a modifier, and no value with a system
# matches (codes, ids and type names have none); every result parameter is skipped.
SEARCH = Table(
    (
        Parameter(COMMON_PARAMS["_id"], element="id"),
        Parameter(
            SearchParam(
                "base",
                "token",
                ("SearchParameter.base",),
                "The resource type(s) this search parameter applies to",
                "SearchParameter.base",
                definition=f"{HL7}/SearchParameter-base",
            ),
            element="base",
        ),
        Parameter(
            SearchParam(
                "code",
                "token",
                ("SearchParameter.code",),
                "Code used in URL",
                "SearchParameter.code",
                definition=f"{HL7}/SearchParameter-code",
            ),
            element="code",
        ),
        Parameter(
            SearchParam(
                "url",
                "uri",
                ("SearchParameter.url",),
                "The uri that identifies the search parameter",
                "SearchParameter.url",
                definition=f"{HL7}/conformance-url",
            ),
            element="url",
        ),
    ),
    skipped_names=CONTROL_PARAMS,
    bare_names=True,
)


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
        SEARCH, [resource for resource, _ in published.values()], request.query_params.multi_items()
    )
    if ignored and wire.prefer(request, "handling") == "strict":
        raise Invalid.strictly(ignored)
    rows = [Match(n, r["id"], published[r["id"]][1], ()) for n, r in enumerate(matched)]
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
