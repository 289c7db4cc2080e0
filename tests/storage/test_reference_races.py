"""A write whose references are checked races deletes of the resources it references: on both
databases, no write that names a deleted resource lands after the delete (app.storage.writes).

Deleting a referenced resource is allowed, so a live Flag on a deleted Patient is not wrong in
itself: it is wrong when the history (its change sequence) shows the Flag written after the
Patient was deleted, which no serial order of the two writes would give. On PostgreSQL that
happens when the reference check reads the Patient as live in its snapshot while the delete
commits beside it; the check locks the Patient, so the two take turns instead.
"""

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from app.storage import person_links
from app.storage.repository import EVERYONE, Repository, delete, read_current
from tests import factories as f
from tests.conftest import database
from tests.http import FHIR_JSON, create, post_bundle, reference

PATIENTS = 50
WRITES_EACH = 4  # 200 writes in all, each naming one of the Patients being deleted

Write = Callable[[int, str], Awaitable[httpx.Response]]

# The current version of a live resource written, in change order, after a resource its index
# rows reference was deleted.
WRITTEN_AFTER_DELETE = """
SELECT w.logical_id, x.target_id FROM resource w
JOIN idx_reference x ON x.resource_pk = w.pk
JOIN resource t ON t.resource_type = x.target_type AND t.logical_id = x.target_id
JOIN resource_version wv ON wv.resource_type = w.resource_type
  AND wv.logical_id = w.logical_id AND wv.version_id = w.version_id
JOIN resource_version tv ON tv.resource_type = t.resource_type
  AND tv.logical_id = t.logical_id AND tv.version_id = t.version_id
WHERE NOT w.deleted AND t.deleted AND wv.seq > tv.seq
"""


async def _race(client: httpx.AsyncClient, write: Write) -> list[int]:
    """Delete every Patient while `write` names each of them a few times, all at once (each
    delete sent just before the writes naming its Patient); the statuses of the writes."""
    patients = [reference(await create(client, f.patient())) for _ in range(PATIENTS)]
    sent: list[Awaitable[httpx.Response]] = []
    for k, patient in enumerate(patients):
        writes = [write(k * WRITES_EACH + j, patient) for j in range(WRITES_EACH)]
        sent += [client.delete(f"/{patient}"), *writes]
    statuses = [r.status_code for r in await asyncio.gather(*sent)]
    deleted = statuses[:: WRITES_EACH + 1]
    assert all(status in (200, 204) for status in deleted), deleted
    return [s for n, s in enumerate(statuses) if n % (WRITES_EACH + 1)]


async def _written_after_delete(app: FastAPI) -> list[tuple[str, str]]:
    async with database(app).reader() as conn:
        rows = await conn.fetch(WRITTEN_AFTER_DELETE)
    return [(row[0], row[1]) for row in rows]


async def _created(client: httpx.AsyncClient, n: int, patient: str) -> httpx.Response:
    body = f.flag(subject=patient, identifier=f"f{n}")
    return await client.post("/Flag", json=body, headers={"content-type": FHIR_JSON})


async def _created_in_transaction(
    client: httpx.AsyncClient, n: int, patient: str
) -> httpx.Response:
    entry = {
        "resource": f.flag(subject=patient, identifier=f"f{n}"),
        "request": {"method": "POST", "url": "Flag"},
    }
    return await post_bundle(
        client, {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    )


@pytest.mark.parametrize("how", ["create", "transaction"])
async def test_no_flag_is_created_on_a_patient_after_its_delete(
    app: FastAPI, client: httpx.AsyncClient, how: str
) -> None:
    write = _created if how == "create" else _created_in_transaction

    async def written(n: int, patient: str) -> httpx.Response:
        return await write(client, n, patient)

    statuses = await _race(client, written)
    assert set(statuses) <= {200, 201, 422}, statuses
    assert await _written_after_delete(app) == []


async def test_no_flag_is_moved_onto_a_patient_after_its_delete(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    keeper = reference(await create(client, f.patient()))
    ids = [
        (await create(client, f.flag(subject=keeper, identifier=f"f{n}")))["id"]
        for n in range(PATIENTS * WRITES_EACH)
    ]

    async def moved(n: int, patient: str) -> httpx.Response:
        body = f.flag(subject=patient, identifier=f"f{n}") | {"id": ids[n]}
        return await client.put(f"/Flag/{ids[n]}", json=body, headers={"content-type": FHIR_JSON})

    statuses = await _race(client, moved)
    assert set(statuses) <= {200, 422}, statuses
    assert await _written_after_delete(app) == []


async def _waiting_on_a_lock(app: FastAPI) -> bool:
    async with database(app).reader() as conn:
        row = await conn.fetchrow(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
    return row is not None and row[0] > 0


async def test_a_create_waits_for_a_delete_in_flight_then_refuses(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The window held open: the Patient's delete is written but not committed while the Flag
    is created; on PostgreSQL the create waits for it, then reads the Patient again (a locking
    read tests the row's newest version) and finds it deleted. SQLite runs one unit of work at
    a time on its one writer, so there the create simply comes after the delete."""
    postgresql = database(app).dialect == "postgresql"
    patient = await create(client, f.patient())
    async with database(app).transaction() as conn:
        repo = Repository(conn, EVERYONE)
        current = await read_current(repo, "Patient", patient["id"], lock=True)
        assert current is not None
        await delete(repo, "Patient", patient["id"], current)
        created = asyncio.create_task(_created(client, 0, reference(patient)))
        while postgresql and not (created.done() or await _waiting_on_a_lock(app)):
            await asyncio.wait([created], timeout=0.01)
        assert not (postgresql and created.done()), "the create waits for the delete's commit"
    response = await created
    assert response.status_code == 422, response.text
    assert await _written_after_delete(app) == []


async def _links_to(app: FastAPI, patient_id: str) -> int:
    async with database(app).reader() as conn:
        row = await conn.fetchrow(
            "SELECT count(*) FROM idx_reference WHERE param = $1 AND target_id = $2",
            person_links.PARAM,
            patient_id,
        )
    return int(row[0]) if row is not None else -1


async def test_a_relative_is_not_linked_to_a_patient_whose_delete_is_in_flight(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A RelatedPerson naming a Patient's NHS number is created while the Patient's delete
    (claims given up, links removed) is written but not committed: on PostgreSQL the link
    waits for the delete, then finds the claim gone; on SQLite it simply comes after."""
    postgresql = database(app).dialect == "postgresql"
    child = await create(client, f.patient())
    patient = await create(client, f.patient(nhs="9449306753"))
    async with database(app).transaction() as conn:
        repo = Repository(conn, EVERYONE)
        current = await read_current(repo, "Patient", patient["id"], lock=True)
        assert current is not None
        await delete(repo, "Patient", patient["id"], current)
        await person_links.unlink_patient(repo, patient["id"])
        relative = f.related_person(patient=reference(child), nhs="9449306753")
        created = asyncio.create_task(
            client.post("/RelatedPerson", json=relative, headers={"content-type": FHIR_JSON})
        )
        while postgresql and not (created.done() or await _waiting_on_a_lock(app)):
            await asyncio.wait([created], timeout=0.01)
        assert not (postgresql and created.done()), "the link waits for the delete's commit"
    assert (await created).status_code == 201
    assert await _links_to(app, patient["id"]) == 0
