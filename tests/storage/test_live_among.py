"""`live_among`: which of many (type, id) pairs are live, found by index on both databases."""

import sqlite3
from pathlib import Path

import httpx
from fastapi import FastAPI

from app.access import ANONYMOUS
from app.storage import repository
from app.storage.migrate import upgrade
from app.storage.repository import Repository
from app.storage.sqlite import _sqlite_sql
from tests import factories as f
from tests.conftest import database
from tests.http import create


async def test_live_among_many_pairs_finds_exactly_the_live_ones(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    kept = [await create(client, f.patient()) for _ in range(3)]
    gone = await create(client, f.patient())
    assert (await client.delete(f"/Patient/{gone['id']}")).status_code == 200
    asked = [("Patient", p["id"]) for p in kept] + [("Patient", gone["id"]), ("Flag", "none")]
    async with database(app).transaction() as conn:
        live = await repository.live_among(Repository(conn, ANONYMOUS), asked, lock=True)
    assert live == {("Patient", p["id"]) for p in kept}


def test_sqlite_probes_the_index_for_each_pair(tmp_path: Path) -> None:
    """A row-value IN list of several pairs made SQLite scan every resource."""
    upgrade(f"sqlite:///{tmp_path / 'plan.db'}")
    with sqlite3.connect(tmp_path / "plan.db") as conn:
        sql = _sqlite_sql(repository.live_sql(3, False, "sqlite"))
        plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", ["Patient", "x"] * 3).fetchall()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "SEARCH r USING INDEX" in details and "SCAN r" not in details, details
