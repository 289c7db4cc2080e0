"""Conditional create, update and delete (http://hl7.org/fhir/R4/http.html#ccreate)."""

import asyncio

import httpx

from tests import factories as f
from tests.http import create, reference

NHS_QUERY = f"identifier={f.NHS}|{{}}"


async def _history_size(client: httpx.AsyncClient) -> int:
    return len((await client.get("/_history?_count=500")).json().get("entry", []))


async def test_conditional_create_with_no_match_creates(client: httpx.AsyncClient) -> None:
    number = f.nhs_number(10)
    response = await client.post(
        "/Patient", json=f.patient(nhs=number), headers={"if-none-exist": NHS_QUERY.format(number)}
    )
    assert response.status_code == 201


async def test_conditional_create_with_one_match_returns_it_and_creates_nothing(
    client: httpx.AsyncClient,
) -> None:
    number = f.nhs_number(11)
    existing = await create(client, f.patient(nhs=number))
    before = await _history_size(client)
    response = await client.post(
        "/Patient",
        json=f.patient(nhs=number, family="Other"),
        headers={"if-none-exist": NHS_QUERY.format(number)},
    )
    assert response.status_code == 200
    assert response.json() == existing
    assert await _history_size(client) == before


async def test_conditional_create_with_several_matches_is_412(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await create(client, f.organization(ods="X1"))
    response = await client.post(
        "/Organization", json=f.organization(), headers={"if-none-exist": "identifier=X1"}
    )
    assert response.status_code == 412


async def test_twenty_concurrent_conditional_creates_make_one_resource(
    client: httpx.AsyncClient,
) -> None:
    headers = {"if-none-exist": f"identifier={f.ODS}|RACE1"}
    body = f.organization(ods="RACE1")
    responses = await asyncio.gather(
        *(client.post("/Organization", json=body, headers=headers) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    found = (await client.get("/Organization?identifier=RACE1")).json()
    assert found["total"] == 1


async def test_conditional_create_after_the_match_changed_creates_again(
    client: httpx.AsyncClient,
) -> None:
    headers = {"if-none-exist": "identifier=MOVE1"}
    first = await client.post("/Organization", json=f.organization(ods="MOVE1"), headers=headers)
    moved = first.json() | {"identifier": [{"system": f.ODS, "value": "MOVE2"}]}
    await client.put(f"/Organization/{moved['id']}", json=moved)
    again = await client.post("/Organization", json=f.organization(ods="MOVE1"), headers=headers)
    assert again.status_code == 201
    assert again.json()["id"] != first.json()["id"]


async def test_conditional_update_creates_updates_or_refuses(client: httpx.AsyncClient) -> None:
    url = "/Organization?identifier=COND1"
    created = await client.put(url, json=f.organization(ods="COND1", name="first"))
    assert created.status_code == 201
    updated = await client.put(url, json=f.organization(ods="COND1", name="second"))
    assert updated.status_code == 200
    assert updated.json()["id"] == created.json()["id"]
    assert updated.json()["meta"]["versionId"] == "2"
    await create(client, f.organization(ods="COND1"))
    assert (await client.put(url, json=f.organization(ods="COND1"))).status_code == 412


async def test_conditional_update_with_a_different_body_id_is_400(
    client: httpx.AsyncClient,
) -> None:
    await create(client, f.organization(ods="COND2"))
    body = f.organization(ods="COND2") | {"id": "not-the-match"}
    response = await client.put("/Organization?identifier=COND2", json=body)
    assert response.status_code == 400


async def test_conditional_delete_single_match(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient())
    flag = await create(client, f.flag(subject=reference(child), identifier="F-1"))
    response = await client.delete("/Flag?identifier=F-1")
    assert response.status_code == 200
    assert (await client.get(f"/Flag/{flag['id']}")).status_code == 410
    assert (await client.delete("/Flag?identifier=F-1")).status_code == 200


async def test_conditional_delete_with_several_matches_is_412(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient())
    for _ in range(2):
        await create(client, f.flag(subject=reference(child), identifier="F-2"))
    assert (await client.delete("/Flag?identifier=F-2")).status_code == 412
    assert (await client.get("/Flag?identifier=F-2")).json()["total"] == 2


async def test_conditional_requests_refuse_unknown_or_missing_parameters(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.delete("/Flag")).status_code == 400
    assert (await client.delete("/Flag?colour=red")).status_code == 400
    response = await client.post(
        "/Organization", json=f.organization(), headers={"if-none-exist": "colour=red"}
    )
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["colour"]


async def test_concurrent_updates_with_one_if_match_give_one_success(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, f.organization())
    url = f"/Organization/{created['id']}"
    responses = await asyncio.gather(
        *(
            client.put(url, json=created | {"name": f"n{i}"}, headers={"if-match": 'W/"1"'})
            for i in range(10)
        )
    )
    assert sorted(r.status_code for r in responses) == [200] + [412] * 9
    history = (await client.get(f"{url}/_history")).json()
    assert [e["response"]["etag"] for e in history.get("entry", [])] == ['W/"2"', 'W/"1"']
