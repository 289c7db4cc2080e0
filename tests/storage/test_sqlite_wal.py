"""The SQLite WAL stays bounded under steady writes: commits restart it after a checkpoint."""

import asyncio
import os
from pathlib import Path

from app.storage.migrate import upgrade
from app.storage.sqlite import CHECKPOINT_COMMITS, MAX_GROUP, SqliteDatabase

PAGE = 4096
FRAME = PAGE + 24  # a WAL frame: header and page


def _size(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


async def _write_version(db: SqliteDatabase, n: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO resource_version "
            "(resource_type, logical_id, version_id, last_updated, method, body) "
            "VALUES ($1, $2, 1, $3, 'POST', $4)",
            "Flag",
            f"wal-{n}",
            n,
            b"x" * PAGE,
        )


async def test_the_wal_file_stops_growing_however_many_commits(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    upgrade(f"sqlite:///{path}")
    db = SqliteDatabase(str(path))
    await db.open()
    try:
        for n in range(20 * CHECKPOINT_COMMITS):  # one commit each: every unit waits for it
            await _write_version(db, n)
        wal_frames = _size(f"{path}-wal") // FRAME
    finally:
        await db.close()
    # A commit here writes about 6 pages (the row's 2, its 3 indexes', the table's root), so
    # a WAL restarted every CHECKPOINT_COMMITS stays near 6 x that; one never restarted
    # would hold 20 times as much.
    assert wal_frames < 10 * CHECKPOINT_COMMITS, wal_frames
    assert _size(f"{path}-wal") == 0  # closing truncates it


async def test_more_concurrent_units_than_a_group_holds_all_commit(tmp_path: Path) -> None:
    path = tmp_path / "groups.db"
    upgrade(f"sqlite:///{path}")
    db = SqliteDatabase(str(path))
    await db.open()
    try:
        units = 3 * MAX_GROUP + 5  # full groups commit while the rest queue behind them
        await asyncio.gather(*(_write_version(db, n) for n in range(units)))
        async with db.reader() as conn:
            rows = await conn.fetch("SELECT logical_id FROM resource_version")
    finally:
        await db.close()
    assert sorted(row[0] for row in rows) == sorted(f"wal-{n}" for n in range(units))
