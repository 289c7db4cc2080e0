"""What /metrics shows of the database pools: connections lent and units of work waiting
(PostgreSQL's pools; SQLite's one writer, as a pool of one)."""

import asyncio
from collections.abc import Callable

from app.metrics import PoolUsage
from app.storage.db import Database, make_database


async def _one_unit(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.fetchrow("SELECT 1")


async def _until(check: Callable[[], bool]) -> bool:
    """Whether `check` holds within 5 s (asked every 10 ms)."""
    for _ in range(500):
        if check():
            return True
        await asyncio.sleep(0.01)
    return check()


def _first(db: Database) -> PoolUsage:
    return db.pool_usage()[0]


async def test_a_unit_holding_the_only_connection_and_one_waiting_are_shown(
    database_url: str,
) -> None:
    db = make_database(database_url, 1, 1)
    await db.open()
    try:
        assert _first(db).in_use == 0 and _first(db).waiting == 0
        async with db.transaction() as conn:
            await conn.fetchrow("SELECT 1")
            waiting = asyncio.create_task(_one_unit(db))
            assert await _until(lambda: _first(db).waiting == 1)
            assert _first(db).in_use == 1 and _first(db).open == 1
        await waiting
        assert await _until(lambda: _first(db) == PoolUsage(_first(db).pool, 0, 0, 1))
    finally:
        await db.close()
    names = [usage.pool for usage in db.pool_usage()]
    assert names == (["writer"] if database_url.startswith("sqlite") else ["main", "search"])
