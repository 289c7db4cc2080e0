"""Where a request's repository comes from: the database, bound to the caller it serves, for
reading, for searching, or inside a write transaction. `Store.write` is the one place a
transaction is opened, committed or rolled back, and retried when it lost a race.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from app import metrics
from app.access import Caller
from app.access.trail import Trail
from app.errors import Contention, WriteConflict
from app.metrics import DatabaseCounts, PoolUsage
from app.storage.db import Connection, Database
from app.storage.gauges import database_counts
from app.storage.repository import Repository

T = TypeVar("T")


class Lent:
    """A connection lent by the database, bound to a caller while it is held.

    A class rather than a generator-based context manager: this is on every read's path.
    """

    __slots__ = ("_caller", "_lending")

    def __init__(self, lending: AbstractAsyncContextManager[Connection], caller: Caller) -> None:
        self._lending = lending
        self._caller = caller

    async def __aenter__(self) -> Repository:
        return Repository(await self._lending.__aenter__(), self._caller)

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._lending.__aexit__(*exc_info)


async def _record(trail: Trail | None, conn: Any) -> None:
    """Store the request's AuditEvent in the write's transaction, unless the write's own
    statement carried it or an earlier transaction of the request stored it."""
    if trail is not None and trail.record_in is not None and not (trail.recorded or trail.rides):
        await trail.record_in(conn)


def _undo(trail: Trail | None, mark: int) -> None:
    """A rolled-back attempt wrote nothing: its resources leave the trail (the Patients it
    concerned stay named), and a record that rode with it is gone too."""
    if trail is not None:
        trail.undo_to(mark)
        trail.rides = False


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

    def reading(self, caller: Caller) -> "Lent":
        """A repository for reads by id and history, outside an explicit transaction."""
        return Lent(self.db.reader(), caller)

    def searching(self, caller: Caller) -> "Lent":
        """A repository for searches: each statement planned for its own values."""
        return Lent(self.db.searcher(), caller)

    async def write(
        self, caller: Caller, work: Callable[[Repository], Awaitable[T]], trail: Trail | None = None
    ) -> T:
        """Run `work` in one transaction, committed here; lost races are retried. The request's
        AuditEvent (`trail`) is stored in the same transaction, so the write and its record
        commit together or not at all."""
        attempts = self.write_retries
        for attempt in range(attempts):
            mark = trail.mark() if trail is not None else 0
            try:
                async with self.db.transaction() as conn:
                    result = await work(Repository(conn, caller, trail))
                    await _record(trail, conn)
                if trail is not None and trail.record_in is not None:
                    trail.recorded = True
                return result
            except WriteConflict:
                _undo(trail, mark)
                if attempt == attempts - 1:
                    break
                metrics.WRITE_RETRIES.inc()
                await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # noqa: S311
            except BaseException:
                _undo(trail, mark)
                raise
        metrics.WRITES_GIVEN_UP.inc()
        raise Contention.of(
            "the resource was changed by concurrent requests while this write was retried; "
            "nothing was applied: send it again"
        )

    def pool_usage(self) -> list[PoolUsage]:
        """The database's connection pools as they are now."""
        return self.db.pool_usage()

    async def counts(self) -> DatabaseCounts:
        """Export jobs by state and the notification backlog (for /metrics)."""
        async with self.db.reader() as conn:
            return await database_counts(conn)

    async def ping(self) -> None:
        """Raise unless the database answers a query."""
        async with self.db.reader() as conn:
            await conn.fetchrow("SELECT 1")
