"""Whether a request's client is still there, so that long work stops once it has gone.

ASGI tells an app its client went away by answering `receive()` with `http.disconnect`, but
only when asked, and only after the request's body was read. `Watching` (ASGI middleware)
keeps a `Presence` in each FHIR request's scope; the first check after the body was read
starts a task that asks, and each check between units of work (a batch's entries, a
transaction's steps up to its commit, a search's include rounds) raises `ClientClosedRequest`
once the client is gone. Nothing is cancelled: a unit of work in a database transaction ends
as it would have, and the request ends at the next check (a transaction rolled back, if that
comes before its commit). Its AuditEvent records status 499 (`app.errors`).
"""

import asyncio

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ClientClosedRequest

PRESENCE = "safeguard.presence"  # where a request's Presence is kept in its ASGI scope


class Presence:
    """One request's client: still there, or gone (an `http.disconnect` was received)."""

    __slots__ = ("_early", "_receive", "_watcher", "body_read", "gone")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._early: Message | None = None  # the body, read ahead before the app asked
        self._watcher: asyncio.Task[Message] | None = None
        self.body_read = False
        self.gone = False

    async def read_ahead(self) -> None:
        """Read a request's (empty) body now, so that watching may start at any check."""
        self._early = await self._next()

    async def receive(self) -> Message:
        """The app's `receive`: the body, then what the watcher receives, once it started."""
        if self._early is not None:
            message, self._early = self._early, None
            return message
        if self._watcher is not None:
            message = await asyncio.shield(self._watcher)
            if message["type"] != "http.disconnect":
                self._watcher = None  # not the end: the next check watches afresh
            return message
        return await self._next()

    async def _next(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.gone = True
        elif not message.get("more_body", False):
            self.body_read = True
        return message

    async def check(self) -> None:
        """Raise `ClientClosedRequest` if the client has gone. The first check after the body
        was read starts watching; each lets the event loop turn, so that the watcher (and the
        server, on a loop kept busy by inline SQLite calls) sees a disconnect in time."""
        if self._watcher is None and self.body_read and not self.gone:
            self._watcher = asyncio.create_task(self._next())
        await asyncio.sleep(0)
        if self.gone:
            raise ClientClosedRequest.of("the client closed the connection before its answer")

    def close(self) -> None:
        """Stop watching: the request is over."""
        if self._watcher is not None:
            self._watcher.cancel()


async def still_there(request: Request) -> None:
    """Raise `ClientClosedRequest` if the request's client has gone (`Presence.check`)."""
    presence: Presence | None = request.scope.get(PRESENCE)
    if presence is not None:
        await presence.check()


def _bodiless(scope: Scope) -> bool:
    """Whether a request has no body (neither a Content-Length above 0 nor chunks)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return False
    return True


class Watching:
    """ASGI middleware: a `Presence` for each request to /fhir, whose `receive` the app uses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/fhir"):
            await self.app(scope, receive, send)
            return
        presence = scope[PRESENCE] = Presence(receive)
        if _bodiless(scope):
            await presence.read_ahead()
        try:
            await self.app(scope, presence.receive, send)
        finally:
            presence.close()
