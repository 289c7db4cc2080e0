"""Connections: asyncpg pools for PostgreSQL; SQLite, the embedded default, in `sqlite`.

SQL is written once with `$1` placeholders; SQLite gets them as `?1` (same numbering).
The one place a transaction is opened, committed or rolled back is `Database.transaction`.
"""

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import asyncpg

from app.errors import Issue, OutcomeUnknown, Unavailable, WriteConflict
from app.metrics import PoolUsage
from app.storage.pgpool import ConnectionPool
from app.storage.sqlite import SqliteDatabase, connect_sqlite, sqlite_path

__all__ = [
    "Connection",
    "Database",
    "PostgresDatabase",
    "Row",
    "SqliteDatabase",
    "asyncpg_dsn",
    "connect_sqlite",
    "make_database",
    "sqlite_path",
]

Row = Sequence[Any]


class Connection(Protocol):
    """What repository code may do with a connection."""

    dialect: str

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...
    async def fetchrow_final(self, sql: str, *args: Any) -> Row | None: ...
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...
    async def execute(self, sql: str, *args: Any) -> None: ...
    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...
    def expect_more(self) -> None: ...
    def local_watermark(self) -> int | None: ...


class Database(Protocol):
    """A pool of connections to one database."""

    dialect: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def transaction(self) -> Any: ...
    def reader(self) -> Any: ...
    def searcher(self) -> Any: ...
    def pool_usage(self) -> list[PoolUsage]: ...


class PgConnection:
    """An asyncpg connection seen through the Connection protocol.

    Inside `PostgresDatabase.transaction` BEGIN is sent just before the first statement, so a
    unit of work whose only statement is a `fetchrow_final` runs as one implicit transaction:
    one round trip instead of three.
    """

    dialect = "postgresql"

    def __init__(self, conn: Any, *, deferred_begin: bool = False) -> None:
        self._conn = conn
        self._begin_pending = deferred_begin
        self._may_run_alone = deferred_begin
        self.in_transaction = False

    def expect_more(self) -> None:
        """Several writes follow (a transaction Bundle): none may commit on its own."""
        self._may_run_alone = False

    def local_watermark(self) -> None:
        """None: the watermark is found from the server's sessions (`feed`)."""

    async def _begin_if_pending(self) -> None:
        if self._begin_pending:
            self._begin_pending = False
            await self._conn.execute("BEGIN")
            self.in_transaction = True

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        await self._begin_if_pending()
        try:
            row: Row | None = await self._conn.fetchrow(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise WriteConflict(str(exc)) from exc
        return row

    async def fetchrow_final(self, sql: str, *args: Any) -> Row | None:
        """The unit of work's last statement: alone, it needs no explicit transaction, and
        commits as it runs (so a connection lost meanwhile leaves its outcome unknown)."""
        if not (self._may_run_alone and self._begin_pending):
            return await self.fetchrow(sql, *args)
        self._begin_pending = False
        if self._conn.is_closed():  # gone before anything was sent: surely not applied
            self._conn.terminate()
            raise unreachable()
        try:
            return await self.fetchrow(sql, *args)
        except _CONNECTION_LOST as exc:
            if not connection_lost(self._conn, exc):
                raise
            raise OutcomeUnknown.during_commit() from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        await self._begin_if_pending()
        rows: list[Row] = await self._conn.fetch(sql, *args)
        return rows

    async def execute(self, sql: str, *args: Any) -> None:
        await self._begin_if_pending()
        try:
            await self._conn.execute(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            raise WriteConflict(str(exc)) from exc

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._begin_if_pending()
        try:
            await self._conn.executemany(sql, list(rows))
        except asyncpg.UniqueViolationError as exc:
            raise WriteConflict(str(exc)) from exc


async def _end_transaction(conn: Any) -> None:
    """Make a connection fit to lend again: roll back what is left open, or terminate it.

    The app keeps no session state (no LISTEN, advisory locks, SET or cursors), so a
    connection outside a transaction needs no reset query.
    """
    if conn.is_closed():
        return
    try:
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")
    except Exception:  # broken: never lend it again
        conn.terminate()
    except BaseException:
        conn.terminate()
        raise


# Statements are prepared once per pooled connection and PostgreSQL's default plan cache
# mode applies: statements whose plans do not depend on their parameters' values (the
# write statement, lookups by id) settle on one generic plan and skip planning. JIT only
# costs time on queries this short.
SESSION_SETTINGS = {"jit": "off"}
# Searches are the exception: how many rows a code or a name matches varies a thousandfold,
# and a generic plan, blind to the value, hashes every match of a common code to show 50.
# Their connections plan each execution with its values (a few hundred microseconds).
SEARCH_SETTINGS = {"plan_cache_mode": "force_custom_plan"}

_RETRYABLE_PG = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)
# What a database that is gone, going or not yet back raises (an InterfaceError only counts
# when its connection is closed; otherwise it is a misuse and stays a 500).
_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,  # refused, reset, no longer exists
    asyncpg.AdminShutdownError,  # stopped (fast or smart shutdown)
    asyncpg.CrashShutdownError,  # another backend crashed
    asyncpg.CannotConnectNowError,  # starting up or shutting down
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    # "another operation is in progress" (either class): asyncpg's protocol state after its
    # server went away mid-exchange, before asyncpg noticed; the connection is unusable
    asyncpg.exceptions.InternalClientError,
    OSError,
)


