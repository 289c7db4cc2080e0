"""Ids that would change a URL's path (`.`, `..`) are refused wherever an id is taken.

FHIR ids are [A-Za-z0-9-.]{1,64}; one made only of dots would make `Patient/..` name `/fhir`
in every Location, fullUrl and reference built from it. Dots are sent percent-encoded: httpx,
like any URL library, would otherwise remove the dot segments before sending.
"""

from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.http import FHIR_JSON, create, outcome_expressions, post_bundle

DOTS = [".", "..", "..."]
JSON_PATCH = "application/json-patch+json"


def encoded(logical_id: str) -> str:
    return logical_id.replace(".", "%2E")


def _body(logical_id: str) -> dict[str, Any]:
    return {**f.patient(), "id": logical_id}


def _requests(logical_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    path = f"/Patient/{encoded(logical_id)}"
    patch = {"content": b"[]", "headers": {"content-type": JSON_PATCH}}
    return [
        ("GET", path, {}),
        ("GET", f"{path}/_history/1", {}),
        ("GET", f"{path}/_history", {}),
        ("PUT", path, {"json": _body(logical_id), "headers": {"content-type": FHIR_JSON}}),
        ("PATCH", path, patch),
        ("DELETE", path, {}),
    ]


def assert_refused(response: httpx.Response, expression: str) -> None:
    assert response.status_code == 400, response.text
    assert expression in outcome_expressions(response)


@pytest.mark.parametrize("logical_id", DOTS)
async def test_ids_of_dots_are_refused_on_every_instance_path(
    client: httpx.AsyncClient, logical_id: str
) -> None:
    for method, path, request in _requests(logical_id):
        response = await client.request(method, path, **request)
        assert response.status_code == 400, (method, path, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
        assert "location" not in response.headers
    assert (await client.get("/Patient/_history")).json().get("entry", []) == []


async def test_a_put_of_patient_dot_dot_creates_nothing(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/Patient/%2E%2E", json=_body(".."), headers={"content-type": FHIR_JSON}
    )
    assert_refused(response, "id")
    assert "'..'" in response.text


@pytest.mark.parametrize("logical_id", DOTS)
async def test_a_conditional_update_body_of_dots_is_refused(
    client: httpx.AsyncClient, logical_id: str
) -> None:
    response = await client.put(
        "/Patient",
        params={"identifier": "urn:x|1"},
        json=_body(logical_id),
        headers={"content-type": FHIR_JSON},
    )
    assert_refused(response, "Patient.id")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("logical_id", DOTS)
async def test_bundle_entry_urls_of_dots_are_refused(
    client: httpx.AsyncClient, method: str, logical_id: str
) -> None:
    resource = _body(logical_id) if method == "PUT" else None
    entry = f.entry(method=method, url=f"Patient/{logical_id}", resource=resource)
    response = await post_bundle(client, f.bundle(entries=[entry]))
    assert_refused(response, "Bundle.entry[0].request.url")


async def test_a_conditional_update_entry_with_a_body_id_of_dots_is_refused(
    client: httpx.AsyncClient,
) -> None:
    entry = f.entry(method="PUT", url="Patient?identifier=urn:x|1", resource=_body(".."))
    response = await post_bundle(client, f.bundle(entries=[entry]))
    assert_refused(response, "Bundle.entry[0].resource.id")


async def test_ids_with_dots_among_other_characters_still_work(
    client: httpx.AsyncClient,
) -> None:
    for logical_id in ("a.b", "..a", "1.2.3"):
        response = await client.put(
            f"/Patient/{logical_id}", json=_body(logical_id), headers={"content-type": FHIR_JSON}
        )
        assert response.status_code == 201, response.text
        assert (await client.get(f"/Patient/{logical_id}")).status_code == 200
    stored = await create(client, f.patient())
    assert (await client.get(f"/Patient/{stored['id']}/_history/1")).status_code == 200
