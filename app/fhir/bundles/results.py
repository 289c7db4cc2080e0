"""The entries of transaction-response and batch-response Bundles, around stored bytes.

Spec: http://hl7.org/fhir/R4/http.html#transaction-response
"""

from http import HTTPStatus
from typing import Any

import orjson
from starlette.requests import Request

from app.clock import instant
from app.errors import FhirError
from app.fhir import wire
from app.fhir.bundles import assembly
from app.fhir.context import app_context
from app.fhir.outcomes import information, outcome
from app.records.service import DeleteResult, WriteResult


def _status(code: int) -> str:
    return f"{code} {HTTPStatus(code).phrase}"


def _entry(full_url: str | None, resource: bytes | None, response: dict[str, Any]) -> bytes:
    parts = [b'"fullUrl":' + orjson.dumps(full_url)] if full_url else []
    if resource is not None:
        parts.append(b'"resource":' + resource)
    parts.append(b'"response":' + orjson.dumps(response))
    return b"{" + b",".join(parts) + b"}"


def written(request: Request, result: WriteResult) -> bytes:
    """A create, update or patch: status, location, etag, lastModified, and per `Prefer`
    the resource or an OperationOutcome."""
    version, resource_type = result.version, result.resource_type
    path = f"{resource_type}/{version.logical_id}"
    response: dict[str, Any] = {
        "status": _status(201 if result.created else 200),
        "location": f"{path}/_history/{version.version_id}",
        "etag": wire.etag(version.version_id),
        "lastModified": instant(version.last_updated),
    }
    preference = wire.prefer(request, "return")
    body = version.body if preference in (None, "representation") else None
    if preference == "OperationOutcome":
        text = "created" if result.created else "existing" if result.existing else "updated"
        response["outcome"] = information(f"{path} {text}")
    return _entry(f"{app_context(request).base}/{path}", body, response)


def deleted(result: DeleteResult) -> bytes:
    """A delete: 204, with the ETag of the deletion when there was something to delete."""
    response: dict[str, Any] = {"status": _status(204)}
    if result.version is not None:
        response["etag"] = wire.etag(result.version.version_id)
        response["lastModified"] = instant(result.version.last_updated)
    return _entry(None, None, response)


def read(
    full_url: str | None,
    body: bytes,
    version_id: int | None = None,
    last_updated: int | None = None,
) -> bytes:
    """A read, vread or search: 200 with the resource (or searchset Bundle)."""
    response: dict[str, Any] = {"status": _status(200)}
    if version_id is not None and last_updated is not None:
        response["etag"] = wire.etag(version_id)
        response["lastModified"] = instant(last_updated)
    return _entry(full_url, body, response)


def failed(error: FhirError) -> bytes:
    """A batch entry that failed: its status and OperationOutcome."""
    return _entry(None, None, {"status": _status(error.status), "outcome": outcome(error.issues)})


def bundle(kind: str, entries: list[bytes]) -> bytes:
    """A transaction- or batch-response, no links (http://hl7.org/fhir/R4/bundle.html)."""
    return assembly.bundle(kind, entries)
