"""Bulk load writes what a create writes, and the app serves and finds what it loaded."""

from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.access import ANONYMOUS
from app.fhir.resources import validate_structure
from app.flags.codes import vocabulary
from app.flags.follow_ups import claimed_numbers
from app.records import rules, writing
from app.storage.bulk import bulk_load
from bench import population
from tests import factories as f
from tests.conftest import BASE, database, empty_database
from tests.http import FHIR_JSON, create, reference
from tests.tokens import authority, token_for

TABLES = {
    "resource": "t.resource_type, t.logical_id, t.version_id, t.deleted, t.patient_id, "
    "t.owner_org, t.author_org, t.restricted, t.body",
    "resource_version": "t.resource_type, t.logical_id, t.version_id, t.method, t.patient_id, "
    "t.author_org, t.restricted, t.client_id, t.client_org, t.body",
    "idx_token": "r.logical_id, t.param, t.system, t.code",
    "idx_reference": "r.logical_id, t.param, t.target_type, t.target_id",
    "idx_string": "r.logical_id, t.param, t.value, t.exact",
    "idx_date": "r.logical_id, t.param, t.low, t.high",
    "idx_quantity": "r.logical_id, t.param, t.low, t.high, t.system, t.code",
    "nhs_number_claim": "r.logical_id, t.nhs_number",
    "child_authority": "t.patient_id, t.organisation",
}


_claimed = claimed_numbers  # the server's own rule


_written_as = writing.written_as(ANONYMOUS, vocabulary(BASE), BASE)  # as the client below


RULES: dict[str, Any] = {
    "claimed_numbers": _claimed,
    "written_as": _written_as,
}


def _without_timestamp(value: Any) -> Any:
    if not isinstance(value, bytes):
        return value
    body = orjson.loads(value)
    del body["meta"]["lastUpdated"]
    return body


async def _rows(app: FastAPI) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the resource tables, by table, with pks and timestamps left out."""
    found = {}
    owner = " JOIN resource r ON r.pk = t.resource_pk"
    async with database(app).reader() as conn:
        for table, columns in TABLES.items():
            join = "" if table.startswith(("resource", "child_")) else owner
            rows = await conn.fetch(f"SELECT {columns} FROM {table} t{join}")
            found[table] = sorted((tuple(map(_without_timestamp, row)) for row in rows), key=repr)
    return found


async def _created_over_http(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """A family created through the API: each resource as posted, with the id it got."""
    posted: list[dict[str, Any]] = []

    async def post(resource: dict[str, Any]) -> str:
        stored = await create(client, resource)
        posted.append(resource | {"id": stored["id"]})
        return reference(stored)

    org = await post(f.organization())
    child = await post(f.patient(nhs=f.nhs_number(200), family="Okafor"))
    await post(f.flag(subject=child, author=org, identifier="F-1"))
    await post(f.condition(subject=child))
    await post(f.related_person(patient=child, relationship="MTH"))
    return posted


async def test_bulk_load_writes_the_rows_a_create_writes(
    client: httpx.AsyncClient, app: FastAPI, database_url: str
) -> None:
    posted = await _created_over_http(client)
    created_rows = await _rows(app)
    await empty_database(app)

    # loaded as the test client that created them over HTTP
    caller = await authority(app).caller(await token_for(app))
    written_as = writing.written_as(caller, vocabulary(BASE), BASE)
    ids = await bulk_load(
        database_url,
        posted,
        BASE,
        claimed_numbers=_claimed,
        written_as=written_as,
        caller=caller,
        batch=2,
    )

    assert ids == [r["id"] for r in posted]
    loaded_rows = await _rows(app)
    kept = ("resource", "idx_token", "nhs_number_claim", "child_authority")
    assert all(created_rows[table] for table in kept)
    assert loaded_rows == created_rows


async def test_bulk_loaded_population_is_read_and_found(
    client: httpx.AsyncClient, database_url: str
) -> None:
    planned = population.plan(12, seed=7, organisations=3)
    resources = list(population.resources(planned))

    await bulk_load(database_url, resources, BASE, **RULES, batch=10)

    child = planned.children[5]
    read = await client.get(f"/Patient/{child.id}")
    assert read.status_code == 200
    assert read.json()["identifier"][0]["value"] == child.nhs
    assert read.headers["etag"] == 'W/"1"'
    found = (await client.get(f"/Patient?identifier={population.NHS}|{child.nhs}")).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [child.id]
    flags = (await client.get(f"/Flag?patient={child.id}")).json()
    assert {e["resource"]["id"] for e in flags.get("entry", [])} == {p.id for p in child.flags}
    assert (await client.get(f"/Flag/{child.flags[0].id}")).status_code == 200


async def test_a_bulk_loaded_nhs_number_is_claimed_and_creates_follow_on(
    client: httpx.AsyncClient, database_url: str
) -> None:
    planned = population.plan(3, seed=11, organisations=1)
    await bulk_load(
        database_url,
        population.resources(planned),
        BASE,
        claimed_numbers=_claimed,
        written_as=_written_as,
    )
    nhs = planned.children[0].nhs

    clash = await client.post(
        "/Patient", json=f.patient(nhs=nhs), headers={"content-type": FHIR_JSON}
    )
    fresh = await create(client, f.flag(subject=f"Patient/{planned.children[1].id}"))

    assert clash.status_code == 422
    flags = (await client.get(f"/Flag?patient={planned.children[1].id}")).json()
    assert fresh["id"] in {e["resource"]["id"] for e in flags.get("entry", [])}


@pytest.mark.parametrize("seed", [1, 2])
def test_generated_resources_pass_the_server_rules(seed: int) -> None:
    planned = population.plan(40, seed=seed, organisations=5)
    resources = list(population.resources(planned))

    for resource in resources:
        resource_type = resource["resourceType"]
        validate_structure(resource_type, resource)
        assert rules.binding_issues(resource_type, resource) == []
        assert rules.nhs_number_issues(resource) == []
        assert rules.survey(resource)[0] == resource
    assert len({r["id"] for r in resources}) == len(resources)
    assert len({c.nhs for c in planned.children}) == 40
    assert population.plan(40, seed=seed, organisations=5) == planned
