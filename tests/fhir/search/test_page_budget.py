"""A search page's own matches stop at `max_response_bytes`: a page that would pass it holds
fewer matches than `_count` (always one), says so in a warning, and its `next` link goes on
after its last match, so following the links yields every match once, in order; on both
databases.

Spec: http://hl7.org/fhir/R4/http.html#paging (a server may return fewer than `_count`)
"""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests import factories as f
from tests.callers import app_client_for, scoped
from tests.http import client_with, create

LIMIT = 20_000  # bytes: three of the 6 KB Patients below fit in a page, a fourth does not
PADDING = 6000  # characters of a large Patient's given name


@pytest.fixture
async def small(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose answers hold LIMIT bytes of resources."""
    async with client_with(settings, max_response_bytes=LIMIT) as http:
        yield http


async def _patients(
    client: httpx.AsyncClient, count: int, size: int = PADDING
) -> tuple[str, list[str]]:
    """A family name of its own, and the ids of `count` Patients of it, in creation order."""
    family = "Page" + uuid.uuid4().hex[:12]
    created = [
        await create(client, f.patient(family=family, given="x" * size)) for _ in range(count)
    ]
    return family, [patient["id"] for patient in created]


def _link(page: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in page["link"] if link["relation"] == relation), None)


def _matches(page: dict[str, Any]) -> list[str]:
    entries = page.get("entry", [])
    return [e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"]


def _warnings(page: dict[str, Any]) -> list[str]:
    entries = page.get("entry", [])
    outcomes = [e["resource"] for e in entries if e["search"]["mode"] == "outcome"]
    return [issue["diagnostics"] for outcome in outcomes for issue in outcome["issue"]]


async def _get(client: httpx.AsyncClient, url: str, **params: str) -> dict[str, Any]:
    response = await client.get(url, params=params or None)  # {} would drop a link's query
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def test_a_page_past_the_budget_stops_early_with_a_next_link_and_a_warning(
    small: httpx.AsyncClient,
) -> None:
    family, ids = await _patients(small, 8)
    page = await _get(small, "/Patient", family=family, _count="8")
    assert _matches(page) == ids[:3]
    assert _link(page, "next") is not None
    assert _warnings(page) == [
        f"the page was cut short at {LIMIT} bytes (SAFEGUARD_MAX_RESPONSE_BYTES): "
        "its next link goes on after its last match"
    ]
    assert "total" not in page  # more matches follow: the count is not known


ORDERS = {"": list, "-_id": lambda ids: sorted(ids, reverse=True), "-_lastUpdated": reversed}


@pytest.mark.parametrize("sort", list(ORDERS))
async def test_following_the_links_yields_every_match_once_in_order(
    small: httpx.AsyncClient, sort: str
) -> None:
    family, ids = await _patients(small, 8)
    expected = list(ORDERS[sort](ids))
    params = {"family": family, "_count": "5"} | ({"_sort": sort} if sort else {})
    page = await _get(small, "/Patient", **params)
    forwards, pages = _matches(page), 1
    while (url := _link(page, "next")) is not None:
        page = await _get(small, url)
        assert 1 <= len(_matches(page)) <= 3
        forwards, pages = forwards + _matches(page), pages + 1
    assert forwards == expected and pages == 3  # 3, 3 and 2 of _count=5
    backwards = _matches(page)
    while (url := _link(page, "previous")) is not None:
        page = await _get(small, url)
        backwards = _matches(page) + backwards
    assert backwards == expected


async def test_a_page_within_the_budget_is_unchanged(small: httpx.AsyncClient) -> None:
    family, ids = await _patients(small, 3)
    page = await _get(small, "/Patient", family=family, _count="3")
    assert _matches(page) == ids and _warnings(page) == []
    assert _link(page, "next") is None and page["total"] == 3
    family, ids = await _patients(small, 8, size=10)
    page = await _get(small, "/Patient", family=family, _count="8")
    assert _matches(page) == ids and _warnings(page) == []


async def test_an_accurate_total_counts_every_match_of_a_cut_page(
    small: httpx.AsyncClient,
) -> None:
    family, ids = await _patients(small, 8)
    page = await _get(small, "/Patient", family=family, _count="8", _total="accurate")
    assert page["total"] == 8 and _matches(page) == ids[:3]


async def test_a_match_larger_than_the_budget_comes_alone(small: httpx.AsyncClient) -> None:
    family, ids = await _patients(small, 2, size=LIMIT + 5000)
    first = await _get(small, "/Patient", family=family)
    assert _matches(first) == ids[:1] and _warnings(first)
    url = _link(first, "next")
    assert url is not None
    last = await _get(small, url)
    assert _matches(last) == ids[1:] and _link(last, "next") is None and not _warnings(last)


async def test_a_caller_cut_off_by_the_budget_still_sees_only_what_it_may(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    """History pages cut by the budget, read by a caller who may read Flags only: the large
    Patients it may not see never appear (nor take up its budget), and following the links
    yields every Flag once."""
    await _patients(client, 4)
    child = await create(client, f.patient())
    flags = []
    for n in range(5):  # large too, so that the Flags' own pages are cut
        flag = f.flag(subject=f"Patient/{child['id']}", identifier=f"b{n}")
        flag["code"]["text"] = "x" * PADDING
        flags.append((await create(client, flag))["id"])
    seen: list[str] = []
    pages = 0
    limited = settings.model_copy(update={"max_response_bytes": LIMIT})
    async with app_client_for(limited, scoped("system/Flag.rs")) as flags_only:
        url: str | None = "/_history"
        while url is not None:
            page = await _get(flags_only, url)
            pages += 1
            seen += [e["resource"]["resourceType"] for e in page.get("entry", [])]
            seen += [e["resource"]["id"] for e in page.get("entry", [])]
            url = _link(page, "next")
    assert set(seen) == {"Flag", *flags}
    assert len(seen) == 2 * len(flags)
    assert pages >= 2  # the budget did cut them
