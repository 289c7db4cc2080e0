"""Seeding the demo registers its clients with local keys; their tokens work, and a council
sees its own children."""

import asyncio
from datetime import date
from typing import Any

import httpx
import pytest

from app.auth.clients import every_client
from app.auth.commands import local_token
from app.demo.clients import DEMO_CLIENTS
from app.demo.families import LOCALITIES
from app.demo.population import org_id, population
from app.demo.seeding import seed_database
from app.flags import codes
from app.settings import Settings
from tests.conftest import BASE
from tests.tokens import authority


@pytest.fixture
async def seeded(client: httpx.AsyncClient, settings: Settings) -> Settings:
    """The database under test holding a small demo population and its clients."""
    await seed_database(settings, 3, 1, date(2026, 6, 1))
    return settings


async def test_seeding_registers_the_demo_clients(
    seeded: Settings, client: httpx.AsyncClient
) -> None:
    db = authority(client._transport.app).db  # type: ignore[attr-defined]
    found = {c.client_id: c for c in await every_client(db)}
    for client_id, organisation, role, scope in DEMO_CLIENTS:
        registered = found[client_id]
        assert (registered.organisation, registered.role, registered.scope) == (
            organisation, role, scope,
        )  # fmt: skip
        assert registered.local_key is not None and registered.revoked_at is None
    assert found["demo-gp"].scope == (
        "system/Patient.crus system/Flag.cruds system/Condition.cruds "
        "system/RelatedPerson.cruds system/CareTeam.cruds system/Organization.rs"
    )


async def _token(settings: Settings, client_id: str) -> str:
    return await asyncio.to_thread(local_token, settings, client_id)


async def test_demo_gp_token_reads_patients(seeded: Settings, client: httpx.AsyncClient) -> None:
    token = await _token(seeded, "demo-gp")
    response = await client.get(BASE + "/Patient", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json().get("entry", [])


async def test_a_council_sees_its_children_and_no_others(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    seeded = settings
    await seed_database(settings, 20, 1, date(2026, 6, 1))  # as `make run`: 6 in council A
    council = f"Organization/{org_id(LOCALITIES[0].council)}"
    vocabulary = codes.vocabulary(BASE)
    everything = await _all(client, "Patient", {}) + await _all(client, "Flag", {})
    responsible = {
        r["id"]
        for r in everything
        if r["resourceType"] == "Patient"
        and council in [ref["reference"] for ref in vocabulary.responsible_authorities(r)]
    } | {
        r["subject"]["reference"].removeprefix("Patient/")
        for r in everything
        if r["resourceType"] == "Flag"
        and r["status"] == "active"
        and r.get("author", {}).get("reference") == council
    }
    token = await _token(seeded, "demo-la-a")
    headers = {"Authorization": f"Bearer {token}"}
    seen = {r["id"] for r in await _all(client, "Patient", headers)}
    assert responsible and seen == responsible
    assert len(seen) < len([r for r in everything if r["resourceType"] == "Patient"])


async def _all(
    client: httpx.AsyncClient, resource_type: str, headers: dict[str, str]
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{BASE}/{resource_type}", params={"_count": "500"}, headers=headers
    )
    assert response.status_code == 200, response.text
    return [entry["resource"] for entry in response.json().get("entry", [])]


def test_demo_children_name_their_council_as_responsible() -> None:
    vocabulary = codes.vocabulary(BASE)
    groups = list(population(4, 1, vocabulary, date(2026, 6, 1)))
    councils = {f"Organization/{org_id(place.council)}" for place in LOCALITIES}
    children = [
        resource
        for family in groups[1:]
        for resource in family
        if resource["resourceType"] == "Patient" and "-c" in resource["id"]
    ]
    assert children
    for child in children:
        named = [ref["reference"] for ref in vocabulary.responsible_authorities(child)]
        assert len(named) == 1 and named[0] in councils
