"""ASGI middleware: every /fhir request is authenticated before it is routed.

A request under /fhir (save `GET /fhir/metadata` and the SMART configuration) must carry
`Authorization: Bearer <access token>`; otherwise it is answered 401 with WWW-Authenticate
and an OperationOutcome, before any other check (body size, media type, parameters). The
caller the token stands for is kept in the ASGI scope, where `AppContext.caller` reads it.
Plain ASGI, like `app.fhir.middleware`: a token seen before costs a dict lookup.
Spec: https://www.rfc-editor.org/rfc/rfc6750#section-3
"""

from starlette.types import ASGIApp, Receive, Scope, Send

from app.access import Caller
from app.auth.ratelimit import RateLimiter
from app.auth.tokens import Authority
from app.errors import FhirError, Issue, TooManyRequests, Unauthorized
from app.fhir.context import CALLER
from app.fhir.outcomes import error_response

OPEN = {"/fhir/metadata": ("GET", "HEAD"), "/fhir/.well-known/smart-configuration": None}


def guarded(path: str, method: str) -> bool:
    """Whether a request needs a bearer token: all of /fhir but its open endpoints."""
    if path != "/fhir" and not path.startswith("/fhir/"):
        return False
    if path in OPEN:
        methods = OPEN[path]
        return methods is not None and method not in methods
    return True


def bearer(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer` header ("" if the header is malformed)."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


class Authentication:
    """Resolves each guarded request's caller from its bearer token, or answers 401 (or 429
    when the client is over its rate)."""

    def __init__(self, app: ASGIApp, authority: Authority, limiter: RateLimiter | None) -> None:
        self.app, self.authority, self.limiter = app, authority, limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not guarded(scope["path"], scope["method"]):
            await self.app(scope, receive, send)
            return
        try:
            scope[CALLER] = await self._caller(scope)
        except FhirError as error:
            await error_response(error)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _caller(self, scope: Scope) -> Caller:
        token = bearer(scope)
        if token is None:
            raise Unauthorized.of("this endpoint needs an access token (Authorization: Bearer)")
        if not token:
            text = "the Authorization header must be `Bearer <access token>`"
            raise Unauthorized([Issue(text, "login")], challenge='Bearer error="invalid_request"')
        caller = scope[CALLER] = await self.authority.caller(token)  # a 429 names its client
        if self.limiter is not None and (wait := self.limiter.take(caller.subject)):
            text = f"over the rate limit of this client; retry after {wait} s"
            raise TooManyRequests([Issue(text, "throttled")], retry_after=wait)
        return caller
