"""ASGI middleware: the headers every response carries, and the 500 of an unexpected error.

Every response echoes X-Request-ID and X-Correlation-ID (a fresh X-Request-ID if none came),
says `X-Content-Type-Options: nosniff`, and, unless it set a Cache-Control of its own,
`Cache-Control: no-store`: almost every answer holds patient data, and none is worth caching.

A client that disconnects before its request is read is not an error here: its request's
one log line (`app.fhir.observing`) says 499, with no traceback. An exception no handler
turned into a response is answered here, as a 500 OperationOutcome with those headers and
`Connection: close`; the exception is then raised on, so the server logs it and closes the
connection (which the client was told).

Written as plain ASGI (not BaseHTTPMiddleware) so it costs next to nothing per request.
"""

import logging
import re
import uuid
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.fhir.dispatch import route_template
from app.fhir.outcomes import internal_error_response

log = logging.getLogger("safeguard")

_SAFE = re.compile(rb"^[A-Za-z0-9\-_.:]{1,200}$")
_ECHOED = (b"x-request-id", b"x-correlation-id")
NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")
REQUEST_ID = "safeguard.request_id"  # the X-Request-ID echoed, kept in the ASGI scope


class RequestIdMiddleware:
    """Adds the tracing ids and the security headers to every response; answers 500 for
    exceptions that reach it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = _added(scope)
        scope[REQUEST_ID] = next(v for n, v in added if n == b"x-request-id").decode()
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers: list[Any] = list(message.get("headers", []))
                if not any(name == b"cache-control" for name, _ in headers):
                    headers.append(NO_STORE)
                headers.extend(added)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:  # left before its request was read: logged as a 499
            pass
        except Exception as exc:
            route = route_template(scope)
            log.error("unhandled %s on %s %s", type(exc).__name__, scope["method"], route)
            if not started:
                await internal_error_response()(scope, receive, send_with_headers)
            raise


def _added(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The tracing ids to echo, the first of each (a fresh X-Request-ID if none came), and
    nosniff."""
    echoed: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _ECHOED and name not in echoed:
            echoed[name] = value
    added = [(name, value) for name, value in echoed.items() if _SAFE.match(value)]
    if not any(name == b"x-request-id" for name, _ in added):
        added.append((b"x-request-id", str(uuid.uuid4()).encode()))
    added.append(NOSNIFF)
    return added