def connection_lost(raw: Any, exc: BaseException) -> bool:
    """Whether `exc`, raised using `raw`, means the database is out of reach; if so `raw` is
    terminated (its state is unknown), never lent again."""
    if isinstance(exc, asyncpg.ProtocolViolationError):  # a malformed message: our bug
        return False
    client_side = (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)
    if isinstance(exc, client_side) and not _server_gone(raw, exc):
        return False  # a misuse (a missing codec, bad arguments): it stays a 500
    raw.terminate()
    return True


def _server_gone(raw: Any, exc: BaseException) -> bool:
    """Whether a client-side asyncpg error comes from its server having gone: the connection is
    closed, or its protocol is stuck mid-exchange (the server died before asyncpg noticed)."""
    return raw.is_closed() or "another operation" in str(exc)


def unreachable() -> Unavailable:
    """The error for a request the database could not serve because it is out of reach."""
    return Unavailable(
        [Issue("the database cannot be reached now; try again shortly", "transient")]
    )


async def _commit(raw: Any) -> None:
    """COMMIT; if the connection breaks before the answer, nobody knows whether it held."""
    try:
        await raw.execute("COMMIT")
    except _CONNECTION_LOST as exc:
        if not connection_lost(raw, exc):
            raise
        raise OutcomeUnknown.during_commit() from exc


class PostgresDatabase:
    """PostgreSQL through a long-lived pool of asyncpg connections."""

    dialect = "postgresql"

    def __init__(self, dsn: str, min_size: int = 8, max_size: int = 16) -> None:
        self._pool = ConnectionPool(dsn, min_size, max_size, SESSION_SETTINGS)
        self._search_pool = ConnectionPool(
            dsn, min(min_size, 2), max_size, SESSION_SETTINGS | SEARCH_SETTINGS
        )

    async def open(self) -> None:
        """Open the pools; if the server is unreachable now, connect lazily later."""
        await self._pool.open()
        await self._search_pool.open()

    async def close(self) -> None:
        """Close the pools."""
        await self._pool.close()
        await self._search_pool.close()

    def pool_usage(self) -> list[PoolUsage]:
        """The pools as they are now: `main` (writes and reads) and `search`."""
        return [self._pool.usage("main"), self._search_pool.usage("search")]

    @asynccontextmanager
    async def _borrow(self, pool: ConnectionPool | None = None) -> AsyncIterator[Any]:
        """A pooled connection, given back outside any transaction (or terminated)."""
        pool = pool or self._pool
        try:
            raw = await pool.acquire()
        except _CONNECTION_LOST as exc:
            raise unreachable() from exc
        try:
            yield raw
        except asyncio.CancelledError:
            raw.terminate()  # possibly cut off mid-statement: its state is unknown
            raise
        except _CONNECTION_LOST as exc:
            if not connection_lost(raw, exc):
                raise
            pool.drop_idle()
            raise unreachable() from exc
        except OutcomeUnknown:
            pool.drop_idle()
            raise
        finally:
            await _end_transaction(raw)
            pool.release(raw)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgConnection]:
        """A connection inside one transaction, committed on success, rolled back on error."""
        async with self._borrow() as raw:
            conn = PgConnection(raw, deferred_begin=True)
            try:
                yield conn
                if conn.in_transaction:
                    await _commit(raw)
            except _RETRYABLE_PG as exc:
                raise WriteConflict(str(exc)) from exc

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[PgConnection]:
        """A connection for reads outside an explicit transaction."""
        async with self._borrow() as raw:
            yield PgConnection(raw)

    @asynccontextmanager
    async def searcher(self) -> AsyncIterator[PgConnection]:
        """A connection for searches: every statement planned for its own values."""
        async with self._borrow(self._search_pool) as raw:
            yield PgConnection(raw)


def asyncpg_dsn(url: str) -> str:
    """A libpq DSN from a SQLAlchemy-style PostgreSQL URL."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def make_database(url: str, pool_min: int = 8, pool_max: int = 16) -> Database:
    """The Database for a URL: `sqlite:///...` or `postgresql://...`."""
    if url.startswith("sqlite"):
        return SqliteDatabase(sqlite_path(url))
    if url.startswith("postgres"):
        return PostgresDatabase(asyncpg_dsn(url), pool_min, pool_max)
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")
