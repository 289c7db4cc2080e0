"""The search the conditional interactions rely on: _id, identifier, patient and subject."""

import httpx
import pytest

from app.fhir.search.options import Include, includes
from tests import factories as f
from tests.http import create, reference


@pytest.fixture
async def family(client: httpx.AsyncClient) -> dict[str, str]:
    """Two children, one with two flags and a father."""
    amy = await create(client, f.patient(nhs=f.nhs_number(100)))
    ben = await create(client, f.patient(nhs=f.nhs_number(101), given="Ben"))
    first = await create(client, f.flag(subject=reference(amy), identifier="A-1"))
    await create(client, f.flag(subject=reference(amy), identifier="A-2"))
    await create(client, f.flag(subject=reference(ben), identifier="B-1"))
    await create(client, f.related_person(patient=reference(amy)))
    return {"amy": amy["id"], "ben": ben["id"], "first": first["id"]}


async def _ids(client: httpx.AsyncClient, url: str) -> set[str]:
    bundle = (await client.get(url)).json()
    assert bundle["type"] == "searchset"
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


async def _count(client: httpx.AsyncClient, url: str) -> int:
    return len(await _ids(client, url))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Patient?identifier={nhs}|{amy_nhs}", 1),
        ("Patient?identifier={amy_nhs}", 1),
        ("Patient?identifier=|{amy_nhs}", 0),
        ("Patient?identifier={nhs}|", 2),
        ("Patient?identifier={amy_nhs},{ben_nhs}", 2),
        ("Flag?patient=Patient/{amy}", 2),
        ("Flag?patient={amy}", 2),
        ("Flag?patient=http://test/fhir/Patient/{amy}", 2),
        ("Flag?subject:Patient={ben}", 1),
        ("Flag?subject=Patient/{ben}", 1),
        ("Flag?patient={amy}&identifier=A-2", 1),
        ("Flag?patient={amy},{ben}", 3),
        ("Flag?_id={first}", 1),
        ("RelatedPerson?patient={amy}", 1),
        ("RelatedPerson?patient={ben}", 0),
    ],
)
async def test_search_matches(
    client: httpx.AsyncClient, family: dict[str, str], query: str, expected: int
) -> None:
    url = "/" + query.format(
        nhs=f.NHS, amy_nhs=f.nhs_number(100), ben_nhs=f.nhs_number(101), **family
    )
    assert await _count(client, url) == expected


async def test_paging_follows_next_links_to_the_end(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient())
    made = {(await create(client, f.flag(subject=reference(child))))["id"] for _ in range(7)}
    url, seen = f"/Flag?patient={child['id']}&_count=3", []
    while url:
        bundle = (await client.get(url)).json()
        seen.extend(e["resource"]["id"] for e in bundle.get("entry", []))
        url = next((lk["url"] for lk in bundle["link"] if lk["relation"] == "next"), "")
    assert sorted(seen) == sorted(made)


async def test_unknown_parameters_are_reported_or_refused_when_strict(
    client: httpx.AsyncClient,
) -> None:
    bundle = (await client.get("/Patient?colour=red")).json()
    outcome = [e for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome"]
    assert outcome[0]["resource"]["issue"][0]["expression"] == ["colour"]
    self_link = next(lk["url"] for lk in bundle["link"] if lk["relation"] == "self")
    assert "colour" not in self_link
    strict = await client.get("/Patient?colour=red", headers={"prefer": "handling=strict"})
    assert strict.status_code == 400
    [issue] = strict.json()["issue"]
    assert (issue["severity"], issue["expression"]) == ("error", ["colour"])
    assert issue["diagnostics"] == (
        "unknown search parameter 'colour' is refused (Prefer: handling=strict)"
    )


async def test_search_leaves_out_deleted_resources(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient())
    flag = await create(client, f.flag(subject=reference(child)))
    await client.delete(f"/Flag/{flag['id']}")
    assert await _count(client, f"/Flag?patient={child['id']}") == 0


async def test_a_parameter_repeated_with_one_value_is_one_criterion(
    client: httpx.AsyncClient, family: dict[str, str]
) -> None:
    once = await _ids(client, f"/Flag?subject=Patient/{family['amy']}")
    repeated = "&".join([f"subject=Patient/{family['amy']}"] * 500)  # far over 20 criteria
    assert await _ids(client, f"/Flag?{repeated}") == once == {family["first"], *once}
    different = "&".join(f"identifier=X-{n}" for n in range(21))
    assert (await client.get(f"/Flag?{different}")).status_code == 400  # the limit still holds


def test_an_include_repeated_is_followed_once() -> None:
    pairs = [("_include", "Flag:subject"), ("_revinclude:iterate", "*")] * 2000
    assert includes(pairs) == (
        Include("Flag", "subject", None, reverse=False, iterate=False),
        Include("*", None, None, reverse=True, iterate=True),
    )


async def test_an_include_repeated_answers_as_one(
    client: httpx.AsyncClient, family: dict[str, str]
) -> None:
    url = f"/Flag?subject=Patient/{family['amy']}&"
    once = (await client.get(url + "_include=Flag:subject")).json()
    repeated = (await client.get(url + "&".join(["_include=Flag:subject"] * 2000))).json()
    assert [e["resource"]["id"] for e in repeated.get("entry", [])] == [
        e["resource"]["id"] for e in once.get("entry", [])
    ]
    assert any(e["search"]["mode"] == "include" for e in repeated.get("entry", []))
