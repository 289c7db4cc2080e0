"""Transaction edge cases: conditions that could leave a reference dangling, retried
attempts, conditional updates in batches, and NHS-number clashes under a condition."""

import asyncio
from typing import Any

import httpx
import orjson

from tests import factories as f
from tests.http import create

BASE = "http://test/fhir"
FHIR_JSON = {"content-type": "application/fhir+json"}
ORG = "https://example.org/org"
ORG_URN = "urn:uuid:3d6f0a2b-8c1e-4f5a-9b7d-2e4c6a8b0d1f"


def _org(value: str) -> dict[str, Any]:
    return f.organization() | {"identifier": [{"system": ORG, "value": value}]}


async def _post(client: httpx.AsyncClient, entries: list[Any], kind: str) -> httpx.Response:
    bundle = f.bundle(kind=kind, entries=entries)
    return await client.post(BASE, content=orjson.dumps(bundle), headers=FHIR_JSON)


async def _resolves(client: httpx.AsyncClient, reference: str) -> bool:
    return (await client.get(f"/{reference}")).status_code == 200


async def test_two_entries_with_one_condition_are_refused(client: httpx.AsyncClient) -> None:
    condition = f"identifier={ORG}|dup"
    once = f.entry(method="POST", url="Organization", resource=_org("dup"), if_none_exist=condition)
    entries = [once, once]
    response = await _post(client, entries, "transaction")
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1]"]


async def test_a_condition_matching_another_entry_leaves_no_dangling_reference(
    client: httpx.AsyncClient,
) -> None:
    entries = [
        f.entry(method="POST", url="Organization", resource=_org("p")),
        f.entry(
            method="POST",
            url="Organization",
            resource=_org("p"),
            full_url=ORG_URN,
            if_none_exist=f"identifier={ORG}|p",
        ),
        f.entry(
            method="POST",
            url="Patient",
            resource=f.patient() | {"managingOrganization": {"reference": ORG_URN}},
        ),
    ]
    response = await _post(client, entries, "transaction")
    assert response.status_code == 200, response.text
    patient_id = response.json().get("entry", [])[2]["response"]["location"].split("/")[1]
    patient = (await client.get(f"/Patient/{patient_id}")).json()
    assert await _resolves(client, patient["managingOrganization"]["reference"])


async def test_concurrent_conditional_update_transactions_all_succeed(
    client: httpx.AsyncClient,
) -> None:
    entry = f.entry(method="PUT", url=f"Organization?identifier={ORG}|cp", resource=_org("cp"))
    responses = await asyncio.gather(*(_post(client, [entry], "transaction") for _ in range(6)))
    assert [r.status_code for r in responses] == [200] * 6, [r.text[:300] for r in responses]
    found = (await client.get("/Organization", params={"identifier": f"{ORG}|cp"})).json()
    assert len(found.get("entry", [])) == 1


async def test_a_conditional_update_in_a_batch_is_processed(client: httpx.AsyncClient) -> None:
    entry = f.entry(method="PUT", url=f"Organization?identifier={ORG}|b", resource=_org("b"))
    first = await _post(client, [entry], "batch")
    second = await _post(client, [entry], "batch")
    assert first.status_code == second.status_code == 200, first.text
    statuses = [r.json().get("entry", [])[0]["response"]["status"] for r in (first, second)]
    assert statuses == ["201 Created", "200 OK"]


async def test_a_conditional_update_keeps_a_body_id_that_differs_from_the_match(
    client: httpx.AsyncClient,
) -> None:
    await create(client, _org("d"))
    entry = f.entry(
        method="PUT", url=f"Organization?identifier={ORG}|d", resource=_org("d") | {"id": "another"}
    )
    response = await _post(client, [entry], "transaction")
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.id"]


async def test_an_nhs_number_held_by_a_patient_the_condition_misses_is_422(
    client: httpx.AsyncClient,
) -> None:
    number = f.nhs_number(901)
    await create(client, f.patient(nhs=number))
    other = f.patient(nhs=number)
    other["identifier"].append({"system": ORG, "value": "q"})
    response = await client.post(
        "/Patient", json=other, headers=FHIR_JSON | {"if-none-exist": f"identifier={ORG}|q"}
    )
    assert response.status_code == 422, response.text


async def test_concurrent_duplicates_of_a_batch_write_once(client: httpx.AsyncClient) -> None:
    entry = f.entry(method="POST", url="Organization", resource=_org("batch-once"))
    bundle = orjson.dumps(f.bundle(kind="batch", entries=[entry]))
    headers = FHIR_JSON | {"x-request-id": "6f1d2c3b-4a5e-4f60-8b7a-9c0d1e2f3a4b"}
    responses = await asyncio.gather(
        *(client.post(BASE, content=bundle, headers=headers) for _ in range(6))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 409} and 200 in statuses, statuses
    answers = {r.content for r in responses if r.status_code == 200}
    assert len(answers) == 1  # the first answer, replayed
    found = (await client.get("/Organization", params={"identifier": f"{ORG}|batch-once"})).json()
    assert len(found.get("entry", [])) == 1
    again = await client.post(BASE, content=bundle, headers=headers)
    assert again.status_code == 200 and again.content in answers


async def test_a_placeholder_in_a_uri_element_is_rewritten_too(client: httpx.AsyncClient) -> None:
    flag = f.flag(subject=ORG_URN.replace("3d6f", "4e7a"))
    child = flag["subject"]["reference"]
    flag["extension"] = [{"url": "https://example.org/about", "valueUri": child}]
    entries = [
        f.entry(method="POST", url="Patient", full_url=child, resource=f.patient()),
        f.entry(method="POST", url="Flag", resource=flag),
    ]
    response = await _post(client, entries, "transaction")
    assert response.status_code == 200, response.text
    patient_path = "/".join(
        response.json().get("entry", [])[0]["response"]["location"].split("/")[:2]
    )
    flag_path = "/".join(response.json().get("entry", [])[1]["response"]["location"].split("/")[:2])
    stored = (await client.get(f"/{flag_path}")).json()
    assert stored["subject"]["reference"] == patient_path
    assert stored["extension"][0]["valueUri"] == patient_path
