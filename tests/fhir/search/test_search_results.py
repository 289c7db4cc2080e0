"""What a search returns: includes, paging links, sorting, totals, summaries, compartments.

Spec: http://hl7.org/fhir/R4/search.html#return, #include, #sort, #count, #total
"""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings
from tests import factories as f
from tests.http import create, reference
from tests.tokens import bearer

FORM = {"content-type": "application/x-www-form-urlencoded"}


async def search(client: httpx.AsyncClient, query: str, **headers: str) -> dict[str, Any]:
    """A searchset Bundle (200 asserted)."""
    response = await client.get("/" + query.lstrip("/"), headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == "searchset"
    return body


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    """`Type/id` of the entries in one search mode, in order."""
    return [
        reference(e["resource"]) for e in bundle.get("entry", []) if e["search"]["mode"] == mode
    ]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    """The URL of a link relation, relative to the base, or None."""
    found = [x["url"] for x in bundle["link"] if x["relation"] == relation]
    return found[0].removeprefix("http://test/fhir") if found else None


async def family(client: httpx.AsyncClient) -> dict[str, Any]:
    """A child with a GP, three flags, a father; and a second child with one flag."""
    gp = await create(client, f.organization())
    child = await create(
        client,
        f.patient(nhs=f.nhs_number(1)) | {"managingOrganization": {"reference": reference(gp)}},
    )
    other = await create(client, f.patient(nhs=f.nhs_number(2), family="Jones"))
    flags = [
        await create(client, f.flag(subject=reference(child), author=reference(gp)))
        for _ in range(3)
    ]
    other_flag = await create(client, f.flag(subject=reference(other)))
    father = await create(client, f.related_person(patient=reference(child)))
    return {
        "gp": gp,
        "child": child,
        "other": other,
        "flags": flags,
        "other_flag": other_flag,
        "father": father,
    }


async def test_include_adds_each_referenced_resource_once_uncounted(
    client: httpx.AsyncClient,
) -> None:
    made = await family(client)
    child = reference(made["child"])
    bundle = await search(client, f"Flag?patient={child}&_include=Flag:patient")
    assert sorted(ids(bundle)) == sorted(reference(x) for x in made["flags"])
    assert ids(bundle, "include") == [child]  # three flags, one patient entry
    assert bundle["total"] == 3
    everything = await search(client, f"Flag?patient={child}&_include=*")
    assert sorted(ids(everything, "include")) == sorted([child, reference(made["gp"])])


async def test_revinclude_and_iterate_follow_references_backwards_then_onwards(
    client: httpx.AsyncClient,
) -> None:
    made = await family(client)
    nhs = made["child"]["identifier"][0]["value"]
    query = f"Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}"
    bundle = await search(
        client, f"{query}&_revinclude=Flag:patient&_revinclude=RelatedPerson:patient"
    )
    expected = [*(reference(x) for x in made["flags"]), reference(made["father"])]
    assert ids(bundle) == [reference(made["child"])]
    assert sorted(ids(bundle, "include")) == sorted(expected)
    onward = await search(client, f"{query}&_revinclude=Flag:patient&_include:iterate=Flag:author")
    assert reference(made["gp"]) in ids(onward, "include")
    plain = await search(client, f"{query}&_revinclude=Flag:patient&_include=Flag:author")
    assert reference(made["gp"]) not in ids(plain, "include")  # not without :iterate


async def test_a_match_is_never_repeated_as_an_include(client: httpx.AsyncClient) -> None:
    made = await family(client)
    bundle = await search(client, "Patient?_revinclude=Flag:patient&_include:iterate=Flag:patient")
    assert sorted(ids(bundle)) == sorted([reference(made["child"]), reference(made["other"])])
    assert not set(ids(bundle)) & set(ids(bundle, "include"))
    assert len(ids(bundle, "include")) == 4


@pytest.mark.parametrize("bad", ["Flag", "Flag:status", "Nope:patient", "Flag:patient:Group"])
async def test_malformed_include_is_400(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.get(f"/Flag?_include={bad}")
    assert response.status_code == 400, response.text
    assert response.json()["issue"][0]["expression"] == ["_include"]


async def test_paging_while_others_write_neither_skips_nor_repeats(
    client: httpx.AsyncClient,
) -> None:
    child = reference(await create(client, f.patient()))
    before = [reference(await create(client, f.flag(subject=child))) for _ in range(7)]
    page = await search(client, f"Flag?patient={child}&_count=3")
    seen = ids(page)
    while (following := link(page, "next")) is not None:
        await create(client, f.flag(subject=child))  # a new match lands after the cursor
        await create(client, f.flag(subject=child, status="inactive"))
        page = await search(client, following)
        seen += ids(page)
    assert len(seen) == len(set(seen))
    assert set(before) <= set(seen)


async def test_previous_links_walk_back_over_the_same_pages(client: httpx.AsyncClient) -> None:
    child = reference(await create(client, f.patient()))
    for _ in range(5):
        await create(client, f.flag(subject=child))
    pages = [await search(client, "Flag?_count=2&_sort=-_lastUpdated")]
    while (following := link(pages[-1], "next")) is not None:
        pages.append(await search(client, following))
    assert [len(ids(p)) for p in pages] == [2, 2, 1]
    assert link(pages[0], "previous") is None
    back = await search(client, link(pages[2], "previous") or "")
    assert ids(back) == ids(pages[1])
    first = await search(client, link(back, "previous") or "")
    assert ids(first) == ids(pages[0])
    assert link(first, "previous") is None


async def test_sort_on_several_keys_and_descending(client: httpx.AsyncClient) -> None:
    made = {}
    people = [
        ("a", "Brown", "2016"),
        ("b", "Adams", "2014"),
        ("c", "Brown", "2012"),
        ("d", "Clark", "2016"),
    ]
    for name, family_name, born in people:
        made[name] = reference(await create(client, f.patient(family=family_name, birth_date=born)))
    by_family = await search(client, "Patient?_sort=family,-birthdate")
    assert ids(by_family) == [made["b"], made["a"], made["c"], made["d"]]
    by_birth = await search(client, "Patient?_sort=-birthdate,-family&_count=2")
    second = await search(client, link(by_birth, "next") or "")
    assert ids(by_birth) + ids(second) == [made["d"], made["a"], made["b"], made["c"]]
    response = await client.get("/Patient?_sort=shoe-size")
    assert response.status_code == 400


async def test_total_modes_and_summary_count(client: httpx.AsyncClient) -> None:
    await family(client)
    assert (await search(client, "Flag?_count=1&_total=accurate"))["total"] == 4
    assert "total" not in await search(client, "Flag?_count=1&_total=none")
    estimate = await search(client, "Flag?_count=1&_total=estimate")
    assert isinstance(estimate["total"], int) and estimate["total"] >= 0
    counted = await search(client, "Flag?status=active&_summary=count")
    assert (counted["total"] == 4 and "entry" not in counted) or counted.get("entry", []) == []
    assert (await search(client, "Flag?_count=0"))["total"] == 4
    assert (await client.get("/Flag?_total=some")).status_code == 400


async def test_summary_and_elements_shape_entries_and_mark_them(client: httpx.AsyncClient) -> None:
    await family(client)
    bundle = await search(client, "Flag?_elements=status&_count=1")
    resource = bundle.get("entry", [])[0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "status", "code", "subject"}
    assert any(t["code"] == "SUBSETTED" for t in resource["meta"]["tag"])
    text = (await search(client, "Patient?_summary=data&_count=1")).get("entry", [])[0]["resource"]
    assert "text" not in text and "name" in text


async def test_compartment_search_keeps_to_the_patient(client: httpx.AsyncClient) -> None:
    made = await family(client)
    child = made["child"]["id"]
    flags = await search(client, f"Patient/{child}/Flag")
    assert sorted(ids(flags)) == sorted(reference(x) for x in made["flags"])
    assert ids(await search(client, f"Patient/{child}/RelatedPerson")) == [
        reference(made["father"])
    ]
    assert ids(await search(client, f"Patient/{child}/Flag?status=inactive")) == []
    assert link(
        flags,
        "self",
    ).startswith(f"/Patient/{child}/Flag?")  # type: ignore[union-attr]


async def test_post_search_with_a_form_body_equals_get(client: httpx.AsyncClient) -> None:
    made = await family(client)
    child = reference(made["child"])
    by_get = await search(client, f"Flag?patient={child}&status=active")
    response = await client.post(
        "/Flag/_search", content=f"patient={child}&status=active", headers=FORM
    )
    assert response.status_code == 200, response.text
    assert ids(response.json()) == ids(by_get)
    wrong = await client.post("/Flag/_search", json={"patient": child})
    assert wrong.status_code == 415


async def test_page_size_over_the_maximum_is_clamped_or_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await family(client)
    clamped = await search(client, "Flag?_count=100000")
    assert "_count=500" in link(clamped, "self")  # type: ignore[operator]
    strict = create_app(settings.model_copy(update={"count_over_max": "refuse"}))
    async with strict.router.lifespan_context(strict):
        transport = httpx.ASGITransport(app=strict)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/fhir") as other:
            refused = await other.get("/Flag?_count=100000", headers=await bearer(strict))
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["expression"] == ["_count"]


async def test_a_cursor_from_another_search_is_400(client: httpx.AsyncClient, app: FastAPI) -> None:
    child = reference(await create(client, f.patient()))
    for _ in range(3):
        await create(client, f.flag(subject=child))
    page = await search(client, "Flag?_count=1&_sort=-_lastUpdated")
    cursor = (link(page, "next") or "").split("_cursor=")[1]
    response = await client.get(f"/Flag?_count=1&_cursor={cursor}")  # no _sort: other keys
    assert response.status_code == 400
    assert (await client.get("/Flag?_cursor=%%%")).status_code == 400
