"""Searchset and history Bundles, assembled around the stored resource bytes.

Spec: http://hl7.org/fhir/R4/bundle.html, http://hl7.org/fhir/R4/http.html#history
"""

import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import orjson

from app.errors import Issue
from app.fhir.outcomes import outcome
from app.storage.db import Row
from app.storage.repository import Version, instant, now_micros

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "200 OK"}


def page_url(base: str, path: str, params: Sequence[tuple[str, str]]) -> str:
    """An absolute URL on our base with the given query pairs."""
    query = urlencode(list(params))
    return f"{base}/{path}" + (f"?{query}" if query else "")


def _links(self_url: str, next_url: str | None) -> bytes:
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return orjson.dumps(links)


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


def searchset(
    base: str,
    resource_type: str,
    rows: Sequence[Row],
    *,
    self_url: str,
    next_url: str | None,
    total: int | None,
    warnings: list[Issue],
) -> bytes:
    """A searchset Bundle of stored resources, with an outcome entry for ignored parameters."""
    entries = [
        b'{"fullUrl":'
        + orjson.dumps(f"{base}/{resource_type}/{row[1]}")
        + b',"resource":'
        + bytes(row[2])
        + b',"search":{"mode":"match"}}'
        for row in rows
    ]
    if warnings:
        entries.append(orjson.dumps({"resource": outcome(warnings), "search": {"mode": "outcome"}}))
    return _bundle("searchset", _links(self_url, next_url), entries, total)


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
    return _bundle("history", _links(self_url, next_url), entries, None)
