"""ASGI middleware, the outermost: each request's metrics and its one log line.

Both name the request by its route template (`dispatch.route_template`), method and status,
never by its path or query, which may hold NHS numbers and names. The log line
(`safeguard.requests`, JSON: `app.logs`) adds the request's id (the X-Request-ID echoed, or
the one made for it; one that is not a UUID, free text a client could fill with anything, as
`sha256:` and the first 16 hex digits of its digest), the client and organisation its token
stands for, and its duration.
A request answered by nobody, because its client left first, has status 499. Plain ASGI, and
the metric children are kept per label set, so a request costs a few microseconds here
(besides its log line, when INFO is on).
"""

import hashlib
import logging
import re
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.access import Caller
from app.errors import ClientClosedRequest
from app.fhir.context import CALLER
from app.fhir.dispatch import route_template
from app.fhir.middleware import REQUEST_ID
from app.logs import REQUESTS, request_logger

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"  # any other method, so a client cannot add label values at will


def logged_id(request_id: str | None) -> str | None:
    """A request id as the log may show it: a UUID as it is, anything else digested."""
    if request_id is None or UUID.fullmatch(request_id):
        return request_id
    return "sha256:" + hashlib.sha256(request_id.encode()).hexdigest()[:16]


class RequestMetrics:
    """The request counter and latency histogram, their children kept by label values."""

    def __init__(self) -> None:
        self._counted: dict[tuple[str, str, int], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request and time it."""
        counted = self._counted.get((route, method, status))
        if counted is None:
            counted = metrics.REQUESTS.labels(route, method, str(status))
            self._counted[route, method, status] = counted
        counted.inc()
        timed = self._timed.get((route, method))
        if timed is None:
            timed = self._timed[route, method] = metrics.LATENCY.labels(route, method)
        timed.observe(seconds)


class Observing:
    """Counts, times and logs every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.metrics = RequestMetrics()
        self.log = request_logger()
        self.requests_log = logging.getLogger(REQUESTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = ClientClosedRequest.status

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            self._observed(scope, status, time.perf_counter() - started)

    def _observed(self, scope: Scope, status: int, seconds: float) -> None:
        route = route_template(scope)
        method = scope["method"] if scope["method"] in METHODS else OTHER_METHOD
        self.metrics.observe(route, method, status, seconds)
        if self.requests_log.isEnabledFor(logging.INFO):
            caller: Caller | None = scope.get(CALLER)
            self.log.info(
                "request",
                request_id=logged_id(scope.get(REQUEST_ID)),
                client_id=caller.subject if caller else None,
                organisation=caller.organisation if caller else None,
                route=route,
                method=method,
                status=status,
                duration_ms=round(seconds * 1000, 3),
            )
