"""Resources a transaction writes together (one statement a table) are stored byte for byte,
versioned and indexed row for row as single creates store them, on both databases."""

from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from app.storage.writes import INDEX_KINDS
from tests import factories as f
from tests.conftest import database
from tests.http import create

BASE = "http://test/fhir"
AWKWARD = 'St "Mary\'s" \\ Ünïcödé 🧒 病院 \n'  # quotes, backslash, non-ASCII, a newline


def _awkward_resources() -> list[dict[str, Any]]:
    organization = f.organization(ods="0123", name=AWKWARD)  # an identifier that looks numeric
    condition = f.condition(subject="Patient/p1", display=AWKWARD)
    condition["onsetAge"] = {
        "value": 3.141592653589793,
        "unit": "a",
        "system": "http://unitsofmeasure.org",
        "code": "a",
    }
    condition["recordedDate"] = "2024-02-29T23:59:59.999+14:00"
    return [organization, condition, f.related_person(patient="Patient/p1", relationship="HSIB")]


async def _stored(app: FastAPI, logical_id: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """A resource's stored body (without id and meta) and its index rows, by table."""
    async with database(app).reader() as conn:
        pk, body = await conn.fetchrow(
            "SELECT pk, body FROM resource WHERE logical_id = $1", logical_id
        )
        version = await conn.fetchrow(
            "SELECT body FROM resource_version WHERE logical_id = $1", logical_id
        )
        rows = {}
        for table, columns, _ in INDEX_KINDS.values():
            found = await conn.fetch(
                f"SELECT param, {', '.join(columns)} FROM {table} WHERE resource_pk = $1", pk
            )
            rows[table] = sorted(tuple(row) for row in found)
    assert bytes(version[0]) == bytes(body)
    resource = orjson.loads(body)
    assert resource["id"] == logical_id
    return {k: v for k, v in resource.items() if k not in ("id", "meta")}, rows


async def test_written_together_is_stored_and_indexed_as_written_alone(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.put("/Patient/p1", json=f.patient() | {"id": "p1"})
    resources = _awkward_resources()
    alone = [(await create(client, resource))["id"] for resource in resources]
    entries = [f.entry(method="POST", url=r["resourceType"], resource=r) for r in resources]
    response = await client.post(
        BASE,
        content=orjson.dumps(f.bundle(entries=entries)),
        headers={"content-type": "application/fhir+json"},
    )
    assert response.status_code == 200, response.text
    together = [e["response"]["location"].split("/")[1] for e in response.json().get("entry", [])]
    for single_id, together_id in zip(alone, together, strict=True):
        single_body, single_rows = await _stored(app, single_id)
        together_body, together_rows = await _stored(app, together_id)
        assert together_body == single_body
        assert together_rows == single_rows
    kinds = {table for r in together for table, rows in (await _stored(app, r))[1].items() if rows}
    assert kinds == {table for table, _, _ in INDEX_KINDS.values()}, "every kind is compared"
