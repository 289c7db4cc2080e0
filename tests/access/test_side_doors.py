"""Side doors: what a caller may not see stays hidden where the server itself derives data
from it: earlier versions of a resource since hidden from the caller, and the family links the
server computes (`linked-patient`) to a Patient the caller may not see."""

import base64
from typing import Any

import httpx
from fastapi import FastAPI

from tests import factories as f
from tests.conftest import BASE
from tests.http import FHIR_JSON, create, reference
from tests.tokens import bearer

RESTRICTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}


async def _put(client: httpx.AsyncClient, resource: dict[str, Any]) -> httpx.Response:
    url = f"/{resource['resourceType']}/{resource['id']}"
    return await client.put(url, json=resource, headers={"content-type": FHIR_JSON})


async def _orgs(client: httpx.AsyncClient) -> None:
    for number, name in enumerate(("rv-h1", "rv-h2", "rv-la1", "rv-la2")):
        org = f.organization(ods=f"B8100{number}", name=name) | {"id": name}
        assert (await _put(client, org)).status_code in (200, 201)


async def _as(app: FastAPI, org: str, role: str) -> httpx.AsyncClient:
    headers = await bearer(app, f"side-{org}-{role}", role=role, organisation=f"Organization/{org}")
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers)


# a resource since hidden from the caller hides its earlier versions too


async def test_versions_before_a_restriction_are_hidden_with_the_resource(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Health org h1 records a Condition, then labels it restricted (meta.security R).
    Another health org h2 may no longer see it: read, instance history and vread of version 1
    are 404, and type and system history show none of its versions, only its deletion."""
    await _orgs(client)
    child = reference(await create(client, f.patient(nhs=f.nhs_number(501))))
    h1, h2 = await _as(app, "rv-h1", "health"), await _as(app, "rv-h2", "health")
    async with h1, h2:
        made = await create(h1, f.condition(subject=child))
        restricted = made | {"meta": {"security": [RESTRICTED]}}
        assert (await _put(h1, restricted)).status_code == 200
        url = f"/Condition/{made['id']}"
        assert (await h2.get(url)).status_code == 404  # holds
        assert (await h2.get(f"{url}/_history")).status_code == 404  # holds
        vread = await h2.get(f"{url}/_history/1")
        type_history = await h2.get("/Condition/_history")
        system_history = await h2.get("/_history")
    assert vread.status_code == 404, f"vread of v1 answered {vread.status_code}: {vread.text[:200]}"
    for history in (type_history, system_history):
        about = [e for e in history.json().get("entry", []) if made["id"] in e["fullUrl"]]
        assert [(e["request"]["method"], "resource" in e) for e in about] == [("DELETE", False)]


# `linked-patient` (computed by the server) matches only Patients the caller may see


async def _family_with_restricted_mother(
    app: FastAPI, client: httpx.AsyncClient
) -> tuple[str, str]:
    """A child; its mother's own Patient record, restricted by h1; two RelatedPersons of the
    child naming the mother's NHS number (visible to everyone in health). (mother id, child)"""
    await _orgs(client)
    child = reference(await create(client, f.patient(nhs=f.nhs_number(601))))
    mother_nhs = f.nhs_number(602)
    async with await _as(app, "rv-h1", "health") as h1:
        mother = await create(
            h1,
            f.patient(nhs=mother_nhs, given="Mum", birth_date="1990-01-01")
            | {"meta": {"security": [RESTRICTED]}},
        )
    for _ in range(2):
        await create(client, f.related_person(patient=child, relationship="MTH", nhs=mother_nhs))
    return mother["id"], child


async def test_a_link_to_a_hidden_patient_looks_missing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """h2 cannot see the mother's restricted Patient record, so to it the RelatedPersons
    naming her NHS number are linked to nothing (`linked-patient:missing`)."""
    mother_id, _child = await _family_with_restricted_mother(app, client)
    async with await _as(app, "rv-h2", "health") as h2:
        assert (await h2.get(f"/Patient/{mother_id}")).status_code == 404  # holds
        linked = await h2.get("/RelatedPerson", params={"linked-patient:missing": "false"})
        unlinked = await h2.get("/RelatedPerson", params={"linked-patient:missing": "true"})
    assert linked.status_code == 200
    # Indistinguishable from "no such Patient": every RelatedPerson should look unlinked.
    assert linked.json().get("total", 0) == 0, linked.json()
    assert unlinked.json().get("total", 0) == 2, unlinked.json()


async def test_sorting_by_a_link_never_puts_a_hidden_id_in_a_cursor(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """`_sort=linked-patient&_count=1`: the `next` link's `_cursor` carries the sort value of
    the page's last row, never the id of a Patient the caller may not see."""
    mother_id, _child = await _family_with_restricted_mother(app, client)
    async with await _as(app, "rv-h2", "health") as h2:
        page = await h2.get("/RelatedPerson", params={"_sort": "linked-patient", "_count": "1"})
    assert page.status_code == 200, page.text
    links = {link["relation"]: link["url"] for link in page.json()["link"]}
    cursor = links["next"].split("_cursor=", 1)[1].split("&", 1)[0]
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    assert mother_id not in decoded, f"next cursor {decoded} names hidden Patient/{mother_id}"


async def test_a_hidden_patients_id_matches_no_link(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """`RelatedPerson?linked-patient=Patient/<id>` cannot confirm the id of a Patient the
    caller may not read."""
    mother_id, _child = await _family_with_restricted_mother(app, client)
    async with await _as(app, "rv-h2", "health") as h2:
        found = await h2.get("/RelatedPerson", params={"linked-patient": f"Patient/{mother_id}"})
    assert found.json().get("total", 0) == 0, "a hidden Patient's id matched linked-patient"


async def test_versions_about_a_child_an_authority_no_longer_sees_are_hidden(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A Condition recorded about a child la1 is responsible for is corrected to another
    child: la1 can no longer read it, its instance history, or vread version 1 (also from a
    batch GET entry)."""
    from app.flags.codes import vocabulary

    await _orgs(client)
    url = vocabulary(BASE).responsible_local_authority_extension
    ours = f.patient(nhs=f.nhs_number(701)) | {
        "extension": [{"url": url, "valueReference": {"reference": "Organization/rv-la1"}}]
    }
    child = reference(await create(client, ours))
    other = reference(await create(client, f.patient(nhs=f.nhs_number(702), given="Bo")))
    async with await _as(app, "rv-h1", "health") as h1:
        made = await create(h1, f.condition(subject=child))
        moved = made | {"subject": {"reference": other}}
        assert (await _put(h1, moved)).status_code == 200
    async with await _as(app, "rv-la1", "local-authority") as la1:
        path = f"/Condition/{made['id']}"
        assert (await la1.get(path)).status_code == 404  # holds
        vread = await la1.get(f"{path}/_history/1")
        bundle = f.bundle(
            kind="batch",
            entries=[{"request": {"method": "GET", "url": f"Condition/{made['id']}/_history/1"}}],
        )
        batch = await la1.post(BASE, json=bundle, headers={"content-type": FHIR_JSON})
    batch_status = batch.json().get("entry", [])[0]["response"]["status"]
    assert (vread.status_code, batch_status[:3]) == (404, "404"), (vread.status_code, batch_status)
    assert batch.json().get("entry", [])[0]["response"]["status"].startswith("404"), batch.text[
        :300
    ]
