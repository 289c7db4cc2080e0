"""Per-app state the routes need, and the one place a write transaction is run and retried."""

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from starlette.requests import Request

from app.access import ANONYMOUS, Caller
from app.errors import Conflict, WriteConflict
from app.flags.codes import Vocabulary, vocabulary
from app.settings import Settings
from app.storage.db import Connection, Database

T = TypeVar("T")


@dataclass(slots=True)
class AppContext:
    """Settings, database, vocabulary and the prebuilt CapabilityStatement of one app instance."""

    settings: Settings
    db: Database
    capability: bytes = b""
    base: str = field(init=False)  # the public FHIR base URL, without a trailing slash
    vocabulary: Vocabulary = field(init=False)  # code systems under the canonical base

    def __post_init__(self) -> None:
        self.base = self.settings.base_url.rstrip("/")
        self.vocabulary = vocabulary(self.settings.canonical_base)

    async def write(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `work` in one transaction, committed here; lost races are retried."""
        attempts = self.settings.write_retries
        for attempt in range(attempts):
            try:
                async with self.db.transaction() as conn:
                    return await work(conn)
            except WriteConflict:
                if attempt == attempts - 1:
                    break
                await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # noqa: S311
        raise Conflict.of("the resource was changed by concurrent requests; try again")


def app_context(request: Request) -> AppContext:
    """The AppContext of the app serving this request."""
    context: AppContext = request.app.state.context
    return context


def caller_of(request: Request) -> Caller:
    """Who is asking; every request is anonymous with full access until access control lands."""
    return ANONYMOUS
