"""How `safeguard serve` reads requests: uvicorn's HTTP protocols, with a deadline for each
request's head and one for its body.

uvicorn (pinned, 0.54) has no read timeout. Its one timer, `timeout_keep_alive`, runs only
between requests and is cancelled by the first byte that arrives, so a client that sends a
request a byte at a time, or never finishes one, holds its connection (and a place under
`limit_concurrency`) for ever. Here:

- the head (request line and headers) must be complete `header_timeout_seconds` after the
  connection opens or, on a kept-alive connection, after the next request's first byte (or
  after the previous answer, if that byte came before it); otherwise the connection is
  closed, unanswered;
- the body must be complete `body_timeout_seconds` after its head. If no answer has started,
  the app's next `receive` raises `RequestTimeout` where it reads the body (a 408
  OperationOutcome with `Connection: close`) and the connection is closed after the answer,
  whatever it is; an answer started, or sent without reading the body, is cut short there.

Both of uvicorn's implementations are covered: httptools (a pinned dependency, so the one
uvicorn's `auto` picks, and ours) and h11. The uvicorn internals relied on, tested on both:
the protocols' `connection_made`, `data_received`, `connection_lost`, `on_response_complete`,
`loop`, `transport` and `cycle` (the latest request's `RequestResponseCycle`); httptools'
parser callbacks `on_message_begin`, `on_headers_complete` and `on_message_complete`; h11's
`handle_events`, `conn.their_state` and `conn.trailing_data`; the cycle's `receive` (looked up
when the request's task first runs, just after the cycle is made, so an attribute set on the
cycle replaces it; under an eager task factory it would not, and a late body would only have
its connection closed), `message_event`, `keep_alive`, `response_started` and
`response_complete`.
"""

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.errors import RequestTimeout
from app.settings import Settings

log = logging.getLogger("safeguard.server")

Implementation = Literal["auto", "h11", "httptools"]


class BodyDeadline:
    """One request's body deadline: the request's `receive`, raising once it has passed."""

    def __init__(self, protocol: Any, seconds: float) -> None:
        self.protocol, self.cycle, self.seconds = protocol, protocol.cycle, seconds
        self.late = False
        self.uvicorn_receive: Callable[[], Awaitable[dict[str, Any]]] = self.cycle.receive
        self.cycle.receive = self.receive
        self.timer = protocol.loop.call_later(seconds, self.passed)

    async def receive(self) -> dict[str, Any]:
        """The next ASGI message; the 408 if the body is late and no answer has started."""
        message = await self.uvicorn_receive()
        waiting = message["type"] == "http.request" and message.get("more_body", False)
        if self.late and waiting and not self.cycle.response_started:
            raise RequestTimeout.of(f"the request body did not arrive within {self.seconds} s")
        return message

    def passed(self) -> None:
        """Cut an answer short if one has started; otherwise the app answers 408, then the
        connection closes (that answer is logged as every request is)."""
        if self.cycle.response_started:
            log.info("request body not complete within %s s: connection closed", self.seconds)
            self.protocol.transport.close()
        else:
            self.late = True
            self.cycle.keep_alive = False  # closed once answered
            self.cycle.message_event.set()  # a `receive` waiting for the body wakes up


class Deadlines:
    """Adds the head and body deadlines to one of uvicorn's HTTP protocols (a mixin)."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    def __init__(self, *args: Any, header_timeout: float, body_timeout: float, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.header_timeout, self.body_timeout = header_timeout, body_timeout
        self.head_timer: asyncio.TimerHandle | None = None
        self.body_deadline: BodyDeadline | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._start_head_clock()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        self._time_next_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._time_next_head()  # part of it may have come with the request just answered

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # type: ignore[misc]
        self._stop_head_clock()
        self.body_arrived()

    def head_arrived(self) -> None:
        """A request's head is complete: its body's deadline starts."""
        self._stop_head_clock()
        self.body_arrived()
        self.body_deadline = BodyDeadline(self, self.body_timeout)

    def body_arrived(self) -> None:
        """The latest request's body is complete (or there is none to wait for)."""
        if self.body_deadline is not None:
            self.body_deadline.timer.cancel()
            self.body_deadline = None

    def partial_head(self) -> bool:
        """Whether part of a request's head has come, and not the rest."""
        raise NotImplementedError

    def _time_next_head(self) -> None:
        """Start the head clock if the next request's head has begun while none is answered."""
        if self._between_requests() and self.partial_head():
            self._start_head_clock()

    def _between_requests(self) -> bool:
        """No request is being answered: none came yet, or the last one is answered."""
        return self.cycle is None or bool(self.cycle.response_complete)

    def _start_head_clock(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.header_timeout, self._head_late)

    def _stop_head_clock(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_late(self) -> None:
        self.head_timer = None
        if self._between_requests() and not self.transport.is_closing():
            log.info("no complete request head within %s s: connection closed", self.header_timeout)
            self.transport.close()


class H11WithDeadlines(Deadlines, H11Protocol):
    """uvicorn's h11 protocol, with the deadlines."""

    def handle_events(self) -> None:
        latest = self.cycle
        super().handle_events()
        if self.cycle is not latest:
            self.head_arrived()
        if self.conn.their_state is not h11.SEND_BODY:
            self.body_arrived()

    def partial_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])


class HttpToolsWithDeadlines(Deadlines, HttpToolsProtocol):
    """uvicorn's httptools protocol, with the deadlines."""

    head_begun = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_begun = True

    def on_headers_complete(self) -> None:
        self.head_begun = False
        latest = self.cycle
        super().on_headers_complete()
        if self.cycle is not latest:
            self.head_arrived()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.body_arrived()

    def partial_head(self) -> bool:
        return self.head_begun


PROTOCOLS: dict[str, type[Deadlines]] = {
    "h11": H11WithDeadlines,
    "httptools": HttpToolsWithDeadlines,
}


def http_protocol(settings: Settings, implementation: Implementation = "auto") -> Any:
    """uvicorn's `http` option: its protocol with the settings' deadlines; `auto` is httptools,
    as uvicorn's own `auto` picks when httptools is installed (a pinned dependency). A partial
    of a module-level class, so `--workers N` can pickle it for each worker."""
    chosen = PROTOCOLS["httptools" if implementation == "auto" else implementation]
    return functools.partial(
        chosen,
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
    )
