"""A small world for the notification tests: two local authorities, a hospital and a GP
(each an Organization with a client of its role), a child, Subscriptions, the notifier's
passes run on demand, and `$events` read back."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from app.flags.codes import vocabulary
from app.notify.worker import Notifier
from tests import factories as f
from tests.conftest import BASE, app_context
from tests.http import FHIR_JSON
from tests.notify.receiver import event_numbers
from tests.tokens import bearer

TOPIC = f"{BASE}/SubscriptionTopic"
FLAG_RECORDED = f"{TOPIC}/flag-recorded-elsewhere"
CHILD_SEEN = f"{TOPIC}/child-seen-elsewhere"
RESPONSIBILITY = f"{TOPIC}/responsibility-changed"
TOPICS = (FLAG_RECORDED, CHILD_SEEN, RESPONSIBILITY)
REMOVAL = vocabulary(BASE).removal_reason_extension
REASON = f"{vocabulary(BASE).removal_reason_system}|no-longer-applicable"


@dataclass
class World:
    """Clients by organisation id, the system client, and the app."""

    app: FastAPI
    system: httpx.AsyncClient
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    def __getitem__(self, organisation: str) -> httpx.AsyncClient:
        return self.clients[organisation]

    def notifier(self) -> Notifier:
        """A notifier over the app's database (the suite runs none in the background)."""
        context = app_context(self.app)
        return Notifier(context.store, context.settings, context.base, context.vocabulary)

    async def notify(self) -> int:
        """One notifier pass: number what the outbox holds, deliver what is due."""
        notifier = self.notifier()
        try:
            return await notifier.run_once()
        finally:
            await notifier.close()


ROLES = {"la-a": "local-authority", "la-b": "local-authority", "hosp": "health", "gp": "health"}


@asynccontextmanager
async def world(app: FastAPI, system: httpx.AsyncClient) -> AsyncIterator[World]:
    """Organizations la-a, la-b (authorities), hosp and gp (health), each with a client."""
    found = World(app, system)
    async with AsyncExitStack() as stack:
        for org, role in ROLES.items():
            await put(system, f.organization(name=org, ods=org.upper()) | {"id": org})
            headers = await bearer(app, f"ntf-{org}", role=role, organisation=f"Organization/{org}")
            transport = httpx.ASGITransport(app=app)
            http = httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers)
            found.clients[org] = await stack.enter_async_context(http)
        yield found


async def put(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    """Create or update a resource by its id."""
    url = f"/{resource['resourceType']}/{resource['id']}"
    response = await client.put(url, json=resource, headers={"content-type": FHIR_JSON})
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def post(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    """Create a resource; its stored form."""
    response = await client.post(
        f"/{resource['resourceType']}", json=resource, headers={"content-type": FHIR_JSON}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def child(*, nhs: str, authorities: tuple[str, ...] = ()) -> dict[str, Any]:
    """A child whose responsible local authorities are `authorities` (Organization ids)."""
    url = vocabulary(BASE).responsible_local_authority_extension
    extensions = [
        {"url": url, "valueReference": {"reference": f"Organization/{org}"}} for org in authorities
    ]
    return f.patient(nhs=nhs) | ({"extension": extensions} if extensions else {})


async def subscribe(client: httpx.AsyncClient, topic: str, **options: Any) -> str:
    """A Subscription of the client's organisation to `topic`; its id."""
    made = await post(client, f.subscription(topic=topic, **options))
    return str(made["id"])


async def events(
    client: httpx.AsyncClient, subscription: str, since: int = 1
) -> list[dict[str, Any]]:
    """The Subscription's events from number `since`, each as {number, topic, focus,
    action, organization, nhs, context}, read with `$events`."""
    response = await client.get(
        f"/Subscription/{subscription}/$events", params={"eventsSinceNumber": str(since)}
    )
    assert response.status_code == 200, response.text
    return [
        _event(p)
        for p in _parameters(response.json())["parameter"]
        if p["name"] == "notification-event"
    ]


def _parameters(bundle: dict[str, Any]) -> dict[str, Any]:
    assert bundle["type"] == "history"
    first: dict[str, Any] = bundle.get("entry", [])[0]["resource"]
    assert first["resourceType"] == "Parameters"
    return first


def _event(parameter: dict[str, Any]) -> dict[str, Any]:
    parts = {p["name"]: p for p in parameter["part"]}
    said = parameter["extension"][0]["extension"]
    cause = {e["url"]: e for e in said}
    context = [p["valueReference"] for p in parameter["part"] if p["name"] == "additional-context"]
    nhs = next((c["identifier"]["value"] for c in context if "identifier" in c), None)
    return {
        "number": int(parts["event-number"]["valueString"]),
        "topic": cause["topic"]["valueCode"],
        "focus": parts["focus"]["valueReference"]["reference"].removeprefix(BASE + "/"),
        "action": cause.get("action", {}).get("valueCode"),
        "organization": cause.get("organization", {}).get("valueReference", {}).get("reference"),
        "before": sorted(e["valueReference"]["reference"] for e in said if e["url"] == "before"),
        "after": sorted(e["valueReference"]["reference"] for e in said if e["url"] == "after"),
        "nhs": nhs,
        "context": [c["reference"].removeprefix(BASE + "/") for c in context],
    }


CONCERN = "836881000000105"  # a safeguarding concern: a child may have many active at once


async def concerns(
    client: httpx.AsyncClient, kid: dict[str, Any], author: str, count: int
) -> list[dict[str, Any]]:
    """`count` safeguarding-concern Flags `author` (an Organization id) raises about `kid`."""
    flag = f.safeguarding_flag(
        subject=f"Patient/{kid['id']}", author=f"Organization/{author}", code=CONCERN
    )
    return [await post(client, flag) for _ in range(count)]


async def numbers_polled(
    client: httpx.AsyncClient, subscription: str, page: int, **headers: str
) -> list[int]:
    """Every event number `$events` gives, `page` at a time, each page from the last + 1."""
    numbers: list[int] = []
    while True:
        response = await client.get(
            f"/Subscription/{subscription}/$events",
            params={"eventsSinceNumber": str(numbers[-1] + 1 if numbers else 1), "_count": page},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        found = event_numbers(response.json())
        if not found:
            return numbers
        numbers += found
