"""Data to read (a Patient and Flags on it, made through the API), and a check of each scenario."""

import httpx
import orjson

from bench.process import Server
from bench.scenario import Scenario
from bench.server import FHIR_JSON
from tests import factories

HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}


def _create(client: httpx.Client, resource: dict[str, object]) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", content=orjson.dumps(resource))
    if response.status_code != 201:
        raise RuntimeError(f"seeding failed: {response.status_code} {response.text[:300]}")
    logical_id: str = response.json()["id"]
    return logical_id


def seed(server: Server, flags: int) -> tuple[bytes, list[str]]:
    """Create a Patient, a council and `flags` safeguarding Flags the council raised on the
    Patient (as the bench client); a Flag body to create and the Flags' paths."""
    with httpx.Client(
        base_url=server.url, headers=HEADERS, auth=server.auth, timeout=10.0
    ) as client:
        patient = _create(client, factories.patient(nhs=factories.nhs_number(1)))
        council = _create(client, factories.organization(name="Bench County Council"))
        body = factories.safeguarding_flag(
            subject=f"Patient/{patient}",
            author=f"Organization/{council}",
            code="836881000000105",
            display="Child is cause for safeguarding concern",
        )  # a kind a child may have several of at once
        ids = [_create(client, body) for _ in range(flags)]
    return orjson.dumps(body), [f"/fhir/Flag/{logical_id}" for logical_id in ids]


def check(server: Server, scenario: Scenario) -> int:
    """Send one request of the scenario (with the bench client's token unless it is sent
    without); its response size, or an error if the status is wrong."""
    auth = server.auth if scenario.authenticated else None
    with httpx.Client(base_url=server.url, headers=HEADERS, auth=auth, timeout=10.0) as client:
        response = client.request(scenario.method, scenario.paths[0], content=scenario.body)
    if response.status_code != scenario.status:
        raise RuntimeError(
            f"{scenario.label}: expected {scenario.status}, got {response.status_code} "
            f"{response.text[:300]}"
        )
    return len(response.content)
