"""Bulk Data $export (https://hl7.org/fhir/uv/bulkdata/STU2/export.html): kick-off, status,
manifest and files; parameters; the snapshot as of transactionTime and `_since`."""

from datetime import datetime

import httpx
import pytest

from app.settings import Settings
from tests import factories as f
from tests.conftest import BASE
from tests.fhir.exports import ASYNC, by_type, export, finished, ids, kick_off, lines, status_url
from tests.http import client_with, create, outcome_expressions, reference


async def test_a_system_export_round_trip(client: httpx.AsyncClient) -> None:
    org = await create(client, f.organization())
    child = await create(client, f.patient(nhs=f.nhs_number(1)))
    flag = await create(client, f.flag(subject=reference(child)))
    url = await status_url(client, _type="Patient,Flag,Organization")
    assert url.startswith(f"{BASE}/$export-status/")
    manifest = await export(client, _type="Patient,Flag,Organization")
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"] == f"{BASE}/$export?_type=Patient%2CFlag%2COrganization"
    assert manifest["error"] == [] and "deleted" not in manifest
    found = await by_type(client, manifest)
    assert found == {"Patient": [child], "Flag": [flag], "Organization": [org]}
    assert [item["type"] for item in manifest["output"]] == ["Patient", "Flag", "Organization"]


async def test_a_patient_export_holds_patients_and_their_compartments_only(
    client: httpx.AsyncClient,
) -> None:
    await create(client, f.organization())
    child = await create(client, f.patient(nhs=f.nhs_number(2)))
    flag = await create(client, f.flag(subject=reference(child)))
    manifest = await export(client, "/Patient/$export")
    assert manifest["request"] == f"{BASE}/Patient/$export"
    assert await by_type(client, manifest) == {"Patient": [child], "Flag": [flag]}


@pytest.mark.parametrize(
    ("path", "params", "expression"),
    [
        (
            "/$export",
            {"includeAssociatedData": "LatestProvenanceResources"},
            "includeAssociatedData",
        ),
        ("/$export", {"patient": "Patient/x"}, "patient"),
        ("/$export", {"_count": "10"}, "_count"),
        ("/$export", {"_outputFormat": "application/fhir+xml"}, "_outputFormat"),
        ("/$export", {"_since": "yesterday"}, "_since"),
        ("/$export", {"_type": "Observation"}, "_type"),
        ("/Patient/$export", {"_type": "Organization"}, "_type"),
        ("/$export", {"_type": "Flag", "_typeFilter": "Patient?gender=male"}, "_typeFilter"),
        ("/$export", {"_typeFilter": "Flag?bogus=1"}, "_typeFilter"),
        ("/$export", {"_typeFilter": "Flag?_count=3"}, "_typeFilter"),
        ("/$export", {"_typeFilter": "status=active"}, "_typeFilter"),
        ("/$export", {"_elements": "a.b"}, "_elements"),
    ],
)
async def test_parameters_not_supported_are_refused(
    client: httpx.AsyncClient, path: str, params: dict[str, str], expression: str
) -> None:
    response = await kick_off(client, path, **params)
    assert response.status_code == 400, response.text
    assert outcome_expressions(response) == [expression]


async def test_a_kick_off_without_respond_async_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/$export")
    assert response.status_code == 400
    assert outcome_expressions(response) == ["Prefer"]


@pytest.mark.parametrize(
    "output_format", ["application/fhir+ndjson", "application/ndjson", "ndjson"]
)
async def test_each_ndjson_output_format_is_accepted(
    client: httpx.AsyncClient, output_format: str
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(3)))
    manifest = await export(client, _outputFormat=output_format)
    assert await by_type(client, manifest) == {"Patient": [child]}


