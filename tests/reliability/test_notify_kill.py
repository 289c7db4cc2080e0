"""kill -9 of the server while its notifier delivers: after a restart the receiver (a small
HTTP server here) ends up with every event, in order of number, duplicates only as the same
event under the same number; `$events` still gives every one exactly once."""

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import httpx

from tests import factories as f
from tests.notify.receiver import Receiver, receiving
from tests.notify.world import numbers_polled
from tests.reliability.conftest import backend_of, report, scaled
from tests.reliability.server import Server

FHIR_JSON = "application/fhir+json"
CONCERN = "836881000000105"  # a safeguarding concern: a child may have many active at once
PER_BUNDLE = 5  # events per notification: many POSTs, so the kill lands mid-way
DEADLINE = 90.0  # seconds for every event to arrive after the restart


def _focus_by_number(receiver: Receiver) -> dict[int, set[str]]:
    """Each event number received, with every focus it came with (one, if redelivered the same)."""
    found: dict[int, set[str]] = {}
    for bundle in receiver.bundles:
        parameters = bundle.get("entry", [])[0]["resource"]["parameter"]
        for event in (p for p in parameters if p["name"] == "notification-event"):
            parts = {part["name"]: part for part in event["part"]}
            number = int(parts["event-number"]["valueString"])
            found.setdefault(number, set()).add(parts["focus"]["valueReference"]["reference"])
    return found


async def _world(server: Server, http: httpx.AsyncClient, endpoint: str) -> tuple[str, str]:
    """An authority subscribed (rest-hook to `endpoint`), a hospital, and a child the
    authority is responsible for: (child id, Subscription id)."""
    for org in ("la-k", "hosp-k"):
        body = f.organization(name=org, ods=org.upper()) | {"id": org}
        assert (await http.put(f"/Organization/{org}", json=body)).status_code in (200, 201)
    extension = {
        "url": f"{server.base_url}/StructureDefinition/responsible-local-authority",
        "valueReference": {"reference": "Organization/la-k"},
    }
    child = await http.post(
        "/Patient", json=f.patient(nhs=f.nhs_number(900)) | {"extension": [extension]}
    )
    assert child.status_code == 201, child.text
    authority = server.bearer_of("kill-la", "Organization/la-k", "local-authority")
    topic = f"{server.base_url}/SubscriptionTopic/flag-recorded-elsewhere"
    made = await http.post(
        "/Subscription",
        json=f.subscription(topic=topic, endpoint=endpoint, max_count=PER_BUNDLE),
        headers=authority,
    )
    assert made.status_code == 201, made.text
    return str(child.json()["id"]), str(made.json()["id"])


async def _flags(http: httpx.AsyncClient, child: str, count: int) -> None:
    """`count` safeguarding Flags the hospital raises about the child, in transactions of 50."""
    flag = f.safeguarding_flag(
        subject=f"Patient/{child}", author="Organization/hosp-k", code=CONCERN
    )
    for start in range(0, count, 50):
        entries = [
            {"resource": flag, "request": {"method": "POST", "url": "Flag"}}
            for _ in range(min(50, count - start))
        ]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        response = await http.post(str(http.base_url).rstrip("/"), json=bundle)
        assert response.status_code == 200, response.text


async def _until(condition: Any, deadline: float, server: Server) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, server.log_tail()
        await asyncio.sleep(0.05)


async def test_every_event_reaches_the_receiver_through_a_kill_9(
    database_url: str, tmp_path: Path
) -> None:
    events = scaled(200, 1000)
    env = {
        "SAFEGUARD_SUBSCRIPTION_ENDPOINTS": "http://127.0.0.1:*",
        "SAFEGUARD_SUBSCRIPTION_PRIVATE_NETWORKS": "127.0.0.0/8",
        "SAFEGUARD_NOTIFY_INTERVAL_SECONDS": "0.05",
        "SAFEGUARD_NOTIFY_TIMEOUT_SECONDS": "2",
        "SAFEGUARD_NOTIFY_RETRY_SECONDS": "0.2",
        "SAFEGUARD_NOTIFY_RETRY_MAX_SECONDS": "1",
    }
    server = Server(database_url, tmp_path / "server.log", **env)
    with receiving(delay=0.05) as receiver:
        try:
            await server.start()
            headers = {**server.bearer(), "content-type": FHIR_JSON}
            async with httpx.AsyncClient(
                base_url=server.base_url, headers=headers, timeout=30
            ) as http:
                child, subscription = await _world(server, http, receiver.url)
                await _until(lambda: receiver.kinds()[:1] == ["handshake"], 30, server)
                await _flags(http, child, events)
                # killed while a POST is unanswered: those events were sent, not recorded
                await _until(
                    lambda: len(receiver.numbers()) >= events // 5 and receiver.in_flight > 0,
                    60,
                    server,
                )
                server.kill()
                at_kill = len(set(receiver.numbers()))
                await server.start()
                await _until(
                    lambda: set(receiver.numbers()) >= set(range(1, events + 1)), DEADLINE, server
                )
                authority = server.bearer_of("kill-la", "Organization/la-k", "local-authority")
                polled = await numbers_polled(http, subscription, 100, **authority)
        finally:
            server.stop()
    received = receiver.numbers()
    focus = _focus_by_number(receiver)
    report(
        f"notifier kill-9 ({backend_of(database_url)})",
        events=events,
        distinct_at_kill=at_kill,
        received=len(received),
        duplicates=len(received) - len(set(received)),
    )
    assert set(received) == set(range(1, events + 1))
    assert len(received) > len(set(received))  # the unanswered POST was sent again
    assert all(len(found) == 1 for found in focus.values())  # a repeat is the same event
    # numbers rise, but where the restart sends again what the killed process had sent
    # without recording it: one step back, from which they rise again
    assert sum(b <= a for a, b in itertools.pairwise(received)) <= 1
    assert polled == list(range(1, events + 1))
