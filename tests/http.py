"""Small HTTP helpers shared by the tests."""

from typing import Any

import httpx

FHIR_JSON = "application/fhir+json"


async def create(
    client: httpx.AsyncClient, resource: dict[str, Any], **headers: str
) -> dict[str, Any]:
    """POST a resource, assert it was created, return the stored resource."""
    response = await client.post(
        f"/{resource['resourceType']}",
        json=resource,
        headers={"content-type": FHIR_JSON, **headers},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def reference(resource: dict[str, Any]) -> str:
    """`Type/id` of a stored resource."""
    return f"{resource['resourceType']}/{resource['id']}"


def outcome_expressions(response: httpx.Response) -> list[str]:
    """Every issue.expression of an OperationOutcome response."""
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return [e for issue in body["issue"] for e in issue.get("expression", [])]
