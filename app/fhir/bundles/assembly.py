"""Every Bundle we send, assembled around the stored resource bytes: searchset, history,
transaction-response, batch-response and the summary's collection.

Spec: http://hl7.org/fhir/R4/bundle.html, http://hl7.org/fhir/R4/http.html#history
"""

import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import orjson

from app.clock import instant, now_micros
from app.errors import Issue
from app.fhir import wire
from app.fhir.outcomes import outcome
from app.records.reads import Included, Match, Version

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "200 OK"}


def page_url(base: str, path: str, params: Sequence[tuple[str, str]]) -> str:
    """An absolute URL on our base with the given query pairs."""
    query = urlencode(list(params))
    return f"{base}/{path}" + (f"?{query}" if query else "")


def bundle(
    kind: str,
    entries: Sequence[bytes],
    *,
    links: Sequence[tuple[str, str]] | None = None,
    total: int | None = None,
    timestamped: bool = False,
    last_updated: int | None = None,
) -> bytes:
    """A Bundle's head, then the serialised entries (http://hl7.org/fhir/R4/bundle.html);
    meta.lastUpdated is now unless `last_updated` says otherwise."""
    now = instant(now_micros())
    head: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": now if last_updated is None else instant(last_updated)},
        "type": kind,
    }
    if timestamped:
        head["timestamp"] = now
    if total is not None:
        head["total"] = total
    if links:
        head["link"] = [{"relation": relation, "url": url} for relation, url in links]
    if not entries:  # FHIR JSON has no empty arrays (http://hl7.org/fhir/R4/json.html)
        return orjson.dumps(head)
    return orjson.dumps(head)[:-1] + b',"entry":[' + b",".join(entries) + b"]}"


def _entry(full_url: str, body: bytes, mode: str) -> bytes:
    return (
        b'{"fullUrl":'
        + orjson.dumps(full_url)
        + b',"resource":'
        + body
        + b',"search":{"mode":"'
        + mode.encode()
        + b'"}}'
    )


def searchset(
    base: str,
    resource_type: str,
    matches: Sequence[Match],
    included: Sequence[Included],
    *,
    links: Sequence[tuple[str, str]],
    total: int | None,
    warnings: list[Issue],
    shape: Callable[[bytes, bool], bytes],
) -> bytes:
    """A searchset Bundle: matches, includes, warnings (http://hl7.org/fhir/R4/search.html)."""
    # The outcome entry reports parameters ignored or results cut short.
    entries = [
        _entry(f"{base}/{resource_type}/{m.logical_id}", shape(bytes(m.body), True), "match")
        for m in matches
    ]
    entries += [
        _entry(f"{base}/{i.resource_type}/{i.logical_id}", shape(bytes(i.body), False), "include")
        for i in included
    ]
    if warnings:
        entries.append(orjson.dumps({"resource": outcome(warnings), "search": {"mode": "outcome"}}))
    return bundle("searchset", entries, links=links, total=total)


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
            "etag": wire.etag(version.version_id),
            "lastModified": instant(version.last_updated),
        },
    }
    head = b'{"fullUrl":' + orjson.dumps(f"{base}/{path}")
    if version.body is not None:
        head += b',"resource":' + bytes(version.body)
    return head + b"," + orjson.dumps(meta)[1:]


def history(
    base: str,
    versions: Sequence[Version],
    *,
    self_url: str,
    next_url: str | None,
    last_updated: int,
) -> bytes:
    """A history Bundle, newest first, its meta.lastUpdated the feed's watermark
    (http://hl7.org/fhir/R4/http.html#history)."""
    # A deletion is an entry without a resource.
    entries = [_history_entry(base, version) for version in versions]
    links = [("self", self_url)] + ([("next", next_url)] if next_url else [])
    return bundle("history", entries, links=links, last_updated=last_updated)


def collection(base: str, held: Sequence[tuple[str, bytes]], warnings: dict[str, Any]) -> bytes:
    """A collection Bundle, the warnings last (http://hl7.org/fhir/R4/bundle.html#collection)."""
    entries = [
        b'{"fullUrl":' + orjson.dumps(f"{base}/{reference}") + b',"resource":' + body + b"}"
        for reference, body in held
    ]
    entries.append(orjson.dumps({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": warnings}))
    return bundle("collection", entries, timestamped=True)
