"""The feed's watermark (`app.storage.feed`): a change stored by a transaction still running
when a poll is answered lies at or after that answer's Bundle.meta.lastUpdated, so the next
poll from there receives it."""

from typing import Any

import httpx
from fastapi import FastAPI

from app.access import ANONYMOUS
from app.clock import now_micros
from app.records import reads
from app.storage import feed
from app.storage.db import Database
from app.storage.repository import Repository
from tests import factories as f
from tests.conftest import database
from tests.http import create, post_bundle

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


async def test_a_resource_row_and_its_newest_version_share_one_changed_at(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """So an export reading resource rows as of a watermark agrees with the feed's versions."""
    made = await create(client, f.organization())
    url = f"/Organization/{made['id']}"
    assert (await client.put(url, json=made | {"name": "renamed"})).status_code == 200
    other = await create(client, f.organization(name="gone"))
    assert (await client.delete(f"/Organization/{other['id']}")).status_code in (200, 204)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [_created()] * 3}
    assert (await post_bundle(client, bundle)).status_code == 200
    async with database(app).reader() as conn:
        rows = await conn.fetch(
            "SELECT r.changed_at, v.changed_at FROM resource r JOIN resource_version v ON "
            "v.resource_type = r.resource_type AND v.logical_id = r.logical_id AND "
            "v.version_id = r.version_id"
        )
    assert len(rows) == 5
    assert all(row[0] == row[1] for row in rows)


def _created() -> dict[str, Any]:
    return {
        "resource": f.organization(name="many"),
        "request": {"method": "POST", "url": "Organization"},
    }
