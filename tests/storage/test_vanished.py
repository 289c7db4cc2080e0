"""`storage.changes.vanished`: what writes in a window hid from a caller,
for a Bulk Data export's `deleted` list; only to those who lost sight, and only while the
resource stays hidden."""

import sqlite3
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from app.access import Caller
from app.clock import now_micros
from app.flags.codes import vocabulary
from app.storage import changes, feed, vanishing
from app.storage.migrate import upgrade
from app.storage.repository import Repository
from tests import factories as f
from tests.conftest import BASE, database
from tests.http import FHIR_JSON, create, reference
from tests.tokens import bearer

RESTRICTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
JSON = {"content-type": FHIR_JSON}
AUTHOR = Caller("vanished-h1", "vd-h1", "health")


async def _vanished(app: FastAPI, caller: Caller, since: int, **options: Any) -> list[str]:
    async with database(app).reader() as conn:
        until = await feed.watermark(conn)
        found = await changes.vanished(
            Repository(conn, caller), since=since, until=until, **options
        )
    return [f"{v.method} {v.resource_type}/{v.logical_id}" for v in found]


async def _restricted_condition(client: httpx.AsyncClient) -> dict[str, Any]:
    """A Condition authored by vd-h1, then labelled restricted."""
    child = await create(client, f.patient(nhs=f.nhs_number(901)))
    made = await create(client, f.condition(subject=reference(child)) | _recorder("vd-h1"))
    labelled = made | {"meta": {"security": [RESTRICTED]}}
    response = await client.put(
        f"/Condition/{made['id']}", json=labelled, headers={"content-type": FHIR_JSON}
    )
    assert response.status_code == 200, response.text
    return made


def _recorder(org: str) -> dict[str, Any]:
    url = vocabulary(BASE).recording_organization_extension
    return {"extension": [{"url": url, "valueReference": {"reference": f"Organization/{org}"}}]}


async def test_vanished_lists_what_a_write_hid_from_the_caller_in_the_window(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for org in ("vd-h1", "vd-h2", "vd-la"):
        response = await client.put(
            f"/Organization/{org}",
            json=f.organization(name=org) | {"id": org},
            headers={"content-type": FHIR_JSON},
        )
        assert response.status_code in (200, 201), response.text
    before = now_micros()
    made = await _restricted_condition(client)
    other = Caller("vanished-h2", "vd-h2", "health")
    assert await _vanished(app, other, before) == [f"DELETE Condition/{made['id']}"]
    assert await _vanished(app, other, now_micros()) == []  # the window is after it
    assert await _vanished(app, other, before, resource_types=["Patient"]) == []
    blind = Caller("vanished-h3", "vd-h2", "health", readable_types=frozenset({"Patient"}))
    assert await _vanished(app, blind, before) == []
    for unaffected in (
        AUTHOR,
        Caller("vanished-la", "vd-la", "local-authority"),
        Caller("vanished-system"),
        Caller("vanished-auditor", "vd-h2", "auditor"),
    ):
        assert await _vanished(app, unaffected, before) == [], unaffected


async def test_an_organisation_with_no_authority_client_ending_its_flag_writes_no_tombstone(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A GP practice's active Flag makes it "responsible" for the child too, but none of its
    clients reads as a local authority: ending the Flag hides nothing from anyone."""
    gp = f.organization(name="vd-gp") | {"id": "vd-gp"}
    assert (await client.put("/Organization/vd-gp", json=gp, headers=JSON)).status_code == 201
    headers = await bearer(app, "vanished-gp", role="health", organisation="Organization/vd-gp")
    child = reference(await create(client, f.patient(nhs=f.nhs_number(951))))
    for _ in range(3):
        await create(client, f.condition(subject=child))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as practice:
        flag = await create(practice, f.flag(subject=child, author="Organization/vd-gp"))
        ended = await practice.put(
            f"/Flag/{flag['id']}", json=flag | {"status": "inactive"}, headers=JSON
        )
    assert ended.status_code == 200, ended.text
    async with database(app).reader() as conn:
        row = await conn.fetchrow("SELECT count(*) FROM tombstone")
    assert row is not None and row[0] == 0


def test_an_updates_check_of_who_loses_sight_reads_its_own_rows_by_their_index(
    tmp_path: Path,
) -> None:
    """Not the parameter's index, which holds every responsible-Organization row there is: so
    read, every update of a Flag got slower as Flags were added (`bench.write_cost`). SQLite
    plans by the statement's shape; PostgreSQL by its statistics."""
    path = tmp_path / "plan.db"
    upgrade(f"sqlite:///{path}")
    conn = sqlite3.connect(path)
    try:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {vanishing.OWN_REFERENCES}", (1,)).fetchall()
    finally:
        conn.close()
    assert ["ix_idx_reference_resource_pk" in str(row[-1]) for row in plan] == [True]
