"""Pages read within a byte budget: past it, rows come back without their bodies (the
database never sends them), on both databases, for searches and for history."""

import httpx
from fastapi import FastAPI

from app.access import ANONYMOUS
from app.criteria import Query
from app.storage import changes, feed, query
from app.storage.repository import Repository
from tests import factories as f
from tests.conftest import database
from tests.http import create

SIZE = 6000  # characters of padding: each Patient's body is a little over this


async def _patients(client: httpx.AsyncClient, count: int) -> list[str]:
    created = [await create(client, f.patient(given="x" * SIZE)) for _ in range(count)]
    return [patient["id"] for patient in created]


async def test_bodies_past_the_budget_are_not_read(app: FastAPI, client: httpx.AsyncClient) -> None:
    ids = await _patients(client, 5)
    text, args = query.search_sql(Query("Patient", (), 5), ANONYMOUS, max_bytes=3 * SIZE)
    async with database(app).reader() as conn:
        rows = await conn.fetch(text, *args)
    assert [row[1] for row in rows] == ids  # every row read, keys and all
    assert [row[2] is not None for row in rows] == [True, True, False, False, False]
    assert [row[-1] for row in rows] == [1, 1, 0, 0, 0]


async def test_the_first_body_is_read_whatever_its_size(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ids = await _patients(client, 2)
    async with database(app).reader() as conn:
        found = await query.search_within(
            Repository(conn, ANONYMOUS), Query("Patient", (), 3), max_bytes=100
        )
    assert [match.logical_id for match in found.rows] == ids[:1] and found.read == 2


async def test_history_reads_bodies_within_the_budget(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ids = await _patients(client, 4)
    async with database(app).reader() as conn:
        found = await changes.history(
            Repository(conn, ANONYMOUS),
            resource_types=("Patient",),
            logical_id=None,
            since=None,
            mark=changes.Mark(await feed.watermark(conn)),
            count=10,
            max_bytes=3 * SIZE,
        )
    assert [version.logical_id for version in found.rows] == ids[::-1][:2] and found.read == 4
    assert all(version.body is not None for version in found.rows)
