"""Transactions under concurrency: conditional creates race to one result, If-Match lets one
writer win, and a retried transaction (same X-Request-ID) runs once.

Spec: http://hl7.org/fhir/R4/http.html#transaction, #concurrency
"""

import asyncio
import uuid
from typing import Any

import httpx

from tests import factories as f
from tests.http import answered_entries, create, outcome_expressions, post_bundle, reference

RESPONSE = "transaction-response"
FLAGS = "https://example.org/flags"


def nhs_query(number: str) -> str:
    """The conditional query of an NHS number."""
    return f"identifier={f.NHS}|{number}"


async def total(client: httpx.AsyncClient, resource_type: str, **params: str) -> int:
    """How many resources of a type match a search (counted exactly)."""
    response = await client.get(f"/{resource_type}", params={**params, "_total": "accurate"})
    assert response.status_code == 200, response.text
    count: int = response.json()["total"]
    return count


async def versions(client: httpx.AsyncClient, ref: str) -> list[str]:
    """The etags of an instance's history, newest first."""
    history = (await client.get(f"/{ref}/_history")).json()
    return [e["response"]["etag"] for e in history.get("entry", [])]


def family_bundle(number: str, father_number: str, flag_identifier: str) -> dict[str, Any]:
    """A child, the father and a Flag, each created only if its identifier is new."""
    child = f"urn:uuid:{uuid.uuid4()}"
    return f.bundle(
        entries=[
            f.entry(
                method="POST",
                url="Patient",
                full_url=child,
                resource=f.patient(nhs=number),
                if_none_exist=nhs_query(number),
            ),
            f.entry(
                method="POST",
                url="RelatedPerson",
                resource=f.related_person(patient=child, nhs=father_number),
                if_none_exist=nhs_query(father_number),
            ),
            f.entry(
                method="POST",
                url="Flag",
                resource=f.flag(subject=child, identifier=flag_identifier),
                if_none_exist=f"identifier={FLAGS}|{flag_identifier}",
            ),
        ]
    )


async def test_twenty_concurrent_conditional_transactions_make_one_of_each(
    client: httpx.AsyncClient,
) -> None:
    number, father_number = f.nhs_number(300), f.nhs_number(301)
    body = family_bundle(number, father_number, "RACE-1")
    responses = await asyncio.gather(*(post_bundle(client, body) for _ in range(20)))
    failures = [r.text for r in responses if r.status_code != 200]
    assert failures == []

    answers = [answered_entries(r, RESPONSE) for r in responses]
    named = {tuple(e["resource"]["id"] for e in entries) for entries in answers}
    assert len(named) == 1, named
    ((child_id, father_id, flag_id),) = named
    shapes = sorted([e["response"]["status"] for e in entries] for entries in answers)
    assert shapes == [["200 OK"] * 3] * 19 + [["201 Created"] * 3]

    assert await total(client, "Patient") == 1
    assert await total(client, "RelatedPerson", identifier=f"{f.NHS}|{father_number}") == 1
    assert await total(client, "RelatedPerson") == 1
    assert await total(client, "Flag") == 1
    father = (await client.get(f"/RelatedPerson/{father_id}")).json()
    flag = (await client.get(f"/Flag/{flag_id}")).json()
    assert father["patient"] == flag["subject"] == {"reference": f"Patient/{child_id}"}


async def test_ten_concurrent_if_match_updates_give_one_success(
    client: httpx.AsyncClient,
) -> None:
    child = await create(client, f.patient())
    responses = await asyncio.gather(
        *(
            client.put(
                f"/{reference(child)}",
                json=child | {"name": [{"family": f"Writer{n}"}]},
                headers={"if-match": 'W/"1"'},
            )
            for n in range(10)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [412] * 9
    assert await versions(client, reference(child)) == ['W/"2"', 'W/"1"']


async def test_ten_concurrent_if_match_transactions_give_one_success(
    client: httpx.AsyncClient,
) -> None:
    child = await create(client, f.patient())
    bodies = [
        f.bundle(
            entries=[
                f.entry(
                    method="PUT",
                    url=reference(child),
                    resource=child | {"name": [{"family": f"Writer{n}"}]},
                    if_match='W/"1"',
                )
            ]
        )
        for n in range(10)
    ]
    responses = await asyncio.gather(*(post_bundle(client, body) for body in bodies))
    assert sorted(r.status_code for r in responses) == [200] + [412] * 9
    assert await versions(client, reference(child)) == ['W/"2"', 'W/"1"']
    (winner,) = [r for r in responses if r.status_code == 200]
    family = answered_entries(winner, RESPONSE)[0]["resource"]["name"][0]["family"]
    current = (await client.get(f"/{reference(child)}")).json()
    assert current["name"][0]["family"] == family


def retried_bundle() -> dict[str, Any]:
    """A transaction with nothing conditional: each run of it would create a new set."""
    child = f"urn:uuid:{uuid.uuid4()}"
    return f.bundle(
        entries=[
            f.entry(method="POST", url="Patient", full_url=child, resource=f.patient()),
            f.entry(method="POST", url="Flag", resource=f.flag(subject=child)),
        ]
    )


async def test_a_transaction_retried_with_one_request_id_runs_once(
    client: httpx.AsyncClient,
) -> None:
    body, key = retried_bundle(), str(uuid.uuid4())
    answers = [await post_bundle(client, body, **{"x-request-id": key}) for _ in range(10)]
    assert answers[0].status_code == 200, answers[0].text
    assert {(a.status_code, a.content) for a in answers} == {(200, answers[0].content)}
    assert (await total(client, "Patient"), await total(client, "Flag")) == (1, 1)

    again = await post_bundle(client, body, **{"x-request-id": str(uuid.uuid4())})
    assert again.status_code == 200, again.text
    assert (await total(client, "Patient"), await total(client, "Flag")) == (2, 2)


async def test_concurrent_retries_with_one_request_id_run_once(client: httpx.AsyncClient) -> None:
    body, key = retried_bundle(), str(uuid.uuid4())
    answers = await asyncio.gather(
        *(post_bundle(client, body, **{"x-request-id": key}) for _ in range(10))
    )
    assert answers[0].status_code == 200, answers[0].text
    assert {(a.status_code, a.content) for a in answers} == {(200, answers[0].content)}
    assert (await total(client, "Patient"), await total(client, "Flag")) == (1, 1)


async def test_a_request_id_reused_for_another_bundle_is_422(client: httpx.AsyncClient) -> None:
    key = str(uuid.uuid4())
    first = await post_bundle(client, retried_bundle(), **{"x-request-id": key})
    assert first.status_code == 200, first.text
    other = f.bundle(
        entries=[f.entry(method="POST", url="Organization", resource=f.organization())]
    )
    reused = await post_bundle(client, other, **{"x-request-id": key})
    assert reused.status_code == 422, reused.text
    assert [e.lower() for e in outcome_expressions(reused)] == ["x-request-id"]
    assert await total(client, "Organization") == 0
