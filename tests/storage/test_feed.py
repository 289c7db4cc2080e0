"""The feed's watermark (`app.storage.feed`): a change stored by a transaction still running
when a poll is answered lies at or after that answer's Bundle.meta.lastUpdated, so the next
poll from there receives it."""

import httpx
from fastapi import FastAPI

from app.access import ANONYMOUS
from app.clock import now_micros
from app.records import reads
from app.storage import feed
from app.storage.db import Database
from app.storage.repository import Repository
from tests.conftest import database

INSERT_VERSION = (
    "INSERT INTO resource_version (resource_type, logical_id, version_id, last_updated, method, "
    "body, patient_id, author_org, restricted, client_id, client_org) VALUES ('Organization', $1, "
    "1, $2, 'POST', $3, NULL, NULL, $4, 'a writer', NULL)"
)


async def _changes(db: Database, since: int | None) -> tuple[list[str], int]:
    """One poll of system history from `since`: the ids it holds, and its lastUpdated."""
    async with db.reader() as conn:
        found, mark = await reads.history(
            Repository(conn, ANONYMOUS), since=since, count=100, max_bytes=1 << 20
        )
    return [version.logical_id for version in found.rows], mark.watermark


async def test_a_change_committing_after_a_poll_comes_in_the_next_one(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    db = database(app)
    async with db.transaction() as conn:
        await conn.execute(INSERT_VERSION, "pending", now_micros(), b"{}", False)
        seen, since = await _changes(db, None)
        assert seen == []
    seen, _ = await _changes(db, since)
    assert seen == ["pending"]


async def test_the_watermark_is_no_later_than_a_running_transactions_changes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    db = database(app)
    async with db.transaction() as conn:
        await conn.execute(INSERT_VERSION, "held", now_micros(), b"{}", False)
        row = await conn.fetchrow("SELECT changed_at FROM resource_version")
        assert row is not None
        async with db.reader() as reader:
            mark = await feed.watermark(reader)
        assert mark <= int(row[0])
    async with db.reader() as reader:
        assert await feed.watermark(reader) > int(row[0])  # committed: nothing holds it back
