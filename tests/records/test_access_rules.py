"""Writes as their caller (app.access.writing): who may write what, what each version records
of who wrote it, and what makes a local authority responsible for a child.

The data is written by the suite's all-seeing client; each rule is then exercised by apps
over the same database whose caller is a client of a given role and organisation.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from app.access import Caller, Role, caller_for
from app.access.scopes import parse
from app.flags.codes import vocabulary
from app.main import create_app
from app.registry import RESOURCE_TYPES
from app.settings import Settings
from tests import factories as f
from tests.callers import app_client_for, scoped
from tests.conftest import BASE
from tests.http import FHIR_JSON, create, reference

TYPES = frozenset(RESOURCE_TYPES)
SCOPE = "system/*.cruds"
TERMS = vocabulary(BASE)
RESTRICTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
As = Callable[[str, Role], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def as_client(settings: Settings, client: httpx.AsyncClient) -> AsyncIterator[As]:
    """Clients of apps over the suite's database whose caller is `client-<org>` of `role`,
    belonging to Organization/<org>."""
    async with AsyncExitStack() as stack:

        async def open_client(organisation: str, role: Role) -> httpx.AsyncClient:
            caller = caller_for(
                f"client-{organisation}", organisation, role, parse(SCOPE, TYPES), TYPES
            )
            app = create_app(settings, identify=lambda request: caller)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=BASE)
            )

        yield open_client


async def _org(client: httpx.AsyncClient, name: str, ods: str) -> str:
    return reference(await create(client, f.organization(ods=ods, name=name) | {"id": name}))


async def _put(client: httpx.AsyncClient, resource: dict[str, Any]) -> httpx.Response:
    url = f"/{resource['resourceType']}/{resource['id']}"
    return await client.put(url, json=resource, headers={"content-type": FHIR_JSON})


async def _orgs(client: httpx.AsyncClient) -> None:
    """Organizations gp, hospital, la-a, la-b, with those ids (created by the system client)."""
    for number, name in enumerate(("gp", "hospital", "la-a", "la-b")):
        response = await _put(
            client, f.organization(ods=f"A8100{number}", name=name) | {"id": name}
        )
        assert response.status_code == 201, response.text


async def test_a_flag_is_authored_by_the_writers_organisation(
    client: httpx.AsyncClient, as_client: As
) -> None:
    await _orgs(client)
    child = reference(await create(client, f.patient(nhs=f.nhs_number(1))))
    gp = await as_client("gp", "health")

    unsigned = await create(gp, f.flag(subject=child))
    assert unsigned["author"] == {"reference": "Organization/gp"}
    assert unsigned["meta"]["source"] == f"{BASE}/clients/client-gp"
    assert unsigned["meta"]["extension"] == [
        {"url": TERMS.written_by_extension, "valueReference": {"reference": "Organization/gp"}}
    ]
    signed_as_other = await gp.post(
        "/Flag",
        json=f.flag(subject=child, author="Organization/hospital"),
        headers={"content-type": FHIR_JSON},
    )
    assert signed_as_other.status_code == 403
    assert signed_as_other.json()["issue"][0]["expression"] == ["Flag.author"]
    by_system = await create(client, f.flag(subject=child, author="Organization/hospital"))
    assert by_system["author"] == {"reference": "Organization/hospital"}


async def test_a_condition_records_the_writers_organisation(
    client: httpx.AsyncClient, as_client: As
) -> None:
    await _orgs(client)
    child = reference(await create(client, f.patient(nhs=f.nhs_number(2))))
    hospital = await as_client("hospital", "health")

    recorded = await create(hospital, f.condition(subject=child))
    assert TERMS.recorded_by(recorded) == {"reference": "Organization/hospital"}
    other = f.recorded_condition(vocabulary=TERMS, subject=child, organization="Organization/gp")
    refused = await hospital.post("/Condition", json=other, headers={"content-type": FHIR_JSON})
    assert refused.status_code == 403


async def test_only_system_clients_change_the_directory_of_organisations(
    client: httpx.AsyncClient, as_client: As
) -> None:
    await _orgs(client)
    gp = await as_client("gp", "health")
    la = await as_client("la-a", "local-authority")
    for caller in (gp, la):
        made = await caller.post(
            "/Organization", json=f.organization(ods="B1"), headers={"content-type": FHIR_JSON}
        )
        assert made.status_code == 403
        changed = await _put(caller, f.organization(ods="A81000", name="renamed") | {"id": "gp"})
        assert changed.status_code == 403
        assert (await caller.delete("/Organization/gp")).status_code == 403
        assert (await caller.get("/Organization/gp")).status_code == 200
    assert (await client.get("/Organization/gp")).json()["name"] == "gp"


async def test_only_the_author_changes_ends_or_deletes(
    client: httpx.AsyncClient, as_client: As
) -> None:
    await _orgs(client)
    gp, hospital = await as_client("gp", "health"), await as_client("hospital", "health")
    child = await create(gp, f.patient(nhs=f.nhs_number(3)))
    flag = await create(gp, f.flag(subject=reference(child)))

    ended = flag | {"status": "inactive"}
    assert (await _put(hospital, ended)).status_code == 403
    assert (await hospital.delete(f"/Flag/{flag['id']}")).status_code == 403
    assert (await _put(hospital, child | {"gender": "male"})).status_code == 403
    patched = await hospital.patch(
        f"/Patient/{child['id']}",
        content=b'[{"op": "replace", "path": "/gender", "value": "male"}]',
        headers={"content-type": "application/json-patch+json"},
    )
    assert patched.status_code == 403
    assert (await client.get(f"/Flag/{flag['id']}")).json()["status"] == "active"

    assert (await _put(gp, ended)).status_code == 200
    assert (await _put(gp, child | {"gender": "male"})).status_code == 200
    assert (await _put(client, child | {"gender": "female", "meta": {}})).status_code == 200


async def test_writes_by_id_of_nothing_visible_are_404_but_for_system_clients(
    client: httpx.AsyncClient, as_client: As
) -> None:
    await _orgs(client)
    la_a, la_b = (
        await as_client("la-a", "local-authority"),
        await as_client("la-b", "local-authority"),
    )
    child = await create(la_a, f.patient(nhs=f.nhs_number(4)))
    flag = await create(la_a, f.flag(subject=reference(child)))

    as_b = flag | {"author": {"reference": "Organization/la-b"}}  # a body B may write
    for target in (as_b, child, f.patient() | {"id": "never-existed"}):
        path = f"/{target['resourceType']}/{target['id']}"
        assert (await _put(la_b, target)).status_code == 404
        assert (await la_b.delete(path)).status_code == 404
    created_by_id = await _put(client, f.patient() | {"id": "made-by-system"})
    assert created_by_id.status_code == 201
    assert (await client.delete("/Patient/nothing-here")).status_code in (200, 204)


async def test_a_history_shows_who_raised_and_who_ended_a_flag(
    client: httpx.AsyncClient, as_client: As
) -> None:
    await _orgs(client)
    child = reference(await create(client, f.patient(nhs=f.nhs_number(5))))
    la = await as_client("la-a", "local-authority")
    flag = await create(la, f.safeguarding_flag(subject=child, author="Organization/la-a"))
    ended = flag | {"status": "inactive", "period": {"start": "2026-01-10", "end": "2026-02-01"}}
    removal = {
        "url": TERMS.removal_reason_extension,
        "valueCodeableConcept": {
            "coding": [{"system": TERMS.removal_reason_system, "code": "plan-ended"}]
        },
    }
    assert (await _put(client, ended | {"extension": [removal]})).status_code == 200

    history = (await client.get(f"/Flag/{flag['id']}/_history")).json().get("entry", [])
    sources = [entry["resource"]["meta"]["source"] for entry in history]
    assert sources == [
        f"{BASE}/clients/{client_id}" for client_id in ("test-system", "client-la-a")
    ]
    found = await client.get("/Flag", params={"_source": f"{BASE}/clients/client-la-a"})
    assert [e["resource"]["id"] for e in found.json().get("entry", [])] == []
    found = await client.get("/Flag", params={"_source": f"{BASE}/clients/test-system"})
    assert [e["resource"]["id"] for e in found.json().get("entry", [])] == [flag["id"]]


async def test_responsibility_comes_from_the_patient_and_from_active_flags(
    client: httpx.AsyncClient, as_client: As
) -> None:
    await _orgs(client)
    la_a, la_b = (
        await as_client("la-a", "local-authority"),
        await as_client("la-b", "local-authority"),
    )
    in_a = f.patient(nhs=f.nhs_number(6)) | {
        "extension": [
            {
                "url": TERMS.responsible_local_authority_extension,
                "valueReference": {"reference": "Organization/la-a"},
            }
        ]
    }
    child = await create(client, in_a)
    condition = await create(client, f.condition(subject=reference(child)))
    assert (await la_a.get(f"/Condition/{condition['id']}")).status_code == 200
    assert (await la_b.get(f"/Condition/{condition['id']}")).status_code == 404

    # the cross-border case: B finds the child by NHS number, raises a flag, and then sees
    nhs = f"https://fhir.nhs.uk/Id/nhs-number|{f.nhs_number(6)}"
    found = (await la_b.get("/Patient", params={"identifier": nhs})).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [child["id"]]
    assert (await la_b.get(f"/Patient/{child['id']}")).status_code == 404
    flag = await create(la_b, f.flag(subject=reference(child)))
    assert (await la_b.get(f"/Condition/{condition['id']}")).status_code == 200
    assert (await la_b.get(f"/Patient/{child['id']}")).status_code == 200

    assert (await _put(la_b, flag | {"status": "inactive"})).status_code == 200
    assert (await la_b.get(f"/Condition/{condition['id']}")).status_code == 404
    assert (await la_b.get(f"/Flag/{flag['id']}")).status_code == 200  # its own, still


async def test_the_nhs_number_search_shows_the_patient_and_nothing_more(
    client: httpx.AsyncClient, as_client: As
) -> None:
    await _orgs(client)
    child = await create(client, f.patient(nhs=f.nhs_number(7), family="Moved"))
    await create(client, f.flag(subject=reference(child), author="Organization/gp"))
    la = await as_client("la-b", "local-authority")
    nhs = f"https://fhir.nhs.uk/Id/nhs-number|{f.nhs_number(7)}"

    with_flags = await la.get("/Patient", params={"identifier": nhs, "_revinclude": "Flag:subject"})
    assert [e["resource"]["resourceType"] for e in with_flags.json().get("entry", [])] == [
        "Patient"
    ]
    for params in (
        {"identifier": f.nhs_number(7)},
        {"identifier": nhs, "family": "Moved"},
        {"family": "Moved"},
        {"_id": child["id"]},
    ):
        answer = (await la.get("/Patient", params=params)).json()
        assert answer.get("entry", []) == [], params


async def test_restricted_items_are_seen_by_their_author_and_those_responsible(
    client: httpx.AsyncClient, as_client: As
) -> None:
    await _orgs(client)
    gp, hospital = await as_client("gp", "health"), await as_client("hospital", "health")
    la = await as_client("la-a", "local-authority")
    child = await create(client, f.patient(nhs=f.nhs_number(8)))
    await create(la, f.flag(subject=reference(child)))  # la-a is responsible
    secret = f.flag(subject=reference(child)) | {"meta": {"security": [RESTRICTED]}}
    restricted = await create(gp, secret)
    path = f"/Flag/{restricted['id']}"

    assert (await gp.get(path)).status_code == 200
    assert (await la.get(path)).status_code == 200
    assert (await client.get(path)).status_code == 200
    assert (await hospital.get(path)).status_code == 404
    history = (await hospital.get(f"{path}/_history")).json()
    assert history.get("entry", []) == []
    listed = (await hospital.get("/Flag", params={"subject": reference(child)})).json()
    assert restricted["id"] not in [e["resource"]["id"] for e in listed.get("entry", [])]

    unlabelled = restricted | {"meta": {}}
    assert (await _put(gp, unlabelled)).status_code == 200
    assert (await hospital.get(path)).status_code == 200


def test_callers_differ_by_organisation() -> None:
    one = caller_for("c", "a", "health", parse(SCOPE, TYPES), TYPES)
    assert one != Caller("c", "b", "health", one.grants, one.readable_types)


async def test_concurrent_conditional_creates_by_a_filtered_caller_make_one_resource(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    """A caller whose reads are filtered checks for hidden matches too: a match it may see
    committed meanwhile is a race to retry, never a 412 or a duplicate."""
    caller = scoped("system/Patient.crus", role="health", organisation="gp")
    async with app_client_for(settings, caller) as gp:
        number = f.nhs_number(77)
        headers = {"if-none-exist": f"identifier=https://fhir.nhs.uk/Id/nhs-number|{number}"}
        responses = await asyncio.gather(
            *(gp.post("/Patient", json=f.patient(nhs=number), headers=headers) for _ in range(12))
        )
    assert sorted(r.status_code for r in responses) == [200] * 11 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
