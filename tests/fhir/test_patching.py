"""The body limit holds for the resource a JSON Patch makes, not only for the patch itself.

The app under test takes bodies of up to 64 KiB (tests/conftest.py).
"""

from typing import Any

import httpx
import pytest

from app.errors import PayloadTooLarge
from app.fhir.patching import json_patcher
from tests import factories as f
from tests.fhir.bundles.test_transaction import json_patch
from tests.http import create, post_bundle, reference

PATCH_JSON = "application/json-patch+json"
LIMIT = 64 * 1024


def extension(text: str) -> dict[str, Any]:
    return {"url": "http://example.org/x", "valueString": text}


def copies(text: str, times: int) -> list[dict[str, Any]]:
    """A string at /extension/0, then `times` copies of it: a small patch, a large result."""
    first = {"op": "add", "path": "/extension", "value": [extension(text)]}
    copy = {"op": "copy", "from": "/extension/0", "path": "/extension/-"}
    return [first, *[copy] * times]


async def patch(client: httpx.AsyncClient, url: str, document: Any) -> httpx.Response:
    return await client.patch(url, json=document, headers={"content-type": PATCH_JSON})


async def test_copies_beyond_the_body_limit_are_413(client: httpx.AsyncClient) -> None:
    patient = await create(client, f.patient())
    url = f"/{reference(patient)}"
    response = await patch(client, url, copies("x" * 20_000, 10))
    assert response.status_code == 413, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert (await client.get(url)).json() == patient


async def test_an_add_that_makes_the_resource_too_large_is_413(
    client: httpx.AsyncClient,
) -> None:
    patient = await create(client, f.patient() | {"extension": [extension("x" * 40_000)]})
    url = f"/{reference(patient)}"
    document = [{"op": "add", "path": "/extension/-", "value": extension("y" * 30_000)}]
    response = await patch(client, url, document)
    assert response.status_code == 413, response.text
    assert (await client.get(url)).json() == patient


async def test_a_patch_within_the_limit_still_applies(client: httpx.AsyncClient) -> None:
    patient = await create(client, f.patient())
    response = await patch(client, f"/{reference(patient)}", copies("x" * 10_000, 4))
    assert response.status_code == 200, response.text
    assert len(response.json()["extension"]) == 5


async def test_a_transaction_patch_entry_beyond_the_limit_is_413(
    client: httpx.AsyncClient,
) -> None:
    patient = await create(client, f.patient())
    entry = f.entry(
        method="PATCH", url=reference(patient), resource=json_patch(copies("x" * 10_000, 10))
    )
    response = await post_bundle(client, f.bundle(entries=[entry]))
    assert response.status_code == 413, response.text
    assert (await client.get(f"/{reference(patient)}")).json() == patient


def test_copies_stop_before_the_resource_is_built() -> None:
    """400 copies of 1 MB would make 400 MB; the patch stops at the first copy over 5 MB."""
    patcher = json_patcher("Patient", "p", copies("x" * 1_000_000, 400), 5 * 1024 * 1024)
    current = {"resourceType": "Patient", "id": "p"}
    with pytest.raises(PayloadTooLarge):
        patcher(current)
    assert current == {"resourceType": "Patient", "id": "p"}


async def test_a_refused_patch_names_the_operation_and_never_the_values(
    client: httpx.AsyncClient,
) -> None:
    child = await create(client, f.patient(family="Quietly-Private"))
    url = f"/{reference(child)}"
    cases = [
        [{"op": "test", "path": "/name/0/family", "value": "Someone-Else"}],
        [{"op": "remove", "path": "/name/0/prefix"}],
        [{"op": "replace", "path": "/name/7/family", "value": "X"}],
    ]
    for operations in cases:
        refused = await patch(client, url, operations)
        assert refused.status_code == 422, refused.text
        text = refused.json()["issue"][0]["diagnostics"]
        assert "patch operation 0" in text and operations[0]["path"] in text
        assert "Quietly-Private" not in text and "Amy" not in text and "class" not in text
