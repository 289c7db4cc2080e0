"""SQLite, the embedded default: stdlib sqlite3 behind the Connection protocol of `db`.

One writer connection (its units of work grouped into shared commits) and one reader; commits
and WAL checkpoints run off the event loop. Spec of the settings: https://sqlite.org/wal.html
"""

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from app.clock import now_micros
from app.errors import WriteConflict
from app.metrics import PoolUsage

Row = Sequence[Any]
_PLACEHOLDER = re.compile(r"\$(\d+)")
MAX_GROUP = 64  # SQLite units of work committed together at most
CHECKPOINT_COMMITS = 32  # group commits between WAL checkpoints (a few MB of WAL)
WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes of WAL file kept after a checkpoint resets it
log = logging.getLogger("safeguard.storage")


class SqliteConnection:
    """A stdlib sqlite3 connection seen through the Connection protocol.

    Calls run inline on the event loop: a primary-key read costs tens of microseconds, far
    less than a hop to a thread would.
    """

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, database: "SqliteDatabase") -> None:
        self._conn = conn
        self._database = database

    def local_watermark(self) -> int:
        """The start of the open group's transaction, or now (`app.storage.feed`)."""
        began = self._database.group_began
        return now_micros() if began is None else began

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        try:
            row: Row | None = self._conn.execute(_sqlite_sql(sql), args).fetchone()
        except sqlite3.IntegrityError as exc:
            raise _integrity(exc) from exc
        return row

    def expect_more(self) -> None:
        """Several writes follow: nothing to do, every statement is in the unit's savepoint."""

    async def fetchrow_final(self, sql: str, *args: Any) -> Row | None:
        """The unit of work's last statement (no difference on SQLite)."""
        return await self.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return self._conn.execute(_sqlite_sql(sql), args).fetchall()

    async def execute(self, sql: str, *args: Any) -> None:
        try:
            self._conn.execute(_sqlite_sql(sql), args)
        except sqlite3.IntegrityError as exc:
            raise _integrity(exc) from exc

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self._conn.executemany(_sqlite_sql(sql), rows)
        except sqlite3.IntegrityError as exc:
            raise _integrity(exc) from exc


def _integrity(exc: sqlite3.IntegrityError) -> Exception:
    if "UNIQUE" in str(exc):
        return WriteConflict(str(exc))
    return exc


_SQL_CACHE: dict[str, str] = {}


def _sqlite_sql(sql: str) -> str:
    cached = _SQL_CACHE.get(sql)
    if cached is None:
        cached = _PLACEHOLDER.sub(r"?\1", sql)
        _SQL_CACHE[sql] = cached
    return cached


def connect_sqlite(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode with WAL, foreign keys and a busy timeout."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA temp_store=MEMORY")  # savepoint journals of grouped commits
    return conn


