"""What the `$safeguarding-summary` tests share: the URL, reading the Bundle, its members
and its warnings by code."""

from typing import Any

import httpx

WARNINGS = "safeguarding-summary-warning"


def summary_url(patient: dict[str, Any]) -> str:
    return f"/Patient/{patient['id']}/$safeguarding-summary"


async def summarise(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = response.json()
    return body


def members(bundle: dict[str, Any], resource_type: str) -> set[str]:
    """Ids of the entries of one type."""
    return {
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e["resource"]["resourceType"] == resource_type
    }


def warnings(bundle: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The outcome's warning issues by their code."""
    outcome = bundle.get("entry", [])[-1]["resource"]
    assert outcome["resourceType"] == "OperationOutcome"
    found: dict[str, list[dict[str, Any]]] = {}
    for issue in outcome["issue"]:
        if issue["severity"] == "warning":
            coding = issue["details"]["coding"][0]
            assert coding["system"].endswith(f"/CodeSystem/{WARNINGS}")
            found.setdefault(coding["code"], []).append(issue)
    return found


def entry_of(bundle: dict[str, Any], expression: str) -> dict[str, Any]:
    """The resource a `Bundle.entry[n].resource` expression points at."""
    index = int(expression.removeprefix("Bundle.entry[").split("]", 1)[0])
    resource: dict[str, Any] = bundle.get("entry", [])[index]["resource"]
    return resource
