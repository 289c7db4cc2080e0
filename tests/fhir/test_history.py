"""Instance, type and system history (http://hl7.org/fhir/R4/http.html#history)."""

from typing import Any

import httpx
import pytest

from app.settings import Settings
from app.storage import repository
from tests import factories as f
from tests.http import client_with, create, outcome_expressions, reference


async def _all_pages(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    while url:
        page = (await client.get(url)).json()
        assert page["type"] == "history"
        entries.extend(page.get("entry", []))
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), "")
    return entries


async def test_instance_history_is_newest_first_with_request_and_response(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, f.organization(name="v1"))
    url = f"/Organization/{created['id']}"
    await client.put(url, json=created | {"name": "v2"})
    await client.delete(url)
    bundle = (await client.get(f"{url}/_history")).json()
    entries = bundle.get("entry", [])
    assert [e["request"]["method"] for e in entries] == ["DELETE", "PUT", "POST"]
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert "resource" not in entries[0]
    assert entries[1]["resource"]["name"] == "v2"
    assert entries[2]["response"]["status"].startswith("201")
    assert all(e["fullUrl"] == f"http://test/fhir{url}" for e in entries)


async def test_history_of_unknown_instance_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/Patient/nobody/_history")).status_code == 404


async def test_type_and_system_history_include_only_their_scope(client: httpx.AsyncClient) -> None:
    organization = await create(client, f.organization())
    child = await create(client, f.patient())
    await create(client, f.flag(subject=reference(child), author=reference(organization)))
    types = (await client.get("/Patient/_history")).json()
    assert [e["resource"]["resourceType"] for e in types.get("entry", [])] == ["Patient"]
    system = (await client.get("/_history")).json()
    kinds = [e["resource"]["resourceType"] for e in system.get("entry", [])]
    assert kinds == ["Flag", "Patient", "Organization"]


async def test_paging_on_a_shared_timestamp_neither_skips_nor_repeats(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = repository.now_micros()
    monkeypatch.setattr(repository, "now_micros", lambda: frozen)
    ids = [(await create(client, f.organization(name=f"o{n}")))["id"] for n in range(23)]
    monkeypatch.undo()
    first = (await client.get("/Organization/_history?_count=5")).json()
    assert len(first.get("entry", [])) == 5
    # Writes arriving while a client pages must not shift the pages it has yet to read.
    await create(client, f.organization(name="late"))
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    rest = await _all_pages(client, next_url)
    seen = [e["resource"]["id"] for e in first.get("entry", []) + rest]
    assert seen == list(reversed(ids))


async def test_since_keeps_changes_at_or_after_the_instant(
    client: httpx.AsyncClient,
) -> None:
    await create(client, f.organization(name="before"))
    later = await create(client, f.organization(name="after"))
    since = later["meta"]["lastUpdated"]
    bundle = (await client.get("/Organization/_history", params={"_since": since})).json()
    assert [e["resource"]["name"] for e in bundle.get("entry", [])] == ["after"]
    paged = await _all_pages(client, "/_history?_count=1&_since=2000-01-01")
    assert len(paged) == 2


@pytest.mark.parametrize("query", ["_since=yesterday", "_count=-1", "_count=many", "_cursor=x"])
async def test_malformed_history_parameters_are_400(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/_history?{query}")
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("since", "changes"),
    [
        ("9999-12-31T23:59:59-14:00", False),
        ("9999-12-31", False),
        ("0001-01-01T00:00:00+14:00", True),
        ("0001-01-01", True),
    ],
)
async def test_since_at_the_edges_of_the_calendar(
    client: httpx.AsyncClient, since: str, changes: bool
) -> None:
    """`_since` at the first and last instants FHIR allows: a history, not an overflow."""
    await create(client, f.organization())
    response = await client.get("/_history", params={"_since": since})
    assert response.status_code == 200, response.text
    assert bool(response.json().get("entry")) == changes


@pytest.mark.parametrize("since", ["2020-01-01T00:00:00+15:00", "0000-01-01", "2020-13-01"])
async def test_since_that_is_not_an_instant_is_400(client: httpx.AsyncClient, since: str) -> None:
    response = await client.get("/_history", params={"_since": since})
    assert response.status_code == 400, response.text
    assert outcome_expressions(response) == ["_since"]


async def test_a_page_stops_where_its_versions_would_pass_the_response_budget(
    settings: Settings,
) -> None:
    """Versions of about 6 KB, 20,000 bytes a page: a deletion (no body) and three versions
    fit in one, a fourth not; the next links go on after the last version sent."""
    async with client_with(settings, max_response_bytes=20_000) as small:
        created = await create(small, f.patient(given="x" * 6000))
        url = f"/Patient/{created['id']}"
        for n in range(6):
            updated = await small.put(url, json=created | {"gender": ["male", "female"][n % 2]})
            assert updated.status_code == 200, updated.text
        assert (await small.delete(url)).status_code == 200
        first = (await small.get(f"{url}/_history?_count=10")).json()
        assert len(first.get("entry", [])) == 4
        entries = await _all_pages(small, f"{url}/_history?_count=10")
    versions = [int(e["response"]["etag"][3:-1]) for e in entries]
    assert versions == list(range(8, 0, -1))
