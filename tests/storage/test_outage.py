"""A PostgreSQL that is out of reach or goes away mid-work: 503 (Unavailable) rather than a
crash, "outcome unknown" when a COMMIT got no answer, and a pool that recovers on its own.
Faults are real: a port nobody listens on, backends terminated by pg_terminate_backend."""

import asyncio
import socket
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.errors import OutcomeUnknown, Unavailable
from app.storage.db import PgConnection, PostgresDatabase, asyncpg_dsn
from tests.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.skipif(PG_ADMIN_URL is None, reason="needs SAFEGUARD_TEST_DATABASE_URL")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _database(min_size: int = 2, max_size: int = 2) -> PostgresDatabase:
    assert PG_ADMIN_URL is not None
    db = PostgresDatabase(asyncpg_dsn(PG_ADMIN_URL), min_size, max_size)
    await db.open()
    return db


async def _terminate(*pids: int) -> None:
    assert PG_ADMIN_URL is not None
    admin = await asyncpg.connect(asyncpg_dsn(PG_ADMIN_URL))
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
    finally:
        await admin.close()


async def _terminate_when_asleep(pid: int) -> None:
    """Terminate backend `pid` once it sleeps in pg_sleep (inside its COMMIT, here)."""
    assert PG_ADMIN_URL is not None
    admin = await asyncpg.connect(asyncpg_dsn(PG_ADMIN_URL))
    try:
        for _ in range(500):
            row = await admin.fetchrow(
                "SELECT wait_event FROM pg_stat_activity WHERE pid = $1", pid
            )
            if row is not None and row[0] == "PgSleep":
                await admin.execute("SELECT pg_terminate_backend($1)", pid)
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the backend never reached its sleep")
    finally:
        await admin.close()


async def _pid(conn: PgConnection) -> int:
    row = await conn.fetchrow("SELECT pg_backend_pid()")
    assert row is not None
    return int(row[0])


@pytest.fixture
async def db() -> AsyncIterator[PostgresDatabase]:
    database = await _database()
    try:
        yield database
    finally:
        await database.close()


async def test_an_unreachable_database_is_unavailable_for_reads_and_writes() -> None:
    db = PostgresDatabase(f"postgresql://root@127.0.0.1:{_closed_port()}/nowhere", 1, 2)
    await db.open()  # connects lazily later: opening does not fail
    try:
        with pytest.raises(Unavailable) as read:
            async with db.reader() as conn:
                await conn.fetchrow("SELECT 1")
        with pytest.raises(Unavailable) as write:
            async with db.transaction() as conn:
                await conn.execute("SELECT 1")
    finally:
        await db.close()
    for refused in (read.value, write.value):
        assert not isinstance(refused, OutcomeUnknown)
        assert refused.issues[0].code == "transient"
        assert "cannot be reached" in refused.issues[0].diagnostics


async def test_a_connection_lost_mid_work_is_unavailable_and_the_pool_recovers(
    db: PostgresDatabase,
) -> None:
    async with db.reader() as idle:
        idle_pid = await _pid(idle)
    with pytest.raises(Unavailable) as lost:
        async with db.reader() as conn:
            await _terminate(await _pid(conn))
            await conn.fetchrow("SELECT 1")
    assert not isinstance(lost.value, OutcomeUnknown)
    async with db.reader() as conn:  # idle connections were dropped too: likely as dead
        assert await _pid(conn) != idle_pid


async def test_work_lost_before_its_commit_is_unavailable_not_unknown(
    db: PostgresDatabase,
) -> None:
    with pytest.raises(Unavailable) as lost:
        async with db.transaction() as conn:
            await conn.execute("CREATE TEMP TABLE lost (x int)")  # BEGIN was sent before it
            await _terminate(await _pid(conn))
            await conn.execute("INSERT INTO lost VALUES (1)")
    assert not isinstance(lost.value, OutcomeUnknown)  # never committed: surely not applied


async def test_a_commit_cut_off_is_outcome_unknown(db: PostgresDatabase) -> None:
    with pytest.raises(OutcomeUnknown) as unknown:
        async with db.transaction() as conn:
            await _slow_commit(conn)
            killer = asyncio.create_task(_terminate_when_asleep(await _pid(conn)))
    await killer
    assert unknown.value.status == 503
    assert "X-Request-ID" in unknown.value.issues[0].diagnostics


async def test_a_statement_committing_alone_cut_off_is_outcome_unknown(
    db: PostgresDatabase,
) -> None:
    killer = asyncio.create_task(_kill_first_sleeper())
    with pytest.raises(OutcomeUnknown):
        async with db.transaction() as conn:  # one statement, sent without BEGIN
            await conn.fetchrow_final("SELECT pg_sleep(30)")
    assert await killer > 0


async def _kill_first_sleeper() -> int:
    """Terminate the first backend found sleeping in this test's statement; its pid."""
    assert PG_ADMIN_URL is not None
    admin = await asyncpg.connect(asyncpg_dsn(PG_ADMIN_URL))
    try:
        for _ in range(500):
            rows = await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
                "AND query = 'SELECT pg_sleep(30)'"
            )
            if rows:
                await admin.execute("SELECT pg_terminate_backend($1)", rows[0][0])
                return int(rows[0][0])
            await asyncio.sleep(0.01)
        raise AssertionError("no backend reached its sleep")
    finally:
        await admin.close()


async def _slow_commit(conn: PgConnection) -> None:
    """Make this transaction's COMMIT sleep: a deferred constraint trigger on a temp table."""
    await conn.execute("CREATE TEMP TABLE slow (x int)")
    await conn.execute(
        "CREATE FUNCTION pg_temp.nap() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$"
    )
    await conn.execute(
        "CREATE CONSTRAINT TRIGGER nap AFTER INSERT ON slow DEFERRABLE INITIALLY DEFERRED "
        "FOR EACH ROW EXECUTE FUNCTION pg_temp.nap()"
    )
    await conn.execute("INSERT INTO slow VALUES (1)")


async def test_a_misuse_on_a_live_connection_is_not_taken_for_an_outage(
    db: PostgresDatabase,
) -> None:
    async with db.reader() as conn:
        pid = await _pid(conn)
    with pytest.raises(asyncpg.DataError):  # raised by asyncpg before sending: a bug, a 500
        async with db.transaction() as conn:
            await conn.fetchrow_final("SELECT $1::int", "not a number")
    async with db.reader() as conn:  # and the connection was not thrown away
        assert await _pid(conn) == pid
