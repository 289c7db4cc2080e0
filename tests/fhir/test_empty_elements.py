"""FHIR JSON has no empty arrays or objects (http://hl7.org/fhir/R4/json.html): a resource sent
with some is stored without them, as a lenient parser reads it, on every write path, so none is
ever sent back (the suite's response walk, tests/wirecheck.py, checks every answer)."""

from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.http import FHIR_JSON, create, post_bundle, reference

JSON_PATCH = {"content-type": "application/json-patch+json"}


@pytest.mark.parametrize(
    ("elements", "kept"),
    [
        ({"identifier": []}, {}),
        ({"name": [{"family": "Smith", "given": []}]}, {"name": [{"family": "Smith"}]}),
        ({"name": [{}, {"family": "Jones"}]}, {"name": [{"family": "Jones"}]}),
        ({"maritalStatus": {"coding": [{}]}}, {}),
    ],
)
async def test_a_create_is_stored_without_its_empty_elements(
    client: httpx.AsyncClient, elements: dict[str, Any], kept: dict[str, Any]
) -> None:
    sent = {k: v for k, v in f.patient().items() if k != "name"} | elements
    created = await client.post("/Patient", json=sent, headers={"content-type": FHIR_JSON})
    assert created.status_code == 201, created.text
    stored = (await client.get(f"/Patient/{created.json()['id']}")).json()
    for name in ("identifier", "name", "maritalStatus"):
        assert stored.get(name) == kept.get(name), name


async def test_updates_patches_and_transaction_entries_drop_them_too(
    client: httpx.AsyncClient,
) -> None:
    stored = await create(client, f.patient())
    url = f"/{reference(stored)}"
    updated = await client.put(url, json=stored | {"telecom": [], "meta": {}})
    assert updated.status_code == 200 and "telecom" not in updated.json()
    emptied = [{"op": "replace", "path": "/name/0/given", "value": []}]
    patched = await client.patch(url, json=emptied, headers=JSON_PATCH)
    assert patched.status_code == 200 and patched.json()["name"] == [{"family": "Smith"}]
    entry = f.entry(method="POST", url="Patient", resource=f.patient() | {"address": [{}]})
    answered = await post_bundle(client, f.bundle(entries=[entry]))
    assert answered.status_code == 200, answered.text
    location = answered.json()["entry"][0]["response"]["location"]
    assert "address" not in (await client.get("/" + location.split("/_history")[0])).json()
