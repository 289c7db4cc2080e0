"""Resources a transaction creates together are stored, versioned and indexed exactly as
single creates are: every kind of search finds them, and history lists them."""

import httpx
import orjson

from tests import factories as f

BASE = "http://test/fhir"
CHILD = "urn:uuid:5b0f3c1e-7a2d-4c8e-9f61-0d3b2a4c6e58"


async def test_created_together_resources_are_found_by_every_index(
    client: httpx.AsyncClient,
) -> None:
    flags = [f.flag(subject=CHILD, identifier=f"T-{n}") for n in range(3)]
    entries = [
        f.entry(method="POST", url="Patient", full_url=CHILD, resource=f.patient()),
        *(f.entry(method="POST", url="Flag", resource=flag) for flag in flags),
        f.entry(method="POST", url="Condition", resource=f.condition(subject=CHILD)),
    ]
    response = await client.post(
        BASE,
        content=orjson.dumps(f.bundle(entries=entries)),
        headers={"content-type": "application/fhir+json"},
    )
    assert response.status_code == 200, response.text
    child_id = response.json().get("entry", [])[0]["response"]["location"].split("/")[1]
    queries = {
        "Flag?identifier=https://example.org/flags|T-1": 1,  # token
        f"Flag?patient={child_id}": 3,  # reference
        "Flag?code:text=uses a wheel": 3,  # string
        "Flag?date=sa2025-12-31": 3,  # date
        f"Condition?subject=Patient/{child_id}&code=14760008": 1,
        f"Patient?_id={child_id}&_revinclude=Flag:patient": 1,
    }
    for query, matches in queries.items():
        found = (await client.get(f"/{query}")).json()
        got = [e for e in found.get("entry", []) if e["search"]["mode"] == "match"]
        assert len(got) == matches, (query, found)
    history = (await client.get("/_history", params={"_count": "50"})).json()
    assert len(history.get("entry", [])) == 5
    assert {e["request"]["method"] for e in history.get("entry", [])} == {"POST"}
