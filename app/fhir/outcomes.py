"""Errors -> OperationOutcome responses: the one place any error is rendered.

The tree of errors and their statuses is in `app.errors`; here each becomes
http://hl7.org/fhir/R4/operationoutcome.html, with the NHS Spine error code alongside.
"""

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.errors import (
    Contention,
    FhirError,
    Issue,
    MethodNotAllowed,
    RequestTimeout,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)

FHIR_JSON = "application/fhir+json; charset=utf-8"
SPINE_CODES = "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode"

_SPINE_BY_STATUS = {
    400: "INVALID_VALUE",
    401: "ACCESS_DENIED",
    403: "ACCESS_DENIED",
    404: "NO_RECORD_FOUND",
    405: "NOT_IMPLEMENTED",
    406: "NOT_ACCEPTABLE",
    410: "NO_RECORD_FOUND",
    412: "PRECONDITION_FAILED",
    413: "INVALID_VALUE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_RESOURCE",
    500: "INTERNAL_SERVER_ERROR",
}
# A 409's Spine code is its meaning's, not its status's: only a duplicate is DUPLICATE_REJECTED;
# a business refusal or contention has no Spine code that says what it is, and carries none.
_SPINE_BY_ISSUE = {(409, "duplicate"): "DUPLICATE_REJECTED"}


def spine_code(status: int, code: str) -> str | None:
    """The NHS Spine error code for an issue of `code` in an answer of `status`, if one fits."""
    return _SPINE_BY_ISSUE.get((status, code)) or _SPINE_BY_STATUS.get(status)


def issue_json(issue: Issue, status: int | None = None) -> dict[str, Any]:
    """One OperationOutcome.issue."""
    rendered: dict[str, Any] = {
        "severity": issue.severity,
        "code": issue.code,
    }
    spine = spine_code(status, issue.code) if status is not None else None
    if spine is not None:
        rendered["details"] = {"coding": [{"system": SPINE_CODES, "code": spine}]}
    rendered["diagnostics"] = issue.diagnostics
    if issue.expression:
        rendered["expression"] = list(issue.expression)
    return rendered


def outcome(issues: list[Issue], status: int | None = None) -> dict[str, Any]:
    """An OperationOutcome resource holding `issues`."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [issue_json(issue, status) for issue in issues],
    }


def information(text: str, warnings: Sequence[Issue] = ()) -> dict[str, Any]:
    """An OperationOutcome with one informational issue, then any warnings."""
    return outcome([Issue(text, "informational", severity="information"), *warnings])


def error_response(error: FhirError) -> Response:
    """The response for an error: its status and an OperationOutcome."""
    issues = error.issues or [Issue("error", error.default_code)]
    body = orjson.dumps(outcome(issues, error.status))
    response = Response(body, status_code=error.status, media_type=FHIR_JSON)
    if isinstance(error, Unauthorized):
        response.headers["WWW-Authenticate"] = error.challenge
    elif isinstance(error, TooManyRequests | Unavailable | Contention):
        response.headers["Retry-After"] = str(error.retry_after)
    elif isinstance(error, RequestTimeout):
        response.headers["Connection"] = "close"
    return response


def internal_error_response() -> Response:
    """A 500 that tells nothing of the internals (the cause is logged without patient data).
    It does not claim a write was not applied: the error may have come after its commit.
    `Connection: close`: the server drops the connection after an unexpected error, and says so
    rather than leaving the client's next request on it to fail."""
    text = (
        "internal error, logged under this request's X-Request-ID; a write may or may not have "
        "been applied: retry with the same X-Request-ID (a UUID) to learn which"
    )
    response = error_response(FhirError([Issue(text, "exception")]))
    response.headers["Connection"] = "close"
    return response


class ReadOnly:
    """An ASGI app for the methods a read-only URL does not take: 405 with `Allow`."""

    def __init__(self, why: str, allow: str = "GET, HEAD") -> None:
        self.why, self.allow = why, allow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        text = f"{scope['method']} is not allowed: {self.why}"
        response = error_response(MethodNotAllowed.of(text))
        response.headers["Allow"] = self.allow
        await response(scope, receive, send)
