"""Subscriptions as a resource: who may write one, what a topic and a channel must be (the
endpoint allow-list), and that one authority can neither see nor poll another's."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests import factories as f
from tests.http import FHIR_JSON
from tests.notify.receiver import event_numbers
from tests.notify.world import (
    FLAG_RECORDED,
    TOPICS,
    World,
    child,
    concerns,
    numbers_polled,
    post,
    subscribe,
    world,
)


@pytest.fixture
async def here(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[World]:
    async with world(app, client) as made:
        yield made


async def _refusal(client: httpx.AsyncClient, resource: dict[str, Any]) -> tuple[int, list[Any]]:
    response = await client.post(
        "/Subscription", json=resource, headers={"content-type": FHIR_JSON}
    )
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return response.status_code, [issue.get("expression") for issue in body["issue"]]


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://evil.example.com/fhir",  # not on the list
        "http://hooks.example.gov.uk/fhir",  # listed for https only
        "https://hooks.example.gov.uk/other",  # outside the listed path
        "https://10.0.0.1/fhir",  # a private address
        "https://169.254.169.254/latest",  # the cloud metadata address
        "ftp://hooks.example.gov.uk/fhir",
        "https://user:secret@hooks.example.gov.uk/fhir",
        "not a url",
    ],
)
async def test_an_endpoint_off_the_allow_list_is_refused_with_422(
    here: World, endpoint: str
) -> None:
    resource = f.subscription(topic=FLAG_RECORDED, endpoint=endpoint)
    status, where = await _refusal(here["la-a"], resource)
    assert (status, where) == (422, [["Subscription.channel.endpoint"]])
    found = await here.system.get("/Subscription")
    assert found.json().get("total") == 0  # nothing half-written


async def test_an_endpoint_on_the_allow_list_is_accepted_and_held_requested(here: World) -> None:
    resource = f.subscription(topic=FLAG_RECORDED, endpoint="https://hooks.example.gov.uk/fhir/in")
    made = await post(here["la-a"], resource | {"status": "active"})
    assert made["status"] == "requested"  # the notifier activates it after the handshake
    assert made["meta"]["source"].endswith("/clients/ntf-la-a")


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"criteria": "Flag?status=active"}, "Subscription.criteria"),
        ({"criteria": "http://test/fhir/SubscriptionTopic/nothing"}, "Subscription.criteria"),
        ({"channel": {"type": "websocket"}}, "Subscription.channel.type"),
        (
            {"channel": {"type": "rest-hook", "payload": "application/xml"}},
            "Subscription.channel.payload",
        ),
        (
            {"channel": {"type": "rest-hook", "header": ["no colon here"]}},
            "Subscription.channel.header",
        ),
    ],
)
async def test_a_topic_or_channel_not_served_is_refused_with_422(
    here: World, change: dict[str, Any], where: str
) -> None:
    status, expressions = await _refusal(here["la-a"], f.subscription(topic=FLAG_RECORDED) | change)
    assert status == 422
    assert [where] in expressions


async def test_only_authorities_and_system_clients_write_subscriptions(here: World) -> None:
    status, _ = await _refusal(here["hosp"], f.subscription(topic=FLAG_RECORDED))
    assert status == 403
    await subscribe(here.system, FLAG_RECORDED)


async def test_an_authority_cannot_see_poll_or_change_another_authoritys_subscription(
    here: World,
) -> None:
    mine = await subscribe(here["la-a"], FLAG_RECORDED)
    kid = await post(here.system, child(nhs=f.nhs_number(701), authorities=("la-a",)))
    await post(
        here["hosp"],
        f.safeguarding_flag(subject=f"Patient/{kid['id']}", author="Organization/hosp"),
    )
    await here.notify()
    assert (await here["la-a"].get(f"/Subscription/{mine}/$events")).status_code == 200
    for other in ("la-b", "hosp", "gp"):
        http = here[other]
        for path in ("", "/$status", "/$events", "/_history", "/_history/1"):
            response = await http.get(f"/Subscription/{mine}{path}")
            assert response.status_code == 404, (other, path, response.text)
        listed = await http.get("/Subscription", params={"_id": mine})
        assert listed.json().get("total") == 0, other
        history = (await http.get("/_history", params={"_type": "Subscription"})).json()
        assert history.get("entry", []) == [], other
        changed = await http.put(
            f"/Subscription/{mine}", json=f.subscription(topic=FLAG_RECORDED) | {"id": mine}
        )
        assert changed.status_code in (403, 404), (other, changed.text)
        gone = await http.delete(f"/Subscription/{mine}")
        assert gone.status_code in (403, 404), (other, gone.text)
    assert (await here["la-a"].get(f"/Subscription/{mine}")).status_code == 200


async def test_status_reports_the_state_and_events_since_start(here: World) -> None:
    made = {topic: await subscribe(here["la-a"], topic) for topic in TOPICS}
    kid = await post(here.system, child(nhs=f.nhs_number(702), authorities=("la-a",)))
    await concerns(here["hosp"], kid, "hosp", 3)
    await here.notify()
    response = await here["la-a"].get(f"/Subscription/{made[FLAG_RECORDED]}/$status")
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset"
    status = {p["name"]: p for p in bundle.get("entry", [])[0]["resource"]["parameter"]}
    assert status["status"]["valueCode"] == "active"  # no endpoint: active at once
    assert status["type"]["valueCode"] == "query-status"
    assert status["events-since-subscription-start"]["valueString"] == "3"
    assert status["topic"]["valueCanonical"] == FLAG_RECORDED


async def test_events_pages_by_number_each_event_once(here: World) -> None:
    made = await subscribe(here["la-a"], FLAG_RECORDED)
    kid = await post(here.system, child(nhs=f.nhs_number(703), authorities=("la-a",)))
    await concerns(here["hosp"], kid, "hosp", 7)
    await here.notify()
    seen = await numbers_polled(here["la-a"], made, page=3)
    assert seen == [1, 2, 3, 4, 5, 6, 7]
    until = await here["la-a"].get(
        f"/Subscription/{made}/$events", params={"eventsSinceNumber": 2, "eventsUntilNumber": 3}
    )
    assert event_numbers(until.json()) == [2, 3]
    bad = await here["la-a"].get(
        f"/Subscription/{made}/$events", params={"eventsSinceNumber": "-1"}
    )
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["eventsSinceNumber"]
