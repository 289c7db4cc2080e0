"""Query parameters a write gives no meaning to: a warning, or 400 under Prefer: handling=strict.

A create's condition belongs in If-None-Exist; `POST Organization?identifier=...` must not pass
for a conditional create and silently make a second Organization.
"""

import httpx

from tests import factories as f
from tests.http import FHIR_JSON, create, outcome_expressions, reference

STRICT = {"content-type": FHIR_JSON, "prefer": "handling=strict"}
OUTCOME = {"content-type": FHIR_JSON, "prefer": "return=OperationOutcome"}
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"


async def _organisations(client: httpx.AsyncClient) -> int:
    found = await client.get("/Organization", params={"_summary": "count"})
    total: int = found.json()["total"]
    return total


async def test_a_strict_create_with_query_parameters_is_400_and_writes_nothing(
    client: httpx.AsyncClient,
) -> None:
    url = f"/Organization?identifier={ODS}|X26&bogus=1"
    refused = await client.post(url, json=f.organization(ods="X26"), headers=STRICT)
    assert refused.status_code == 400, refused.text
    issues = refused.json()["issue"]
    assert [i["severity"] for i in issues] == ["error", "error"]
    assert outcome_expressions(refused) == ["identifier", "bogus"]
    assert "is refused (Prefer: handling=strict)" in issues[0]["diagnostics"]
    assert "If-None-Exist" in issues[0]["diagnostics"]
    assert await _organisations(client) == 0


async def test_a_lenient_create_warns_of_each_parameter_it_ignored(
    client: httpx.AsyncClient,
) -> None:
    url = f"/Organization?identifier={ODS}|X26&_pretty=true&_format=json"
    noted = await client.post(url, json=f.organization(ods="X26"), headers=OUTCOME)
    assert noted.status_code == 201, noted.text
    issues = noted.json()["issue"]
    assert [(i["severity"], i.get("expression")) for i in issues] == [
        ("information", None),
        ("warning", ["identifier"]),
    ]
    assert "was ignored" in issues[1]["diagnostics"]
    plain = await client.post(url, json=f.organization(ods="X27"))
    assert plain.status_code == 201 and plain.json()["resourceType"] == "Organization"
    assert await _organisations(client) == 2
    clean = await client.post("/Organization?_format=json", json=f.organization(), headers=OUTCOME)
    assert [i["severity"] for i in clean.json()["issue"]] == ["information"]


async def test_strict_update_patch_and_delete_refuse_query_parameters_untouched(
    client: httpx.AsyncClient,
) -> None:
    stored = await create(client, f.organization(ods="X28"))
    where = f"/{reference(stored)}?colour=blue"
    update = await client.put(where, json=stored | {"name": "Renamed"}, headers=STRICT)
    patch_headers = STRICT | {"content-type": "application/json-patch+json"}
    renaming = [{"op": "replace", "path": "/name", "value": "Renamed"}]
    patched = await client.patch(where, json=renaming, headers=patch_headers)
    deleted = await client.delete(where, headers=STRICT)
    for refused in (update, patched, deleted):
        assert refused.status_code == 400, refused.text
        assert outcome_expressions(refused) == ["colour"]
    current = await client.get(f"/{reference(stored)}")
    assert current.json()["meta"]["versionId"] == "1" and current.json()["name"] == stored["name"]
    lenient = await client.delete(where)
    assert [i["severity"] for i in lenient.json()["issue"]] == ["information", "warning"]
