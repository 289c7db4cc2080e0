"""Write rules through the API: bindings, references that must exist, NHS numbers (422)."""

import httpx

from tests import factories as f
from tests.http import create, outcome_expressions, reference


async def test_flag_on_a_patient_that_does_not_exist_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/Flag", json=f.flag(subject="Patient/nobody"))
    assert response.status_code == 422
    assert outcome_expressions(response) == ["Flag.subject"]
    assert (await client.get("/_history")).json().get("entry", []) == []


async def test_flag_on_a_deleted_patient_or_author_is_422(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient())
    practice = await create(client, f.organization())
    await client.delete(f"/Organization/{practice['id']}")
    response = await client.post(
        "/Flag", json=f.flag(subject=reference(child), author=reference(practice))
    )
    assert response.status_code == 422
    assert outcome_expressions(response) == ["Flag.author"]


async def test_absolute_reference_on_our_base_is_checked_too(client: httpx.AsyncClient) -> None:
    response = await client.post("/Flag", json=f.flag(subject="http://test/fhir/Patient/ghost"))
    assert response.status_code == 422
    child = await create(client, f.patient())
    ok = await client.post("/Flag", json=f.flag(subject=f"http://test/fhir/Patient/{child['id']}"))
    assert ok.status_code == 201


async def test_required_binding_violations_are_422(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient())
    bad_flag = await client.post("/Flag", json=f.flag(subject=reference(child), status="bogus"))
    assert bad_flag.status_code == 422
    assert outcome_expressions(bad_flag) == ["Flag.status"]
    bad_patient = await client.post("/Patient", json=f.patient(gender="bogus"))
    assert outcome_expressions(bad_patient) == ["Patient.gender"]


async def test_structure_errors_are_400_naming_the_element(client: httpx.AsyncClient) -> None:
    body = f.patient() | {"birthDate": "2020-13-45", "colour": "blue"}
    response = await client.post("/Patient", json=body)
    assert response.status_code == 400
    assert sorted(outcome_expressions(response)) == ["Patient.birthDate", "Patient.colour"]


async def test_invalid_nhs_number_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/Patient", json=f.patient(nhs="9000000000"))
    assert response.status_code == 422
    assert outcome_expressions(response) == ["Patient.identifier[0].value"]


async def test_nhs_number_is_unique_among_live_patients(client: httpx.AsyncClient) -> None:
    number = f.nhs_number(42)
    first = await create(client, f.patient(nhs=number))
    duplicate = await client.post("/Patient", json=f.patient(nhs=number))
    assert duplicate.status_code == 422
    assert first["id"] in duplicate.json()["issue"][0]["diagnostics"]
    assert len((await client.get("/Patient/_history")).json().get("entry", [])) == 1
    assert (await client.put(f"/Patient/{first['id']}", json=first)).status_code == 200
    await client.delete(f"/Patient/{first['id']}")
    assert (await client.post("/Patient", json=f.patient(nhs=number))).status_code == 201


async def test_nhs_number_freed_by_an_update_can_be_used_again(client: httpx.AsyncClient) -> None:
    number = f.nhs_number(43)
    first = await create(client, f.patient(nhs=number))
    without = {key: value for key, value in first.items() if key != "identifier"}
    assert (await client.put(f"/Patient/{first['id']}", json=without)).status_code == 200
    assert (await client.post("/Patient", json=f.patient(nhs=number))).status_code == 201


async def test_snomed_https_system_is_stored_as_http(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient())
    body = f.flag(subject=reference(child))
    body["code"]["coding"][0]["system"] = "https://snomed.info/sct"
    stored = await create(client, body)
    assert stored["code"]["coding"][0]["system"] == f.SNOMED


async def test_reference_to_another_type_with_the_same_id_is_still_checked(
    client: httpx.AsyncClient,
) -> None:
    body = f.flag(subject="Patient/shared-id") | {"id": "shared-id"}
    response = await client.put("/Flag/shared-id", json=body)
    assert response.status_code == 422
    assert outcome_expressions(response) == ["Flag.subject"]


async def test_a_null_coding_is_stored_and_indexed_as_no_codings(
    client: httpx.AsyncClient,
) -> None:
    """fhir.resources lets `"coding": null` through; the indexer once failed on it (500)."""
    child = await create(client, f.patient())
    condition = f.condition(subject=reference(child)) | {"code": {"coding": None, "text": "Odd"}}
    response = await client.post("/Condition", json=condition)
    assert response.status_code == 201, response.text
    found = (await client.get("/Condition", params={"code:text": "odd"})).json()
    assert found["total"] == 1