async def test_type_filter_and_elements_select_resources_and_their_elements(
    client: httpx.AsyncClient,
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(4)))
    active = await create(client, f.flag(subject=reference(child)))
    await create(client, f.flag(subject=reference(child), status="inactive"))
    manifest = await export(
        client, _type="Flag,Patient", _typeFilter="Flag?status=active", _elements="gender"
    )
    found = await by_type(client, manifest)
    assert ids(found["Flag"]) == {active["id"]}
    (patient,) = found["Patient"]
    assert patient["gender"] == child["gender"] and "name" not in patient
    assert any(tag["code"] == "SUBSETTED" for tag in patient["meta"]["tag"])


async def test_type_filters_of_one_type_are_ored(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(5)))
    active = await create(client, f.flag(subject=reference(child)))
    ended = await create(client, f.flag(subject=reference(child), status="inactive"))
    await create(client, f.flag(subject=reference(child), status="entered-in-error"))
    filters = [("_typeFilter", "Flag?status=active"), ("_typeFilter", "Flag?status=inactive")]
    response = await client.get("/$export", params=filters, headers=ASYNC)
    assert response.status_code == 202, response.text
    url = response.headers["Content-Location"]
    found = await by_type(client, await finished(client, url))
    assert ids(found["Flag"]) == {active["id"], ended["id"]}


async def test_since_exports_what_changed_and_lists_what_was_deleted(
    client: httpx.AsyncClient,
) -> None:
    kept = await create(client, f.patient(nhs=f.nhs_number(6)))
    changed = await create(client, f.patient(nhs=f.nhs_number(7)))
    removed = await create(client, f.patient(nhs=f.nhs_number(8)))
    first = await export(client)
    since = first["transactionTime"]
    updated = await client.put(f"/Patient/{changed['id']}", json=changed | {"gender": "male"})
    assert updated.status_code == 200
    assert (await client.delete(f"/Patient/{removed['id']}")).status_code == 200
    added = await create(client, f.patient(nhs=f.nhs_number(9)))

    second = await export(client, _since=since)
    found = await by_type(client, second)
    assert found == {"Patient": [updated.json(), added]}
    assert kept["id"] not in ids(found["Patient"])
    (deleted,) = second["deleted"]
    assert deleted["type"] == "Bundle" and deleted["count"] == 1
    (bundle,) = await lines(client, deleted["url"])
    assert bundle["type"] == "transaction"
    assert bundle.get("entry", []) == [
        {"request": {"method": "DELETE", "url": f"Patient/{removed['id']}"}}
    ]


async def test_an_export_is_a_snapshot_and_since_picks_up_exactly_what_came_after(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    before = [await create(client, f.patient(given=f"P{n}")) for n in range(6)]
    async with client_with(settings, export_chunk_rows=1) as slow:
        url = await status_url(slow)
        # written while the job runs (one row a chunk): none of it is in this export
        changed = await slow.put(f"/Patient/{before[0]['id']}", json=before[0] | {"gender": "male"})
        assert (await slow.delete(f"/Patient/{before[1]['id']}")).status_code == 200
        added = await create(slow, f.patient(given="Late"))
        snapshot = await finished(slow, url)
        assert await by_type(slow, snapshot) == {"Patient": before}

        after = await export(slow, _since=snapshot["transactionTime"])
        assert await by_type(slow, after) == {"Patient": [changed.json(), added]}
        (deleted,) = after["deleted"]
        (bundle,) = await lines(slow, deleted["url"])
        assert bundle.get("entry", [])[0]["request"]["url"] == f"Patient/{before[1]['id']}"


async def test_transaction_time_is_never_before_since(client: httpx.AsyncClient) -> None:
    await create(client, f.patient())
    since = "2100-01-01T00:00:00Z"
    manifest = await export(client, _since=since)
    assert _instant(manifest["transactionTime"]) == _instant(since)
    assert manifest["output"] == [] and manifest["deleted"] == []
    again = await export(client, _since=manifest["transactionTime"])
    assert _instant(again["transactionTime"]) == _instant(since)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_an_empty_export_has_no_output(client: httpx.AsyncClient) -> None:
    manifest = await export(client)
    assert manifest["output"] == [] and manifest["error"] == []
