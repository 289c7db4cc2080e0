"""Searchset and history Bundles, assembled around the stored resource bytes.

Spec: http://hl7.org/fhir/R4/bundle.html, http://hl7.org/fhir/R4/http.html#history
"""

import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import orjson

from app.clock import instant, now_micros
from app.errors import Issue
from app.fhir.outcomes import outcome
from app.records.reads import Version

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "200 OK"}


def page_url(base: str, path: str, params: Sequence[tuple[str, str]]) -> str:
    """An absolute URL on our base with the given query pairs."""
    query = urlencode(list(params))
    return f"{base}/{path}" + (f"?{query}" if query else "")


def _links(links: Sequence[tuple[str, str]]) -> bytes:
    return orjson.dumps([{"relation": relation, "url": url} for relation, url in links])


def _bundle(kind: str, links: bytes, entries: list[bytes], total: int | None) -> bytes:
    head: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(now_micros())},
        "type": kind,
    }
    if total is not None:
        head["total"] = total
    return (
        orjson.dumps(head)[:-1] + b',"link":' + links + b',"entry":[' + b",".join(entries) + b"]}"
    )


def _entry(full_url: str, body: bytes, mode: str) -> bytes:
    return (
        b'{"fullUrl":' + orjson.dumps(full_url) + b',"resource":' + body
        + b',"search":{"mode":"' + mode.encode() + b'"}}'
    )  # fmt: skip


def searchset(
    base: str,
    resource_type: str,
    matches: Sequence[Any],
    included: Sequence[Any],
    *,
    links: Sequence[tuple[str, str]],
    total: int | None,
    warnings: list[Issue],
    shape: Callable[[bytes, bool], bytes],
) -> bytes:
    """A searchset Bundle: matches (pk, id, body...), then included resources (pk, type, id,
    body), then an outcome entry for parameters ignored or results cut short."""
    entries = [
        _entry(f"{base}/{resource_type}/{row[1]}", shape(bytes(row[2]), True), "match")
        for row in matches
    ]
    entries += [
        _entry(f"{base}/{row[1]}/{row[2]}", shape(bytes(row[3]), False), "include")
        for row in included
    ]
    if warnings:
        entries.append(orjson.dumps({"resource": outcome(warnings), "search": {"mode": "outcome"}}))
    return _bundle("searchset", _links(links), entries, total)


def _history_entry(base: str, version: Version) -> bytes:
    path = f"{version.resource_type}/{version.logical_id}"
    request_url = version.resource_type if version.method == "POST" else path
    status = _STATUS.get(version.method, "200 OK")
    if version.method == "PUT" and version.version_id == 1:
        status = "201 Created"
    meta = {
        "request": {"method": version.method, "url": request_url},
        "response": {
            "status": status,
            "etag": f'W/"{version.version_id}"',
            "lastModified": instant(version.last_updated),
        },
    }
    head = b'{"fullUrl":' + orjson.dumps(f"{base}/{path}")
    if version.body is not None:
        head += b',"resource":' + bytes(version.body)
    return head + b"," + orjson.dumps(meta)[1:]


def history(
    base: str, versions: Sequence[Version], *, self_url: str, next_url: str | None
) -> bytes:
    """A history Bundle, newest first, deletions included as entries without a resource."""
    entries = [_history_entry(base, version) for version in versions]
    links = [("self", self_url)] + ([("next", next_url)] if next_url else [])
    return _bundle("history", _links(links), entries, None)
