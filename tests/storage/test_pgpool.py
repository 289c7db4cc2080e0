"""The PostgreSQL connection pool: bounded, lends each connection to one borrower at a time,
and never lends a connection left in a transaction or cut off mid-statement."""

import asyncio

import asyncpg
import pytest

from app.errors import Unavailable
from app.storage.db import PostgresDatabase, asyncpg_dsn
from tests.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.skipif(PG_ADMIN_URL is None, reason="needs SAFEGUARD_TEST_DATABASE_URL")


async def _database(min_size: int, max_size: int) -> PostgresDatabase:
    assert PG_ADMIN_URL is not None
    db = PostgresDatabase(asyncpg_dsn(PG_ADMIN_URL), min_size, max_size)
    await db.open()
    return db


async def _backend_pid(db: PostgresDatabase, hold: float = 0.0) -> int:
    async with db.reader() as conn:
        row = await conn.fetchrow("SELECT pg_backend_pid(), pg_sleep($1)", hold)
        assert row is not None
        return int(row[0])


async def test_no_more_connections_than_max_size_and_waiters_are_served() -> None:
    db = await _database(0, 2)
    try:
        pids = await asyncio.gather(*(_backend_pid(db, 0.05) for _ in range(7)))
    finally:
        await db.close()
    assert len(pids) == 7
    assert len(set(pids)) <= 2


async def test_a_connection_comes_back_outside_any_transaction() -> None:
    db = await _database(1, 1)
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await conn.execute("SET LOCAL application_name = 'abandoned'")  # after BEGIN
                raise RuntimeError("the unit of work failed")
        async with db.reader() as conn:
            row = await conn.fetchrow("SELECT current_setting('application_name')")
    finally:
        await db.close()
    assert row is not None and row[0] != "abandoned"  # the transaction was rolled back


async def test_a_borrower_cancelled_mid_statement_does_not_poison_the_pool() -> None:
    db = await _database(1, 1)
    try:
        first = await _backend_pid(db)
        slow = asyncio.create_task(_backend_pid(db, 5.0))
        await asyncio.sleep(0.2)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        second = await asyncio.wait_for(_backend_pid(db), 5.0)
    finally:
        await db.close()
    assert second != first  # the interrupted connection was dropped and replaced


async def test_a_connection_killed_by_the_server_is_replaced() -> None:
    db = await _database(1, 1)
    try:
        first = await _backend_pid(db)
        admin = await asyncpg.connect(asyncpg_dsn(PG_ADMIN_URL or ""))
        await admin.execute("SELECT pg_terminate_backend($1)", first)
        await admin.close()
        await asyncio.sleep(0.2)  # the idle connection sees the server hang up
        second = await _backend_pid(db)
    finally:
        await db.close()
    assert second != first


async def test_unreachable_server_fails_each_borrow_and_recovers_nothing_leaked() -> None:
    db = PostgresDatabase("postgresql://root@127.0.0.1:1/none", 2, 2)
    await db.open()  # lazily: the server may come up later
    for _ in range(3):  # more attempts than max_size: failed connects give their slot back
        with pytest.raises(Unavailable):
            await _backend_pid(db)
    await db.close()
