"""Per-app state the routes need, and the one place a request's caller is resolved and its
repositories are opened: every handler reaches stored data through these.
"""

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import TypeVar

from starlette.requests import Request

from app.access import Caller
from app.access.endpoints import parse_allow_list, parse_networks
from app.access.trail import trail_of
from app.errors import Unauthorized
from app.flags.codes import Vocabulary, vocabulary
from app.records.exporter import Exporter
from app.records.reads import Repository
from app.records.store import Store
from app.settings import Settings

T = TypeVar("T")
Identify = Callable[[Request], Caller]
CALLER = "safeguard.caller"  # where a request's caller is kept once resolved


def unauthenticated(request: Request) -> Caller:
    """No caller was resolved for this request (`app.auth` resolves it from its token)."""
    raise Unauthorized.of("this endpoint needs an access token (Authorization: Bearer)")


@dataclass(slots=True)
class AppContext:
    """Settings, store, vocabulary and the prebuilt CapabilityStatement of one app instance."""

    settings: Settings
    store: Store
    identify: Identify = unauthenticated
    capability: bytes = b""
    exporter: Exporter | None = None  # bulk export jobs (`app.records.exporter`)
    base: str = field(init=False)  # the public FHIR base URL, without a trailing slash
    vocabulary: Vocabulary = field(init=False)  # code systems under the canonical base

    def __post_init__(self) -> None:
        self.base = self.settings.base_url.rstrip("/")
        self.vocabulary = replace(
            vocabulary(self.settings.canonical_base),
            endpoints=parse_allow_list(self.settings.endpoint_allow_list),
            private_networks=parse_networks(self.settings.private_network_list),
        )

    def caller(self, request: Request) -> Caller:
        """Who is asking: resolved from the request's token before routing (`app.auth`), or
        once by `identify` when the app was given one; then kept on the request."""
        caller: Caller | None = request.scope.get(CALLER)
        if caller is None:
            caller = request.scope[CALLER] = self.identify(request)
        return caller

    def reading(self, request: Request) -> AbstractAsyncContextManager[Repository]:
        """The request's caller's repository for reads by id and history."""
        return self.store.reading(self.caller(request))

    def searching(self, request: Request) -> AbstractAsyncContextManager[Repository]:
        """The request's caller's repository for searches."""
        return self.store.searching(self.caller(request))

    async def write(self, request: Request, work: Callable[[Repository], Awaitable[T]]) -> T:
        """Run `work` on the request's caller's repository in one transaction (`Store.write`)."""
        return await self.store.write(self.caller(request), work, trail_of(request.scope))


def app_context(request: Request) -> AppContext:
    """The AppContext of the app serving this request."""
    context: AppContext = request.app.state.context
    return context
