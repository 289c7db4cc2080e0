"""Concurrent units of work: each is all-or-nothing on its own, whoever shares its commit
(SQLite groups the units queued behind one another into one transaction)."""

import asyncio

import httpx
from fastapi import FastAPI

from tests import factories as f
from tests.conftest import database
from tests.http import create, reference


async def test_failures_among_concurrent_writes_undo_only_themselves(
    client: httpx.AsyncClient,
) -> None:
    child = reference(await create(client, f.patient()))
    bodies = [
        f.flag(subject=child if n % 3 else "Patient/absent", identifier=f"f{n}") for n in range(30)
    ]
    responses = await asyncio.gather(*(client.post("/Flag", json=b) for b in bodies))
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 20 and statuses.count(422) == 10, statuses
    found = (await client.get("/Flag", params={"_count": "100", "_total": "accurate"})).json()
    stored = sorted(e["resource"]["identifier"][0]["value"] for e in found.get("entry", []))
    assert stored == sorted(f"f{n}" for n in range(30) if n % 3)
    history = (await client.get("/Flag/_history", params={"_count": "100"})).json()
    assert len(history.get("entry", [])) == 20


async def test_a_unit_that_raises_midway_leaves_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    db = database(app)

    async def half_written(n: int) -> None:
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO conditional_key (resource_type, match_key, resource_pk) "
                "VALUES ($1, $2, NULL)",
                "Flag",
                f"key-{n}",
            )
            if n % 2:
                raise RuntimeError("the unit fails after its first statement")

    results = await asyncio.gather(*(half_written(n) for n in range(10)), return_exceptions=True)
    assert [isinstance(r, RuntimeError) for r in results] == [n % 2 == 1 for n in range(10)]
    async with db.reader() as conn:
        rows = await conn.fetch("SELECT match_key FROM conditional_key ORDER BY match_key")
    assert [row[0] for row in rows] == sorted(f"key-{n}" for n in range(0, 10, 2))
