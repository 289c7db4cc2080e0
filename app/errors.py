"""The one error hierarchy of the service; `app.fhir.outcomes` renders it as OperationOutcome.

FhirError                    500 (never raised on purpose)
 +-- Invalid                 400  bad syntax, bad parameters, malformed headers
 +-- Unauthorized            401  no bearer token, or a bad one (with WWW-Authenticate)
 +-- Forbidden               403
 +-- NotFound                404  unknown resource, type or version
 +-- MethodNotAllowed        405
 +-- NotAcceptable           406  Accept asks for a format we do not produce
 +-- RequestTimeout          408  the body did not arrive in time (with Connection: close)
 +-- Conflict                409  a business refusal: not to be retried as it is
 |    +-- Contention              concurrent writers won every retry: sending it again can work
 +-- Gone                    410  resource (or version) deleted
 +-- PreconditionFailed      412  If-Match mismatch, conditional with several matches
 +-- PayloadTooLarge         413
 +-- UnsupportedMediaType    415  XML or another body type
 +-- Unprocessable           422  well-formed, but breaks a rule (binding, reference, NHS no.)
 |    +-- NhsNumberHeld           an NHS number another live Patient holds
 +-- TooManyRequests         429  over the client's request rate (with Retry-After)
 +-- ClientClosedRequest     499  the client went away before its answer (never seen by it)
 +-- Unavailable             503  the database or the audit trail cannot be reached now
 |    +-- OutcomeUnknown          the connection broke while a write was committing
 +-- ExportFailed            500  a bulk export job ended in failure (its status, not retried)
WriteConflict                storage-level: a concurrent writer won; the write is retried
"""

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome issue: what went wrong and where."""

    diagnostics: str
    code: str = "invalid"
    expression: tuple[str, ...] = ()
    severity: str = "error"


@dataclass
class FhirError(Exception):
    """Base of all errors that become an OperationOutcome."""

    issues: list[Issue] = field(default_factory=list)
    status = 500
    default_code = "exception"

    @classmethod
    def of(cls, diagnostics: str, *expression: str, code: str | None = None) -> "FhirError":
        """An error with one issue."""
        issue = Issue(diagnostics, code or cls.default_code, tuple(expression))
        return cls([issue])

    def __str__(self) -> str:
        return "; ".join(issue.diagnostics for issue in self.issues)


class Invalid(FhirError):
    """The request is malformed (400)."""

    status = 400
    default_code = "invalid"

    @classmethod
    def strictly(cls, ignored: Sequence[Issue]) -> "Invalid":
        """400 for the parameters a search would otherwise ignore, under `Prefer:
        handling=strict`: each an error saying it is refused, where it is
        (http://hl7.org/fhir/R4/search.html#errors)."""
        return cls(
            [
                Issue(
                    issue.diagnostics.replace(
                        "was ignored", "is refused (Prefer: handling=strict)"
                    ),
                    issue.code,
                    issue.expression,
                    severity="error",
                )
                for issue in ignored
            ]
        )


@dataclass
class Unauthorized(FhirError):
    """No valid bearer token (401); `challenge` is the WWW-Authenticate header's value."""

    challenge: str = "Bearer"
    status = 401
    default_code = "login"


class Forbidden(FhirError):
    """The caller may not do this (403)."""

    status = 403
    default_code = "forbidden"


class NotFound(FhirError):
    """No such resource, type or version (404)."""

    status = 404
    default_code = "not-found"


class MethodNotAllowed(FhirError):
    """The interaction is not supported at this URL (405)."""

    status = 405
    default_code = "not-supported"


class NotAcceptable(FhirError):
    """The requested response format is not produced (406)."""

    status = 406
    default_code = "not-supported"


class RequestTimeout(FhirError):
    """The request's body did not arrive within the body timeout (408); the connection closes."""

    status = 408
    default_code = "timeout"


class Conflict(FhirError):
    """The write is refused by the current state of the records (409): a second active flag of
    a kind a child has one of (code `duplicate`), deleting a safeguarding flag (`business-rule`).
    Sending the same request again gets the same answer."""

    status = 409
    default_code = "business-rule"


@dataclass
class Contention(Conflict):
    """Concurrent requests won every retry of this write, or its X-Request-ID is still being
    answered (409, code `transient`, Retry-After): nothing was applied, and sending it again
    can succeed (http://hl7.org/fhir/R4/valueset-issue-type.html#transient)."""

    retry_after: int = 1
    default_code = "transient"


class Gone(FhirError):
    """The resource was deleted (410)."""

    status = 410
    default_code = "deleted"


class PreconditionFailed(FhirError):
    """A version or conditional precondition does not hold (412)."""

    status = 412
    default_code = "conflict"


class PayloadTooLarge(FhirError):
    """The body is over the configured limit (413)."""

    status = 413
    default_code = "too-costly"


class UnsupportedMediaType(FhirError):
    """The body is not JSON (415)."""

    status = 415
    default_code = "not-supported"


class Unprocessable(FhirError):
    """The resource is well-formed but breaks a rule (422)."""

    status = 422
    default_code = "business-rule"


@dataclass
class NhsNumberHeld(Unprocessable):
    """A Patient's NHS number already belongs to other live Patients (422): their pks."""

    holders: frozenset[int] = frozenset()


@dataclass
class TooManyRequests(FhirError):
    """The client is over its request rate (429); `retry_after`: seconds until it may retry."""

    retry_after: int = 1
    status = 429
    default_code = "throttled"


class ClientClosedRequest(FhirError):
    """The client disconnected before its answer; the work left was not done (499)."""

    # No standard status means this, and the client never sees it: 499 is nginx's "client
    # closed request", known to log readers, and it keeps these requests apart in the audit
    # trail from answers a client was sent (4xx) and from the server's own failures (5xx).
    status = 499
    default_code = "incomplete"


@dataclass
class Unavailable(FhirError):
    """The service cannot answer now (503), e.g. its audit trail cannot be written;
    `retry_after`: seconds after which a retry may succeed."""

    retry_after: int = 1
    status = 503
    default_code = "transient"


class OutcomeUnknown(Unavailable):
    """The database connection broke while a write was committing (503): it may or may not
    have been applied, and only a replay with the same X-Request-ID can tell."""

    @classmethod
    def during_commit(cls) -> "OutcomeUnknown":
        """The error for a write whose COMMIT got no answer."""
        text = (
            "outcome unknown: the connection to the database broke while the write was being "
            "committed, so it may or may not have been applied; retry with the same "
            "X-Request-ID (a UUID) to learn which"
        )
        return cls([Issue(text, "transient")])


class ExportFailed(FhirError):
    """A bulk export job failed as a whole (500, code `processing`: not transient, so a
    client does not poll again); https://hl7.org/fhir/uv/bulkdata/STU2/export.html#response---error-status-1"""

    default_code = "processing"

    @classmethod
    def because(cls, diagnostics: str) -> "ExportFailed":
        """The error of a job that failed for this reason."""
        return cls([Issue(diagnostics, cls.default_code, severity="fatal")])


class WriteConflict(Exception):
    """A concurrent transaction won a race; the unit of work is safe to retry."""
