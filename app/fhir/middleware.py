"""ASGI middleware: echo X-Request-ID and X-Correlation-ID on every response.

Written as plain ASGI (not BaseHTTPMiddleware) so it costs next to nothing per request.
"""

import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_SAFE = re.compile(rb"^[A-Za-z0-9\-_.:]{1,200}$")
_ECHOED = (b"x-request-id", b"x-correlation-id")


class RequestIdMiddleware:
    """Copies the request's tracing ids to the response (a fresh X-Request-ID if none)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        echoed: list[tuple[bytes, bytes]] = [
            (name, value)
            for name, value in scope["headers"]
            if name in _ECHOED and _SAFE.match(value)
        ]
        if not any(name == b"x-request-id" for name, _ in echoed):
            echoed.append((b"x-request-id", str(uuid.uuid4()).encode()))

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                headers.extend(echoed)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_ids)
