"""The three events, recorded in the outbox in the transaction of what caused them, numbered
for the Subscriptions of the authorities to tell, and read back with `$events`: each fires
where it should and stays quiet where it should not."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests import factories as f
from tests.conftest import BASE
from tests.http import FHIR_JSON
from tests.notify.world import (
    CHILD_SEEN,
    FLAG_RECORDED,
    REASON,
    REMOVAL,
    RESPONSIBILITY,
    World,
    child,
    events,
    post,
    put,
    subscribe,
    world,
)


@pytest.fixture
async def here(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[World]:
    async with world(app, client) as made:
        yield made


async def _subscribed(here: World, organisation: str) -> dict[str, str]:
    """A polling Subscription of `organisation` to each topic: topic URL -> id."""
    return {
        topic: await subscribe(here[organisation], topic)
        for topic in (FLAG_RECORDED, CHILD_SEEN, RESPONSIBILITY)
    }


async def _end(client: httpx.AsyncClient, flag: dict[str, object]) -> dict[str, object]:
    ended = f.safeguarding_flag(
        subject=str(flag["subject"]["reference"]),  # type: ignore[index]
        author=str(flag["author"]["reference"]),  # type: ignore[index]
        status="inactive",
        end="2026-06-01",
        removal=(REMOVAL, REASON),
    ) | {"id": flag["id"]}
    return await put(client, ended)


async def test_a_hospital_flag_tells_the_responsible_authority_with_the_child_named(
    here: World,
) -> None:
    a, b = await _subscribed(here, "la-a"), await _subscribed(here, "la-b")
    kid = await post(here.system, child(nhs=f.nhs_number(501), authorities=("la-a",)))
    await here.notify()  # the Patient's extension made la-a responsible
    assert [e["topic"] for e in await events(here["la-a"], a[RESPONSIBILITY])] == [
        "responsibility-changed"
    ]
    flag = await post(
        here["hosp"],
        f.safeguarding_flag(
            subject=f"Patient/{kid['id']}",
            author="Organization/hosp",
            code="836881000000105",
            display="Child is cause for safeguarding concern",
        ),
    )
    await here.notify()
    told = await events(here["la-a"], a[FLAG_RECORDED])
    assert [(e["number"], e["action"], e["organization"]) for e in told] == [
        (1, "created", "Organization/hosp")
    ]
    assert told[0]["focus"] == f"Flag/{flag['id']}/_history/1"
    assert told[0]["nhs"] == f.nhs_number(501)
    assert f"Patient/{kid['id']}" in told[0]["context"]
    assert await events(here["la-b"], b[FLAG_RECORDED]) == []  # not b's child
    # a hospital flag makes the hospital "responsible", but no local authority changed
    assert len(await events(here["la-a"], a[RESPONSIBILITY])) == 1


async def test_an_authority_recording_its_own_flag_tells_nobody(here: World) -> None:
    a = await _subscribed(here, "la-a")
    kid = await post(here.system, child(nhs=f.nhs_number(502), authorities=("la-a",)))
    await post(
        here["la-a"],
        f.safeguarding_flag(subject=f"Patient/{kid['id']}", author="Organization/la-a"),
    )
    await here.notify()
    assert await events(here["la-a"], a[FLAG_RECORDED]) == []
    assert len(await events(here["la-a"], a[RESPONSIBILITY])) == 1  # the Patient's only


async def test_another_authority_raising_and_ending_a_plan_tells_both_sides(here: World) -> None:
    a, b = await _subscribed(here, "la-a"), await _subscribed(here, "la-b")
    kid = await post(here.system, child(nhs=f.nhs_number(503), authorities=("la-a",)))
    subject = f"Patient/{kid['id']}"
    plan = await post(
        here["la-b"], f.safeguarding_flag(subject=subject, author="Organization/la-b")
    )
    await _end(here["la-b"], plan)
    await here.notify()
    recorded = await events(here["la-a"], a[FLAG_RECORDED])
    assert [(e["action"], e["organization"]) for e in recorded] == [
        ("created", "Organization/la-b"),
        ("ended", "Organization/la-b"),
    ]
    assert await events(here["la-b"], b[FLAG_RECORDED]) == []  # its own flag
    changes_a = await events(here["la-a"], a[RESPONSIBILITY])
    changes_b = await events(here["la-b"], b[RESPONSIBILITY])
    both = ["Organization/la-a", "Organization/la-b"]
    assert [(e["before"], e["after"]) for e in changes_a] == [
        ([], ["Organization/la-a"]),
        (["Organization/la-a"], both),
        (both, ["Organization/la-a"]),
    ]
    assert [(e["before"], e["after"]) for e in changes_b] == [
        (["Organization/la-a"], both),
        (both, ["Organization/la-a"]),
    ]


async def test_a_change_of_the_responsible_authority_tells_old_and_new(here: World) -> None:
    a, b = await _subscribed(here, "la-a"), await _subscribed(here, "la-b")
    kid = await post(here.system, child(nhs=f.nhs_number(504), authorities=("la-a",)))
    await put(here.system, child(nhs=f.nhs_number(504), authorities=("la-b",)) | {"id": kid["id"]})
    await put(here.system, child(nhs=f.nhs_number(504), authorities=("la-b",)) | {"id": kid["id"]})
    await here.notify()
    moved = (["Organization/la-a"], ["Organization/la-b"])
    assert [(e["before"], e["after"]) for e in await events(here["la-a"], a[RESPONSIBILITY])][
        -1
    ] == moved
    assert [(e["before"], e["after"]) for e in await events(here["la-b"], b[RESPONSIBILITY])] == [
        moved
    ]


async def test_a_health_service_looking_at_a_child_on_a_plan_tells_the_plans_author(
    here: World,
) -> None:
    a, b = await _subscribed(here, "la-a"), await _subscribed(here, "la-b")
    on_plan = await post(here.system, child(nhs=f.nhs_number(505), authorities=("la-a",)))
    plan = await post(
        here["la-b"],
        f.safeguarding_flag(subject=f"Patient/{on_plan['id']}", author="Organization/la-b"),
    )
    no_plan = await post(here.system, child(nhs=f.nhs_number(506), authorities=("la-a",)))
    await post(here["gp"], f.flag(subject=f"Patient/{no_plan['id']}", author="Organization/gp"))
    for kid in (on_plan, no_plan):
        summary = await here["hosp"].get(f"/Patient/{kid['id']}/$safeguarding-summary")
        assert summary.status_code == 200, summary.text
    assert (
        await here["gp"].get("/Flag", params={"subject": f"Patient/{on_plan['id']}"})
    ).status_code == 200
    # an authority looking is no CP-IS access, nor is a health client finding nothing
    assert (
        await here["la-a"].get(f"/Patient/{on_plan['id']}/$safeguarding-summary")
    ).status_code == 200
    await here.notify()
    seen = await events(here["la-b"], b[CHILD_SEEN])
    assert [(e["organization"], e["focus"]) for e in seen] == [
        ("Organization/hosp", f"Patient/{on_plan['id']}"),
        ("Organization/gp", f"Patient/{on_plan['id']}"),
    ]
    assert f"Flag/{plan['id']}" in seen[0]["context"]
    assert await events(here["la-a"], a[CHILD_SEEN]) == []  # its plan? none: b's


async def test_a_transaction_that_rolls_back_leaves_nothing_to_send(here: World) -> None:
    a = await _subscribed(here, "la-a")
    kid = await post(here.system, child(nhs=f.nhs_number(507), authorities=("la-a",)))
    subject = f"Patient/{kid['id']}"
    flag = f.safeguarding_flag(subject=subject, author="Organization/hosp")
    broken = f.flag(subject="Patient/no-such-child", author="Organization/hosp")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": "Flag"}} for r in (flag, broken)
        ],
    }
    response = await here["hosp"].post(BASE, json=bundle, headers={"content-type": FHIR_JSON})
    assert response.status_code == 422, response.text
    await here.notify()
    assert await events(here["la-a"], a[FLAG_RECORDED]) == []
    flag_bundle = bundle | {"entry": bundle.get("entry", [])[:1]}
    response = await here["hosp"].post(BASE, json=flag_bundle, headers={"content-type": FHIR_JSON})
    assert response.status_code == 200, response.text
    await here.notify()
    assert [e["action"] for e in await events(here["la-a"], a[FLAG_RECORDED])] == ["created"]


async def test_a_system_client_raising_a_flag_for_an_authority_makes_it_responsible(
    here: World,
) -> None:
    a, b = await _subscribed(here, "la-a"), await _subscribed(here, "la-b")
    kid = await post(here.system, child(nhs=f.nhs_number(508), authorities=("la-a",)))
    subject = f"Patient/{kid['id']}"
    await post(here.system, f.safeguarding_flag(subject=subject, author="Organization/la-b"))
    await here.notify()
    assert [e["action"] for e in await events(here["la-a"], a[FLAG_RECORDED])] == ["created"]
    assert await events(here["la-b"], b[FLAG_RECORDED]) == []  # the author
    both = ["Organization/la-a", "Organization/la-b"]
    changed = [(e["before"], e["after"]) for e in await events(here["la-b"], b[RESPONSIBILITY])]
    assert changed == [(["Organization/la-a"], both)]
