"""Data to read (a Patient and Flags on it, made through the API), and a check of each scenario."""

import httpx
import orjson

from bench.auth import ORGANISATION, register_authority
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


# The local authority notifications reach: the bench client's own Organization, so that the
# Subscription the bench client makes is the authority's.
AUTHORITY = ORGANISATION.removeprefix("Organization/")


def seed_notified(server: Server, database_url: str) -> bytes:
    """A child for whom a local authority is responsible, the authority (an Organization with
    a local-authority client) subscribed to flag-recorded-elsewhere with no endpoint (its
    events held for $events, so the notifier numbers each one), and the body of a Flag another
    organisation raises about the child: each create of it writes one notification."""
    register_authority(database_url, "bench-authority-client", f"Organization/{AUTHORITY}")
    with httpx.Client(
        base_url=server.url, headers=HEADERS, auth=server.auth, timeout=10.0
    ) as client:
        authority = factories.organization(name="Bench Borough Council", ods="B0001")
        put = client.put(
            f"/fhir/Organization/{AUTHORITY}", content=orjson.dumps(authority | {"id": AUTHORITY})
        )
        if put.status_code not in (200, 201):
            raise RuntimeError(f"seeding failed: {put.status_code} {put.text[:300]}")
        extension = {
            "url": f"{server.url}/fhir/StructureDefinition/responsible-local-authority",
            "valueReference": {"reference": f"Organization/{AUTHORITY}"},
        }
        child = factories.patient(nhs=factories.nhs_number(2)) | {"extension": [extension]}
        patient = _create(client, child)
        hospital = _create(client, factories.organization(name="Bench Hospital", ods="RB001"))
        topic = f"{server.url}/fhir/SubscriptionTopic/flag-recorded-elsewhere"
        subscription = factories.subscription(topic=topic)
        made = client.post("/fhir/Subscription", content=orjson.dumps(subscription))
        if made.status_code != 201:
            raise RuntimeError(f"subscribing failed: {made.status_code} {made.text[:300]}")
        body = factories.safeguarding_flag(
            subject=f"Patient/{patient}",
            author=f"Organization/{hospital}",
            code="836881000000105",
            display="Child is cause for safeguarding concern",
        )
    return orjson.dumps(body)