class SqliteDatabase:
    """SQLite through one writer connection (serialised by a lock) and one reader.

    Units of work that arrive while a transaction is open share it (group commit): each runs
    in a savepoint, so a failure undoes only its own changes; the commit waits until the
    requests ready to run have had their turn, and each unit waits for it before returning.
    A commit writes every page its units touched to the WAL, so the busiest pages are
    written once per group instead of once per request. COMMIT runs in a worker thread
    while the writer stays held; every CHECKPOINT_COMMITS commits that thread also copies
    the WAL back into the database file before letting go, so the next transaction starts
    the WAL afresh. (A checkpoint racing the writers never catches up under steady load:
    the WAL then grows without bound, and every page lookup in it slows down.)
    """

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self._path = path
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._queued = 0  # units waiting for the lock
        self._commit_scheduled = False
        self._group_size = 0
        self._group: asyncio.Future[None] | None = None
        self._committer: asyncio.Task[None] | None = None
        self._commits = 0  # since the last checkpoint
        # When the open group's transaction began (None while none is open): every version it
        # holds is stamped later, and none is visible before its commit (`app.storage.feed`).
        self.group_began: int | None = None

    async def open(self) -> None:
        """Open the writer (which alone checkpoints) and the reader."""
        self._writer = connect_sqlite(self._path)
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._writer.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        self._reader = connect_sqlite(self._path)

    async def close(self) -> None:
        """Let a running commit finish, commit what is left, write the WAL back, close."""
        if self._committer is not None:
            await self._committer
        if self._writer is not None:
            self._commit()
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteConnection]:
        """A unit of work in a savepoint of the group's transaction, committed with the group."""
        assert self._writer is not None, "database not open"
        writer, group = self._writer, await self._join_group()
        try:
            writer.execute("SAVEPOINT unit")
            try:
                yield SqliteConnection(writer, self)
                writer.execute("RELEASE unit")
            except BaseException:
                writer.execute("ROLLBACK TO unit")
                writer.execute("RELEASE unit")
                raise
        finally:
            self._leave_group()
        # Shielded: a unit cancelled while it waits must not cancel the group's shared
        # future, which every other unit of the group waits on and the commit settles.
        await asyncio.shield(group)

    async def _join_group(self) -> "asyncio.Future[None]":
        """Take the writer; open the group's transaction if there is none."""
        assert self._writer is not None
        self._queued += 1
        try:
            await self._lock.acquire()
        except BaseException:
            asyncio.get_running_loop().call_soon(self._commit_if_idle)
            raise
        finally:
            self._queued -= 1
        if self._group is None or not self._writer.in_transaction:
            self.group_began = now_micros()
            try:
                self._writer.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # another process holds the write lock
                self.group_began = None
                self._lock.release()
                raise WriteConflict(str(exc)) from exc
            self._group = asyncio.get_running_loop().create_future()
        return self._group

    def _leave_group(self) -> None:
        """Give the writer back; commit once the requests ready to run have had their turn."""
        self._group_size += 1
        if self._group_size >= MAX_GROUP:  # bound the wait, and overlap it with later requests
            self._committer = asyncio.create_task(self._commit_and_release(self._start_commit()))
            return  # the writer passes to the commit still held
        self._lock.release()
        if not self._commit_scheduled:
            self._commit_scheduled = True
            asyncio.get_running_loop().call_soon(self._commit_if_idle)

    def _commit_if_idle(self) -> None:
        """Commit the group unless a unit holds or awaits the writer (its exit comes back)."""
        self._commit_scheduled = False
        if self._queued == 0 and not self._lock.locked() and self._group is not None:
            self._committer = asyncio.create_task(self._commit_off_loop())

    async def _commit_off_loop(self) -> None:
        await self._lock.acquire()
        await self._commit_and_release(self._start_commit())

    def _start_commit(self) -> "tuple[asyncio.Future[None] | None, asyncio.Future[Any]]":
        """Hand the group's COMMIT to a worker thread now; the group and its pending result.

        COMMIT writes the group's pages to the WAL in system calls that need neither the
        loop nor the GIL, so the loop meanwhile serves the requests that are not in it.
        """
        group, self._group, self._group_size = self._group, None, 0
        loop = asyncio.get_running_loop()
        return group, loop.run_in_executor(None, self._end_transaction)

    async def _commit_and_release(
        self, started: "tuple[asyncio.Future[None] | None, asyncio.Future[Any]]"
    ) -> None:
        """Tell the group how its commit ended, checkpoint if due, then give the writer back.

        The checkpoint comes after the units are told, so they answer while it runs.
        """
        group, committed = started
        try:
            error = await committed
            self.group_began = None  # committed or rolled back: nothing of it is pending
            if group is not None:
                _settle(group, error)
            if self._commits >= CHECKPOINT_COMMITS:
                self._commits = 0
                await asyncio.to_thread(self._checkpoint)
        finally:
            self._lock.release()

    def _commit(self) -> None:
        """Commit the group on the loop's thread (when closing)."""
        group, self._group, self._group_size = self._group, None, 0
        if group is not None:
            error = self._end_transaction()
            self.group_began = None
            _settle(group, error)

    def _end_transaction(self) -> sqlite3.Error | None:
        """COMMIT the writer's transaction (ROLLBACK if that fails); the error, if any."""
        assert self._writer is not None
        try:
            if self._writer.in_transaction:
                self._writer.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._writer.in_transaction:
                self._writer.execute("ROLLBACK")
            return exc
        self._commits += 1
        return None

    def _checkpoint(self) -> None:
        """Copy the whole WAL back (no write can start meanwhile), so the next one restarts it."""
        assert self._writer is not None
        try:
            self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # the next one retries; the data is safe in the WAL
            log.warning("WAL checkpoint failed: %s", type(exc).__name__)

    def pool_usage(self) -> list[PoolUsage]:
        """The writer as a pool of one: held (by a unit of work or a commit), and the units
        waiting for it. Reads never wait: they run inline on the reader connection."""
        held = 1 if self._lock.locked() else 0
        return [PoolUsage("writer", held, self._queued, int(self._writer is not None))]

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[SqliteConnection]:
        """The reader connection (sees committed data only)."""
        assert self._reader is not None, "database not open"
        yield SqliteConnection(self._reader, self)

    def searcher(self) -> Any:
        """Searches read through the reader connection."""
        return self.reader()


def _settle(group: "asyncio.Future[None]", error: sqlite3.Error | None) -> None:
    """Tell the group's units how their shared commit ended."""
    if error is None:
        group.set_result(None)
    else:
        group.set_exception(error)
        group.exception()  # units that failed on their own do not wait; mark it seen


def sqlite_path(url: str) -> str:
    """The file path in a `sqlite:///path` URL."""
    return url.split(":///", 1)[1] if ":///" in url else ":memory:"
