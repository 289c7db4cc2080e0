"""The OperationDefinition of $safeguarding-summary: served read-only at the URL the
CapabilityStatement names, a valid R4 resource describing the operation."""

import httpx
from fhir.resources.R4B.operationdefinition import OperationDefinition

from tests.http import outcome_expressions


async def test_the_summary_definition_is_read_at_the_url_metadata_names(
    client: httpx.AsyncClient,
) -> None:
    statement = (await client.get("/metadata")).json()
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    url = patient["operation"][0]["definition"]
    response = await client.get(f"/OperationDefinition/{url.rsplit('/', 1)[1]}")
    assert response.status_code == 200, response.text
    definition = response.json()
    OperationDefinition.model_validate(definition)
    assert definition["url"] == url
    assert (definition["code"], definition["resource"]) == ("safeguarding-summary", ["Patient"])
    assert (definition["type"], definition["instance"], definition["system"]) == (True, True, False)
    assert {p["name"] for p in definition["parameter"]} == {"identifier", "return"}
    assert "household-risk" in definition["description"]


async def test_unknown_definitions_are_404_and_writes_405(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/OperationDefinition/Patient-everything")
    assert unknown.status_code == 404
    assert unknown.json()["resourceType"] == "OperationOutcome"
    written = await client.put("/OperationDefinition/Patient-safeguarding-summary", json={})
    assert written.status_code == 405
    assert written.headers["allow"] == "GET, HEAD"
    assert outcome_expressions(written) == []
