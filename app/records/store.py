"""Where a request's repository comes from: the database, bound to the caller it serves, for
reading, for searching, or inside a write transaction. `Store.write` is the one place a
transaction is opened, committed or rolled back, and retried when it lost a race.
"""

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from app.access import Caller
from app.errors import Conflict, WriteConflict
from app.storage.db import Database
from app.storage.repository import Repository

T = TypeVar("T")


class Store:
    """The database, handing out repositories bound to callers."""

    def __init__(self, db: Database, write_retries: int) -> None:
        self.db = db
        self.write_retries = write_retries

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.db.dialect

    async def open(self) -> None:
        """Connect (lazily, if the database is not reachable yet)."""
        await self.db.open()

    async def close(self) -> None:
        """Let go of every connection."""
        await self.db.close()

    @asynccontextmanager
    async def reading(self, caller: Caller) -> AsyncIterator[Repository]:
        """A repository for reads by id and history, outside an explicit transaction."""
        async with self.db.reader() as conn:
            yield Repository(conn, caller)

    @asynccontextmanager
    async def searching(self, caller: Caller) -> AsyncIterator[Repository]:
        """A repository for searches: each statement planned for its own values."""
        async with self.db.searcher() as conn:
            yield Repository(conn, caller)

    async def write(self, caller: Caller, work: Callable[[Repository], Awaitable[T]]) -> T:
        """Run `work` in one transaction, committed here; lost races are retried."""
        attempts = self.write_retries
        for attempt in range(attempts):
            try:
                async with self.db.transaction() as conn:
                    return await work(Repository(conn, caller))
            except WriteConflict:
                if attempt == attempts - 1:
                    break
                await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # noqa: S311
        raise Conflict.of("the resource was changed by concurrent requests; try again")

    async def ping(self) -> None:
        """Raise unless the database answers a query."""
        async with self.db.reader() as conn:
            await conn.fetchrow("SELECT 1")
