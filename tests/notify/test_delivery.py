"""Delivery to a rest-hook endpoint: the handshake that activates a Subscription, numbered
events in order, a heartbeat, retries after failures until the status is error, redirects
refused, and full-resource content no richer than the authority may read."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests import factories as f
from tests.notify.receiver import event_numbers, receiving
from tests.notify.world import (
    FLAG_RECORDED,
    World,
    child,
    concerns,
    events,
    post,
    subscribe,
    world,
)


@pytest.fixture
async def here(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[World]:
    async with world(app, client) as made:
        yield made


async def _status(here: World, organisation: str, subscription: str) -> dict[str, Any]:
    response = await here[organisation].get(f"/Subscription/{subscription}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_handshake_activates_then_events_arrive_numbered_in_order(here: World) -> None:
    with receiving() as receiver:
        made = await subscribe(here["la-a"], FLAG_RECORDED, endpoint=receiver.url, max_count=2)
        assert (await _status(here, "la-a", made))["status"] == "requested"
        await here.notify()
        assert receiver.kinds() == ["handshake"]
        assert (await _status(here, "la-a", made))["status"] == "active"
        kid = await post(here.system, child(nhs=f.nhs_number(601), authorities=("la-a",)))
        await concerns(here["hosp"], kid, "hosp", 5)
        for _ in range(4):
            await here.notify()
        assert receiver.numbers() == [1, 2, 3, 4, 5]
        assert receiver.kinds() == ["handshake", *["event-notification"] * 3]  # 2, 2, 1
        assert receiver.headers[-1]["Content-Type"] == "application/fhir+json"
        entries = receiver.bundles[1].get("entry", [])
        assert entries[0]["request"]["url"].endswith(f"/Subscription/{made}/$status")
        assert all("resource" not in entry for entry in entries[1:])  # id-only


async def test_an_endpoint_that_fails_is_retried_then_the_status_is_error(
    here: World, settings: Any
) -> None:
    with receiving() as receiver:
        made = await subscribe(here["la-a"], FLAG_RECORDED, endpoint=receiver.url)
        receiver.answers = [500] * settings.notify_max_failures
        for _ in range(settings.notify_max_failures):
            await _due_now(here, made)
            await here.notify()
        assert receiver.bundles == []
        status = await _status(here, "la-a", made)
        assert status["status"] == "error"
        assert "500" in status["error"]
        kid = await post(here.system, child(nhs=f.nhs_number(602), authorities=("la-a",)))
        await concerns(here["hosp"], kid, "hosp", 2)
        await here.notify()
        assert receiver.bundles == []  # no more POSTs in error
        assert [e["number"] for e in await events(here["la-a"], made)] == [1, 2]  # still kept
        # asking again restarts delivery: handshake, then what was missed
        asked = await _status(here, "la-a", made) | {"status": "requested"}
        response = await here["la-a"].put(f"/Subscription/{made}", json=asked)
        assert response.status_code == 200, response.text
        await here.notify()
        await here.notify()
        assert receiver.kinds() == ["handshake", "event-notification"]
        assert receiver.numbers() == [1, 2]


async def test_a_failed_post_is_retried_after_a_growing_back_off(
    here: World, settings: Any
) -> None:
    with receiving() as receiver:
        made = await subscribe(here["la-a"], FLAG_RECORDED, endpoint=receiver.url)
        receiver.answers = [503, 503]
        delays = []
        for _ in range(2):
            await _due_now(here, made)
            await here.notify()
            delays.append(await _retry_in(here, made))
        first = settings.notify_retry_seconds  # then doubling, each times 0.5 to 1 (jitter)
        assert first * 0.5 - 0.2 <= delays[0] <= first + 0.2
        assert first - 0.2 <= delays[1] <= first * 2 + 0.2
        await _due_now(here, made)
        await here.notify()
        assert receiver.kinds() == ["handshake"]


async def test_a_redirect_is_never_followed(here: World) -> None:
    with receiving() as receiver:
        made = await subscribe(here["la-a"], FLAG_RECORDED, endpoint=receiver.url)
        receiver.answers = [307]
        await here.notify()
        assert receiver.bundles == []
        assert (await _status(here, "la-a", made))["status"] == "requested"
        assert await _retry_in(here, made) > 0


async def test_a_heartbeat_is_sent_when_the_period_passes_quietly(here: World) -> None:
    with receiving() as receiver:
        made = await subscribe(here["la-a"], FLAG_RECORDED, endpoint=receiver.url, heartbeat=1)
        await here.notify()
        await here.notify()
        assert receiver.kinds() == ["handshake"]  # within the period
        await _quiet_since(here, made, seconds=2)
        await here.notify()
        assert receiver.kinds() == ["handshake", "heartbeat"]


async def test_full_resource_notifications_carry_what_the_authority_may_read(here: World) -> None:
    with receiving() as receiver:
        await subscribe(here["la-a"], FLAG_RECORDED, endpoint=receiver.url, content="full-resource")
        await here.notify()
        kid = await post(here.system, child(nhs=f.nhs_number(603), authorities=("la-a",)))
        [flag] = await concerns(here["hosp"], kid, "hosp", 1)
        await here.notify()
        assert receiver.kinds() == ["handshake", "event-notification"]
        bundle = receiver.bundles[1]
        assert event_numbers(bundle) == [1]
        [focus] = bundle.get("entry", [])[1:]
        assert focus["resource"]["id"] == flag["id"]


async def _due_now(here: World, subscription: str) -> None:
    await _set(here, subscription, "next_attempt_at = 0")


async def _quiet_since(here: World, subscription: str, seconds: int) -> None:
    from app.clock import now_micros

    await _set(here, subscription, f"last_sent_at = {now_micros() - seconds * 1_000_000}")


async def _retry_in(here: World, subscription: str) -> float:
    from app.clock import now_micros
    from tests.conftest import database

    async with database(here.app).reader() as conn:
        row = await conn.fetchrow(
            "SELECT s.next_attempt_at FROM subscription_state s WHERE s.logical_id = $1",
            subscription,
        )
    assert row is not None
    return (int(row[0]) - now_micros()) / 1e6


async def _set(here: World, subscription: str, assignment: str) -> None:
    from tests.conftest import database

    async with database(here.app).transaction() as conn:
        await conn.execute(
            f"UPDATE subscription_state SET {assignment} WHERE logical_id = $1", subscription
        )


async def test_an_authority_that_lost_a_child_is_told_but_not_shown_the_child(
    here: World,
) -> None:
    from tests.notify.world import RESPONSIBILITY, put

    with receiving() as old, receiving() as new:
        for http, receiver in ((here["la-a"], old), (here["la-b"], new)):
            await subscribe(http, RESPONSIBILITY, endpoint=receiver.url, content="full-resource")
        await here.notify()
        kid = await post(here.system, child(nhs=f.nhs_number(604), authorities=("la-a",)))
        moved = child(nhs=f.nhs_number(604), authorities=("la-b",)) | {"id": kid["id"]}
        await put(here.system, moved)
        await here.notify()
        told_old, told_new = old.bundles[-1], new.bundles[-1]
        assert event_numbers(told_old)[-1] == 2  # la-a made responsible, then not
        assert event_numbers(told_new) == [1]
        [entry_old] = told_old.get("entry", [])[1:]
        [entry_new] = told_new.get("entry", [])[1:]
        assert entry_old["fullUrl"] == entry_new["fullUrl"]  # the child, by reference
        assert "resource" not in entry_old  # la-a may no longer read the child
        assert entry_new["resource"]["id"] == kid["id"]
