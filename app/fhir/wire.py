"""HTTP details of the FHIR RESTful API: media types, bodies, ETags, Prefer, response headers.

Spec: http://hl7.org/fhir/R4/http.html#mime-type, #concurrency, #ops (Prefer)
"""

import re
from email.utils import formatdate
from functools import lru_cache
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from app.errors import (
    Invalid,
    Issue,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from app.fhir.outcomes import FHIR_JSON
from app.fhir.resources import MAX_DEPTH, check_depth
from app.records.reads import Version
from app.registry import RESOURCE_TYPES

JSON_TYPES = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = frozenset({JSON_PATCH, *JSON_TYPES})  # JSON Patch, or FHIRPath Patch's Parameters
JSON_FORMATS = frozenset({"json", *JSON_TYPES})
_ETAG = re.compile(r'^(?:W/)?"(\d{1,9})"$')
# Not only dots: `.` and `..` would change the URL path of the resource (Patient/.. is /fhir).
_ID = re.compile(r"^(?!\.+$)[A-Za-z0-9\-.]{1,64}$")
_DOTS = re.compile(r"^\.+$")


def require_type(resource_type: str) -> str:
    """The type if this server hosts it; unknown types are 404."""
    if resource_type not in RESOURCE_TYPES:
        raise NotFound.of(f"resource type '{resource_type}' is not supported here")
    return resource_type


def require_id(logical_id: str, expression: str = "id") -> str:
    """A logical id of the FHIR form [A-Za-z0-9-.]{1,64}, not only dots; otherwise 400."""
    if not _ID.match(logical_id):
        raise Invalid.of(
            f"id {logical_id[:64]!r} is not 1-64 characters of A-Z a-z 0-9 - . (not only dots)",
            expression,
        )
    return logical_id


def known_id(resource_type: str, logical_id: str) -> str:
    """An id that could exist here; any other is simply not found (404), save ids of dots
    only, which would name another path (400)."""
    if _DOTS.match(logical_id):
        require_id(logical_id)
    if not _ID.match(logical_id):
        raise NotFound.of(f"{resource_type}/{logical_id[:64]} is not known")
    return logical_id


def version_number(version: str) -> int | None:
    """A version id from a URL, None if it cannot be one of ours."""
    return int(version) if version.isascii() and version.isdigit() and len(version) <= 9 else None


def media_type(header: str | None) -> str:
    """The bare media type of a Content-Type or Accept item."""
    return (header or "").split(";", 1)[0].strip().lower()


_COMMON_ACCEPT = frozenset({None, "*/*", "application/fhir+json", "application/json"})


def check_accept(request: Request) -> None:
    """406 unless the client accepts JSON (`_format` overrides `Accept`)."""
    if not request.scope["query_string"] and request.headers.get("accept") in _COMMON_ACCEPT:
        return
    requested = request.query_params.get("_format")
    if requested is not None:
        if media_type(requested) not in JSON_FORMATS:
            raise NotAcceptable.of(f"_format {requested!r} is not supported; use json", "_format")
        return
    accept = request.headers.get("accept")
    if not accept:
        return
    offered = {media_type(item) for item in accept.split(",")}
    if offered & (JSON_TYPES | {"*/*", "application/*"}):
        return
    raise NotAcceptable.of("only application/fhir+json is produced", "Accept")


async def read_body(request: Request, limit: int, allowed: frozenset[str]) -> bytes:
    """The raw body, if its media type is allowed and it is within the size limit."""
    content_type = media_type(request.headers.get("content-type")) or "application/fhir+json"
    if content_type not in allowed:
        raise UnsupportedMediaType.of(
            f"Content-Type {content_type} is not supported; send {', '.join(sorted(allowed))}",
            "Content-Type",
        )
    return await sized_body(request, limit)


async def sized_body(request: Request, limit: int) -> bytes:
    """The raw body if it is within the size limit; read once, so later calls are free."""
    declared = request.headers.get("content-length", "").lstrip("0")
    if declared.isascii() and declared.isdigit():
        if len(declared) > 18 or int(declared) > limit:
            raise PayloadTooLarge.of(f"body is over the limit of {limit} bytes")
        return await request.body()  # the HTTP server holds the body to its Content-Length
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge.of(f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    request._body = b"".join(chunks)  # where request.body() and stream() look first
    return request._body


def parse_json(raw: bytes, *, bounded: bool = True) -> Any:
    """Parse JSON; malformed JSON is 400, and so (if `bounded`) is JSON nesting deeper than
    MAX_DEPTH. Bundles pass False: each entry's resource is bounded as it is walked."""
    if not raw.strip():
        raise Invalid.of("the request body is empty")
    if b"\\u0000" in raw:
        raise Invalid.of("the body contains a NUL character, which FHIR strings may not hold")
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid.of(f"the body is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if bounded and raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:  # fewer cannot nest deeper
        check_depth(parsed)
    return parsed


async def resource_body(request: Request, resource_type: str, limit: int) -> dict[str, Any]:
    """The JSON resource in the body, checked to be of the type the URL names."""
    body = parse_json(await read_body(request, limit, JSON_TYPES))
    if not isinstance(body, dict):
        raise Invalid.of("the body must be a JSON object holding a FHIR resource")
    found = body.get("resourceType")
    if not isinstance(found, str) or not found:
        raise Invalid.of("resourceType is missing", "resourceType")
    if found != resource_type:
        raise Invalid.of(
            f"resourceType {found!r} does not match the URL ({resource_type})", "resourceType"
        )
    return body


def if_match(request: Request) -> int | None:
    """The version in If-Match (`W/"3"`), None if absent; malformed is 400."""
    return etag_version(request.headers.get("if-match"), "If-Match")


def etag_version(etag: str | None, expression: str) -> int | None:
    """The version in a weak ETag (`W/"3"`), None if absent; malformed is 400."""
    if etag is None:
        return None
    found = _ETAG.match(etag.strip())
    if found is None:
        raise Invalid.of(f'{expression} must be an ETag such as W/"3"', expression)
    return int(found.group(1))


def prefer(request: Request, key: str) -> str | None:
    """One token of the Prefer header, e.g. `return` -> `minimal`."""
    for part in request.headers.get("prefer", "").split(";"):
        for item in part.split(","):
            name, _, value = item.strip().partition("=")
            if name.strip().lower() == key:
                return value.strip().strip('"')
    return None


WIRE_PARAMETERS = ("_format", "_pretty")  # meaningful on every interaction (http.html#parameters)


def unused_parameters(request: Request, interaction: str) -> list[Issue]:
    """A warning for each query parameter `interaction` gives no meaning to, or 400 refusing
    them under `Prefer: handling=strict` (http://hl7.org/fhir/R4/search.html#errors)."""
    if not request.scope["query_string"]:
        return []
    hint = (
        "; a conditional create takes its query in If-None-Exist" if interaction == "create" else ""
    )
    ignored = [
        Issue(
            f"query parameter '{key[:64]}' means nothing to a {interaction} and was ignored{hint}",
            "not-supported",
            (key[:64],),
            severity="warning",
        )
        for key in dict.fromkeys(request.query_params.keys())
        if key not in WIRE_PARAMETERS
    ]
    if ignored and prefer(request, "handling") == "strict":
        raise Invalid.strictly(ignored)
    return ignored


def pretty(request: Request) -> bool:
    """Whether `_pretty=true` was asked."""
    return bool(request.scope["query_string"]) and request.query_params.get("_pretty") == "true"


def http_date(micros: int) -> str:
    """An RFC 7231 date for Last-Modified."""
    return _http_date(micros // 1_000_000)


@lru_cache(maxsize=4096)
def _http_date(seconds: int) -> str:
    return formatdate(seconds, usegmt=True)


def etag(version_id: int | str) -> str:
    """The weak ETag of a version: `W/"3"` (http://hl7.org/fhir/R4/http.html#versioning)."""
    return f'W/"{version_id}"'


def version_headers(base_url: str, resource_type: str, version: Version) -> dict[str, str]:
    """ETag, Last-Modified and Location of a version."""
    return {
        "ETag": etag(version.version_id),
        "Last-Modified": http_date(version.last_updated),
        "Location": (
            f"{base_url}/{resource_type}/{version.logical_id}/_history/{version.version_id}"
        ),
    }


def json_response(
    request: Request,
    content: bytes | dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A FHIR JSON response of stored bytes or a dict, pretty-printed on `_pretty=true`."""
    if isinstance(content, dict) or pretty(request):
        data = orjson.loads(content) if isinstance(content, bytes) else content
        option = orjson.OPT_INDENT_2 if pretty(request) else 0
        content = orjson.dumps(data, option=option)
    return Response(content, status_code=status, headers=headers, media_type=FHIR_JSON)
