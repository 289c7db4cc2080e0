"""Family links: a RelatedPerson carrying an NHS number is linked to that person's own Patient
record (`RelatedPerson?linked-patient=`), whichever was written first, through single requests
and transactions; the link follows deletes and changed NHS numbers; siblings are found from
either child."""

import asyncio
from typing import Any

import httpx

from tests import factories as f
from tests.http import create, post_bundle, reference


async def _ids(client: httpx.AsyncClient, query: str, **params: str) -> set[str]:
    """Ids of the matches (and includes, as `Type/id`) of a search."""
    bundle = (await client.get(query, params=params)).json()
    return {
        e["resource"]["id"] if e["search"]["mode"] == "match" else reference(e["resource"])
        for e in bundle.get("entry", [])
    }


def _half_sibling_of(child: dict[str, Any], nhs: str) -> dict[str, Any]:
    return f.related_person(patient=reference(child), relationship="HSIB", nhs=nhs)


async def test_a_relative_with_an_nhs_number_is_linked_to_their_patient_record(
    client: httpx.AsyncClient,
) -> None:
    amy = await create(client, f.patient(nhs=f.nhs_number(301)))
    ben_nhs = f.nhs_number(302)
    ben = await create(client, f.patient(nhs=ben_nhs, given="Ben"))
    link = await create(client, _half_sibling_of(amy, ben_nhs))
    assert await _ids(client, "/RelatedPerson", patient=amy["id"], relationship="HSIB") == {
        link["id"]
    }
    assert await _ids(client, "/RelatedPerson", **{"linked-patient": reference(ben)}) == {
        link["id"]
    }
    assert await _ids(client, "/RelatedPerson", identifier=f"{f.NHS}|{ben_nhs}") == {link["id"]}
    included = await _ids(
        client, "/RelatedPerson", patient=amy["id"], _include="RelatedPerson:linked-patient"
    )
    assert included == {link["id"], reference(ben)}


async def test_the_link_is_made_when_the_patient_record_comes_later(
    client: httpx.AsyncClient,
) -> None:
    amy = await create(client, f.patient(nhs=f.nhs_number(311)))
    ben_nhs = f.nhs_number(312)
    link = await create(client, _half_sibling_of(amy, ben_nhs))
    assert await _ids(client, "/RelatedPerson", **{"linked-patient:missing": "false"}) == set()
    ben = await create(client, f.patient(nhs=ben_nhs, given="Ben"))
    # the sibling found from the other child: who lists Ben as their relative?
    found = await _ids(client, "/RelatedPerson", **{"linked-patient": ben["id"]})
    assert found == {link["id"]}
    listed = (await client.get(f"/RelatedPerson/{link['id']}")).json()
    assert listed["patient"]["reference"] == reference(amy)


async def test_the_link_follows_deletes_and_changed_numbers(client: httpx.AsyncClient) -> None:
    amy = await create(client, f.patient(nhs=f.nhs_number(321)))
    ben_nhs = f.nhs_number(322)
    ben = await create(client, f.patient(nhs=ben_nhs, given="Ben"))
    link = await create(client, _half_sibling_of(amy, ben_nhs))
    linked = {"linked-patient": ben["id"]}
    assert (await client.delete(f"/Patient/{ben['id']}")).status_code in (200, 204)
    assert await _ids(client, "/RelatedPerson", **linked) == set()
    again = await create(client, f.patient(nhs=ben_nhs, given="Ben"))
    assert await _ids(client, "/RelatedPerson", **{"linked-patient": again["id"]}) == {link["id"]}
    other_nhs = f.nhs_number(340)
    assert other_nhs != ben_nhs
    renumbered = again | {"identifier": [{"system": f.NHS, "value": other_nhs}]}
    assert (await client.put(f"/Patient/{again['id']}", json=renumbered)).status_code == 200
    assert await _ids(client, "/RelatedPerson", **{"linked-patient": again["id"]}) == set()
    unnumbered = {k: v for k, v in link.items() if k != "identifier"}
    await client.put(f"/Patient/{again['id']}", json=again)  # the number back
    assert await _ids(client, "/RelatedPerson", **{"linked-patient": again["id"]}) == {link["id"]}
    assert (await client.put(f"/RelatedPerson/{link['id']}", json=unnumbered)).status_code == 200
    assert await _ids(client, "/RelatedPerson", **{"linked-patient": again["id"]}) == set()


async def test_a_transaction_links_the_family_it_writes(client: httpx.AsyncClient) -> None:
    amy_urn, ben_urn = (
        "urn:uuid:1b8e0c52-9e0f-4a47-8f4e-3a7d0f2c9b11",
        "urn:uuid:2c9f1d63-af10-4b58-9a5f-4b8e1a3dac22",
    )
    ben_nhs = f.nhs_number(331)
    entries = [
        f.entry(
            method="POST",
            url="Patient",
            full_url=amy_urn,
            resource=f.patient(nhs=f.nhs_number(332)),
        ),
        f.entry(
            method="POST",
            url="RelatedPerson",
            resource=f.related_person(patient=amy_urn, relationship="HSIB", nhs=ben_nhs),
        ),
        f.entry(
            method="POST",
            url="Patient",
            full_url=ben_urn,
            resource=f.patient(nhs=ben_nhs, given="Ben"),
        ),
    ]
    response = await post_bundle(client, f.bundle(entries=entries))
    assert response.status_code == 200, response.text
    locations = [e["response"]["location"].split("/")[1] for e in response.json().get("entry", [])]
    assert await _ids(client, "/RelatedPerson", **{"linked-patient": locations[2]}) == {
        locations[1]
    }


async def test_links_made_by_concurrent_writes_are_never_lost(client: httpx.AsyncClient) -> None:
    amy = await create(client, f.patient(nhs=f.nhs_number(350)))
    numbers = [f.nhs_number(400 + 3 * n) for n in range(16)]
    assert len(set(numbers)) == len(numbers)
    answers = await asyncio.gather(
        *(
            request
            for number in numbers
            for request in (
                client.post("/RelatedPerson", json=_half_sibling_of(amy, number)),
                client.post("/Patient", json=f.patient(nhs=number, given="Sib")),
            )
        )
    )
    assert all(answer.status_code == 201 for answer in answers), [a.text for a in answers]
    for patient in answers[1::2]:
        linked = await _ids(client, "/RelatedPerson", **{"linked-patient": patient.json()["id"]})
        assert len(linked) == 1


async def test_a_relative_with_an_invalid_nhs_number_is_422(client: httpx.AsyncClient) -> None:
    amy = await create(client, f.patient(nhs=f.nhs_number(370)))
    response = await client.post("/RelatedPerson", json=_half_sibling_of(amy, "999 000 0000"))
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["expression"] == ["RelatedPerson.identifier[0].value"]
