"""create, read, vread, update, patch and delete (http://hl7.org/fhir/R4/http.html)."""

import httpx
import pytest

from tests import factories as f
from tests.http import FHIR_JSON, create, outcome_expressions


async def test_create_assigns_id_version_and_headers(client: httpx.AsyncClient) -> None:
    body = f.patient(nhs=f.nhs_number(1)) | {"id": "client-chosen"}
    response = await client.post("/Patient", json=body)
    assert response.status_code == 201
    stored = response.json()
    assert stored["id"] != "client-chosen"
    assert stored["meta"]["versionId"] == "1"
    assert stored["meta"]["lastUpdated"].endswith("+00:00")
    assert response.headers["location"] == f"http://test/fhir/Patient/{stored['id']}/_history/1"
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["last-modified"].endswith("GMT")
    assert response.headers["content-type"].startswith(FHIR_JSON)


async def test_read_returns_stored_bytes_with_etag(client: httpx.AsyncClient) -> None:
    created = await create(client, f.organization())
    response = await client.get(f"/Organization/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == 'W/"1"'


async def test_read_unknown_is_404_with_outcome(client: httpx.AsyncClient) -> None:
    response = await client.get("/Patient/does-not-exist")
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"


async def test_update_increments_version_and_vread_keeps_every_version(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, f.patient(family="Jones"))
    changed = created | {"name": [{"family": "Brown"}]}
    response = await client.put(f"/Patient/{created['id']}", json=changed)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    assert response.headers["etag"] == 'W/"2"'
    first = await client.get(f"/Patient/{created['id']}/_history/1")
    second = await client.get(f"/Patient/{created['id']}/_history/2")
    assert first.json()["name"][0]["family"] == "Jones"
    assert second.json()["name"][0]["family"] == "Brown"
    assert (await client.get(f"/Patient/{created['id']}/_history/3")).status_code == 404


async def test_update_as_create_with_client_id_is_201(client: httpx.AsyncClient) -> None:
    body = f.organization() | {"id": "la-E06000001"}
    response = await client.put("/Organization/la-E06000001", json=body)
    assert response.status_code == 201
    assert response.headers["location"].endswith("/Organization/la-E06000001/_history/1")
    again = await client.put("/Organization/la-E06000001", json=body)
    assert again.status_code == 200
    assert again.json()["meta"]["versionId"] == "2"


@pytest.mark.parametrize("body_id", ["other-id", None])
async def test_update_with_body_id_not_matching_url_is_400(
    client: httpx.AsyncClient, body_id: str | None
) -> None:
    created = await create(client, f.organization())
    body = f.organization() | ({"id": body_id} if body_id else {})
    response = await client.put(f"/Organization/{created['id']}", json=body)
    assert response.status_code == 400
    assert outcome_expressions(response) == ["Organization.id"]


async def test_delete_is_soft_and_repeatable(client: httpx.AsyncClient) -> None:
    created = await create(client, f.organization())
    url = f"/Organization/{created['id']}"
    assert (await client.delete(url)).status_code == 200
    gone = await client.get(url)
    assert gone.status_code == 410
    assert gone.json()["issue"][0]["code"] == "deleted"
    assert (await client.delete(url)).status_code == 200
    assert (await client.delete("/Organization/never-existed")).status_code == 200
    assert (await client.get(f"{url}/_history/1")).status_code == 200
    assert (await client.get(f"{url}/_history/2")).status_code == 410
    history = (await client.get(f"{url}/_history")).json()
    assert [e["request"]["method"] for e in history.get("entry", [])] == ["DELETE", "POST"]


async def test_update_after_delete_recreates_with_next_version(client: httpx.AsyncClient) -> None:
    created = await create(client, f.organization())
    url = f"/Organization/{created['id']}"
    await client.delete(url)
    response = await client.put(url, json=created)
    assert response.status_code == 201
    assert response.json()["meta"]["versionId"] == "3"


async def test_json_patch_applies_and_versions(client: httpx.AsyncClient) -> None:
    created = await create(client, f.patient())
    patch = [{"op": "replace", "path": "/gender", "value": "male"}]
    response = await client.patch(
        f"/Patient/{created['id']}",
        content=httpx._content.json_dumps(patch) if False else __import__("json").dumps(patch),
        headers={"content-type": "application/json-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["gender"] == "male"
    assert response.json()["meta"]["versionId"] == "2"


async def test_json_patch_result_is_validated_like_an_update(client: httpx.AsyncClient) -> None:
    created = await create(client, f.patient())
    patch = [{"op": "replace", "path": "/gender", "value": "bogus"}]
    response = await client.patch(
        f"/Patient/{created['id']}",
        content=__import__("json").dumps(patch),
        headers={"content-type": "application/json-patch+json"},
    )
    assert response.status_code == 422
    assert outcome_expressions(response) == ["Patient.gender"]
    assert (await client.get(f"/Patient/{created['id']}")).json()["gender"] == "female"


async def test_if_match_stale_is_412_and_malformed_is_400(client: httpx.AsyncClient) -> None:
    created = await create(client, f.organization())
    url = f"/Organization/{created['id']}"
    stale = await client.put(url, json=created, headers={"if-match": 'W/"7"'})
    assert stale.status_code == 412
    malformed = await client.put(url, json=created, headers={"if-match": "seven"})
    assert malformed.status_code == 400
    assert outcome_expressions(malformed) == ["If-Match"]
    good = await client.put(url, json=created, headers={"if-match": 'W/"1"'})
    assert good.status_code == 200
    assert (await client.delete(url, headers={"if-match": 'W/"1"'})).status_code == 412
    assert (await client.delete(url, headers={"if-match": 'W/"2"'})).status_code == 200


@pytest.mark.parametrize(
    ("preference", "expected_body"),
    [
        ("return=minimal", None),
        ("return=representation", "Organization"),
        ("return=OperationOutcome", "OperationOutcome"),
    ],
)
async def test_prefer_return_is_honoured(
    client: httpx.AsyncClient, preference: str, expected_body: str | None
) -> None:
    headers = {"prefer": preference}
    created = await client.post("/Organization", json=f.organization(), headers=headers)
    assert created.status_code == 201
    location = created.headers["location"]
    logical_id = location.split("/")[-3]
    updated = await client.put(
        f"/Organization/{logical_id}", json=f.organization() | {"id": logical_id}, headers=headers
    )
    for response in (created, updated):
        if expected_body is None:
            assert response.content == b""
        else:
            assert response.json()["resourceType"] == expected_body
    patched = await client.patch(
        f"/Organization/{logical_id}",
        content=b'[{"op":"replace","path":"/name","value":"New"}]',
        headers={"content-type": "application/json-patch+json", **headers},
    )
    assert patched.status_code == 200
    assert (patched.content == b"") == (expected_body is None)
