"""The change feed's polling contract (README, "Change feed"): a client polls `_history` with
`_since=<the first page's Bundle.meta.lastUpdated of its previous poll>`, follows every `next`
link, and receives every committed change exactly once while writers keep writing."""

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from app.clock import instant
from app.storage import repository
from tests import factories as f
from tests.http import BASE, create, history_poll, post_bundle

Change = tuple[str, str, int]  # type, id, version
WRITERS = 8
ROUNDS = 180  # per writer: about 22,000 committed changes on the whole


@dataclass
class Poller:
    """A feed client: what it received, how often, and where its next poll starts."""

    client: httpx.AsyncClient
    path: str = "/_history"
    types: str | None = None  # `_type`, at system level
    since: str | None = None
    seen: list[Change] = field(default_factory=list)

    async def poll(self) -> None:
        """One poll: every page of `_history?_since=<since>`, then the next `since`."""
        params = {"_count": "1000"} | ({"_since": self.since} if self.since else {})
        params |= {"_type": self.types} if self.types else {}
        entries, self.since = await history_poll(self.client, self.path, params)
        self.seen.extend(_change(entry) for entry in entries)


def _change(entry: dict[str, Any]) -> Change:
    """(type, id, version) of a history entry, a deletion's taken from its request URL."""
    kind, logical_id = entry["fullUrl"].removeprefix(f"{BASE}/").split("/")[:2]
    version = int(entry["response"]["etag"].removeprefix('W/"').rstrip('"'))
    return kind, logical_id, version


def _created(entry: dict[str, Any]) -> Change:
    """(type, id, version) of a written entry of a transaction-response."""
    kind, logical_id, _, version = entry["response"]["location"].split("/")[-4:]
    return kind, logical_id, int(version)


async def _single(client: httpx.AsyncClient, committed: list[Change]) -> None:
    stored = await create(client, f.organization(name=f"o{uuid.uuid4().hex[:6]}"))
    committed.append(("Organization", stored["id"], 1))
    url = f"/Organization/{stored['id']}"
    updated = await client.put(url, json=stored | {"name": "renamed"})
    assert updated.status_code == 200, updated.text
    committed.append(("Organization", stored["id"], 2))
    if random.random() < 0.3:
        assert (await client.delete(url)).status_code in (200, 204)
        committed.append(("Organization", stored["id"], 3))


def _transaction(size: int, *, failing: bool) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {
            "resource": f.organization(name=f"t{n}"),
            "request": {"method": "POST", "url": "Organization"},
        }
        for n in range(size)
    ]
    if failing:  # the last entry fails after the others were written: all of it rolls back
        missing = f.flag(subject=f"Patient/{uuid.uuid4()}", author=f"Organization/{uuid.uuid4()}")
        entries.append({"resource": missing, "request": {"method": "POST", "url": "Flag"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def _bundle(client: httpx.AsyncClient, committed: list[Change], *, failing: bool) -> None:
    response = await post_bundle(client, _transaction(random.randint(20, 60), failing=failing))
    if failing:
        assert 400 <= response.status_code < 500, response.text
        return
    assert response.status_code == 200, response.text
    committed.extend(_created(entry) for entry in response.json().get("entry", []))


async def _writer(client: httpx.AsyncClient, committed: list[Change]) -> None:
    for _ in range(ROUNDS):
        choice = random.random()
        if choice < 0.55:
            await _single(client, committed)
        else:
            await _bundle(client, committed, failing=choice > 0.9)


async def _poll_while(poller: Poller, writing: "asyncio.Future[Any]") -> None:
    while not writing.done():
        await poller.poll()
        await asyncio.sleep(0.003)
    await poller.poll()  # nothing is in flight now: the rest is below the watermark


async def test_a_poller_receives_every_change_once_while_eight_writers_write(
    client: httpx.AsyncClient,
) -> None:
    committed: list[Change] = []
    poller = Poller(client)
    writing = asyncio.gather(*(_writer(client, committed) for _ in range(WRITERS)))
    await _poll_while(poller, writing)
    await writing
    assert len(committed) >= 20_000
    duplicates = len(poller.seen) - len(set(poller.seen))
    assert duplicates == 0
    assert set(poller.seen) == set(committed)


async def test_a_type_poll_with_type_filter_at_system_level_sees_only_those_types(
    client: httpx.AsyncClient,
) -> None:
    organization = await create(client, f.organization())
    child = await create(client, f.patient())
    flag = await create(
        client,
        f.flag(subject=f"Patient/{child['id']}", author=f"Organization/{organization['id']}"),
    )
    poller = Poller(client, types="Flag,Patient")
    await poller.poll()
    assert set(poller.seen) == {("Patient", child["id"], 1), ("Flag", flag["id"], 1)}
    await poller.poll()
    assert len(poller.seen) == 2  # nothing new: the second poll repeats nothing


async def test_an_unknown_type_in_system_history_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/_history", params={"_type": "Flag,Spaceship"})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["_type"]


async def test_ten_thousand_changes_sharing_one_last_updated_page_through_once_each(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = repository.now_micros()
    monkeypatch.setattr(repository, "now_micros", lambda: frozen)
    committed: list[Change] = []
    for _ in range(100):
        await _bundle_of(client, committed, 100, instant(frozen))
    monkeypatch.undo()
    poller = Poller(client, path="/Organization/_history")
    await poller.poll()
    assert len(committed) == 10_000
    assert sorted(poller.seen) == sorted(committed)


async def _bundle_of(
    client: httpx.AsyncClient, committed: list[Change], size: int, stamp: str
) -> None:
    response = await post_bundle(client, _transaction(size, failing=False))
    assert response.status_code == 200, response.text
    entries = response.json().get("entry", [])
    assert {entry["response"]["lastModified"] for entry in entries} == {stamp}
    committed.extend(_created(entry) for entry in entries)
