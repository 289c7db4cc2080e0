"""What a write hides from a caller who could see it appears in that caller's change feed as a
deletion (`storage.vanishing`, `storage.changes`), and to nobody else: a restricted label added,
a child moving to another authority, an authority's last active Flag about a child ended, a
record moved to another child."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.flags.codes import vocabulary
from app.storage import repository
from tests import factories as f
from tests.conftest import BASE
from tests.fhir import exports
from tests.http import FHIR_JSON, create, history_poll, reference
from tests.tokens import bearer

RESTRICTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
Entry = tuple[str, str, bool]  # request method, Type/id, whether it holds a resource
Caller = Callable[[str, str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def caller(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[Caller]:
    """Clients of an Organization (created here) with a role: `await caller("vh1", "health")`."""
    async with AsyncExitStack() as stack:

        async def open_client(org: str, role: str) -> httpx.AsyncClient:
            await _put(client, f.organization(name=org) | {"id": org})
            headers = await bearer(app, f"van-{org}", role=role, organisation=f"Organization/{org}")
            transport = httpx.ASGITransport(app=app)
            opened = httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers)
            return await stack.enter_async_context(opened)

        yield open_client


async def _put(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    url = f"/{resource['resourceType']}/{resource['id']}"
    response = await client.put(url, json=resource, headers={"content-type": FHIR_JSON})
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


class Feed:
    """A feed client polling system `_history` with `_since`, following every `next` link."""

    def __init__(self, client: httpx.AsyncClient, count: int = 100) -> None:
        self.client, self.count, self.since = client, count, None
        self.entries: list[Entry] = []

    async def poll(self) -> list[Entry]:
        """The entries of one poll (every page), oldest first; the next poll starts after."""
        params = {"_count": str(self.count)} | ({"_since": self.since} if self.since else {})
        entries, self.since = await history_poll(self.client, "/_history", params)
        received = [_entry(entry) for entry in entries]
        self.entries += received[::-1]
        return received[::-1]


def _entry(entry: dict[str, Any]) -> Entry:
    path = "/".join(entry["fullUrl"].removeprefix(f"{BASE}/").split("/")[:2])
    return entry["request"]["method"], path, "resource" in entry


def _deleted(entries: list[Entry]) -> set[str]:
    return {path for method, path, _ in entries if method == "DELETE"}


def _about(entries: list[Entry], *resources: dict[str, Any]) -> list[Entry]:
    paths = {reference(resource) for resource in resources}
    return [entry for entry in entries if entry[1] in paths]


def _child(*authorities: str, nhs: int) -> dict[str, Any]:
    """A child Patient whose responsible local authorities are `authorities`."""
    url = vocabulary(BASE).responsible_local_authority_extension
    named = [
        {"url": url, "valueReference": {"reference": f"Organization/{a}"}} for a in authorities
    ]
    return f.patient(nhs=f.nhs_number(nhs)) | ({"extension": named} if named else {})


async def _feeds(*clients: httpx.AsyncClient) -> list[Feed]:
    """A feed for each client, having polled once (so the next poll sees only what follows)."""
    feeds = [Feed(client) for client in clients]
    for feed in feeds:
        await feed.poll()
    return feeds


async def test_a_restricted_label_is_a_deletion_for_other_health_organisations_only(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    h1, h2 = await caller("vh1", "health"), await caller("vh2", "health")
    la1, la2 = await caller("vla1", "local-authority"), await caller("vla2", "local-authority")
    child = await create(client, _child("vla1", nhs=810))
    made = await create(h1, f.condition(subject=reference(child)))
    author, other, responsible, stranger, system = await _feeds(h1, h2, la1, la2, client)
    await _put(h1, made | {"meta": {"security": [RESTRICTED]}})
    assert await other.poll() == [("DELETE", reference(made), False)]
    assert await author.poll() == [("PUT", reference(made), True)]
    assert await responsible.poll() == [("PUT", reference(made), True)]
    assert await stranger.poll() == []
    assert _about(await system.poll(), made) == [("PUT", reference(made), True)]


async def test_a_deletion_goes_once_the_resource_is_visible_again(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    h1, h2 = await caller("vh1", "health"), await caller("vh2", "health")
    made = await create(h1, f.condition(subject=reference(await create(client, _child(nhs=820)))))
    (other,) = await _feeds(h2)
    restricted = await _put(h1, made | {"meta": {"security": [RESTRICTED]}})
    assert await other.poll() == [("DELETE", reference(made), False)]
    await _put(h1, restricted | {"meta": {}})
    assert await other.poll() == [("PUT", reference(made), True)]
    everything = await Feed(h2).poll()  # its whole history: what it may see, no deletion
    assert [method for method, _, _ in _about(everything, made)] == ["POST", "PUT"]  # not v2


async def test_a_child_moving_away_is_a_deletion_of_what_the_old_authority_did_not_author(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    h1 = await caller("vh1", "health")
    old, new = await caller("vlax", "local-authority"), await caller("vlay", "local-authority")
    stranger = await caller("vlaz", "local-authority")
    child = await create(client, _child("vlax", nhs=830))
    theirs = await create(h1, f.condition(subject=reference(child)))
    own = await create(old, f.condition(subject=reference(child)))
    feeds = await _feeds(old, new, stranger, h1, client)
    moved = child | {"extension": _child("vlay", nhs=830)["extension"]}
    await _put(client, moved)
    left, joined, never, health, system = [await feed.poll() for feed in feeds]
    assert sorted(left) == sorted(
        [("DELETE", reference(child), False), ("DELETE", reference(theirs), False)]
    )
    assert joined == [("PUT", reference(child), True)]
    assert never == []
    assert _deleted(health) == _deleted(system) == set()
    assert (await old.get(f"/Condition/{own['id']}")).status_code == 200


async def test_an_authority_still_responsible_through_its_flag_sees_no_deletion(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    old = await caller("vlax", "local-authority")
    await caller("vlay", "local-authority")
    child = await create(client, _child("vlax", nhs=840))
    await create(old, f.flag(subject=reference(child), author="Organization/vlax"))
    (feed,) = await _feeds(old)
    await _put(client, child | {"extension": _child("vlay", nhs=840)["extension"]})
    assert await feed.poll() == [("PUT", reference(child), True)]


@pytest.mark.parametrize("ending", ["inactive", "entered-in-error", "delete"])
async def test_an_authoritys_last_active_flag_ending_is_a_deletion_of_the_childs_records(
    client: httpx.AsyncClient, caller: Caller, ending: str
) -> None:
    la, other = await caller("vlax", "local-authority"), await caller("vlay", "local-authority")
    h1 = await caller("vh1", "health")
    child = await create(client, _child("vlay", nhs=850))
    first, second = [
        await create(la, f.flag(subject=reference(child), code=code, author="Organization/vlax"))
        for code in ("wheelchair-user", "hearing-aid")
    ]
    record = await create(h1, f.condition(subject=reference(child)))
    ending_feed, named_feed, health_feed = await _feeds(la, other, h1)
    own = {reference(first), reference(second)} if ending == "delete" else set()
    await _end(la, first, ending)
    assert _deleted(await ending_feed.poll()) - own == set()  # responsible through the second
    await _end(la, second, ending)
    assert _deleted(await ending_feed.poll()) - own == {reference(child), reference(record)}
    assert _deleted(await named_feed.poll()) == _deleted(await health_feed.poll()) == own
    assert (await la.get(f"/Flag/{first['id']}")).status_code in (200, 410)  # its own


async def _end(client: httpx.AsyncClient, flag: dict[str, Any], ending: str) -> None:
    if ending == "delete":
        response = await client.delete(f"/Flag/{flag['id']}")
        assert response.status_code in (200, 204), response.text
        return
    await _put(client, flag | {"status": ending})


async def test_a_record_moved_to_another_child_is_a_deletion_for_the_first_childs_authority(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    h1 = await caller("vh1", "health")
    first, second = await caller("vla1", "local-authority"), await caller("vla2", "local-authority")
    stranger = await caller("vla3", "local-authority")
    one = await create(client, _child("vla1", nhs=860))
    two = await create(client, _child("vla2", nhs=870))
    made = await create(h1, f.condition(subject=reference(one)))
    feeds = await _feeds(first, second, stranger, h1, client)
    await _put(h1, made | {"subject": {"reference": reference(two)}})
    lost, gained, never, author, system = [await feed.poll() for feed in feeds]
    assert lost == [("DELETE", reference(made), False)]
    assert gained == [("PUT", reference(made), True)]
    assert never == []
    assert author == _about(system, made) == [("PUT", reference(made), True)]


async def test_paging_one_entry_at_a_time_across_deletions_skips_and_repeats_nothing(
    client: httpx.AsyncClient, caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, h1 = await caller("vlax", "local-authority"), await caller("vh1", "health")
    await caller("vlay", "local-authority")
    child = await create(client, _child("vlax", nhs=880))
    records = [await create(h1, f.condition(subject=reference(child))) for _ in range(3)]
    whole, single = Feed(old), Feed(old, count=1)
    await whole.poll()
    single.since = whole.since
    frozen = repository.now_micros()  # SQLite: every change below at one instant
    monkeypatch.setattr(repository, "now_micros", lambda: frozen)
    own = await create(old, f.condition(subject=reference(child)))
    await _put(client, child | {"extension": _child("vlay", nhs=880)["extension"]})
    await _put(old, own | {"onsetDateTime": "2025-01-01"})  # a version it sees, after them
    monkeypatch.undo()
    everything = await whole.poll()
    assert await single.poll() == everything
    hidden = [("DELETE", reference(r), False) for r in [child, *records]]
    mine = [("POST", reference(own), True), ("PUT", reference(own), True)]
    assert sorted(everything) == sorted(hidden + mine)
    assert everything.index(mine[0]) < everything.index(mine[1])
    assert await Feed(old, count=1).poll() == await Feed(old).poll()  # whole history too


async def test_an_authoritys_last_two_flags_ended_at_once_still_leave_it_deletions(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    """Each write ending one of the two sees the other's outcome (PostgreSQL: one waits for
    the other's lock on who is responsible for the child), so one of them records the loss."""
    la = await caller("vlax", "local-authority")
    await caller("vlay", "local-authority")
    children, flags = [], []
    for n in range(4):
        child = await create(client, _child("vlay", nhs=900 + 10 * n))
        children.append(child)
        for code in ("wheelchair-user", "hearing-aid"):
            made = f.flag(subject=reference(child), code=code, author="Organization/vlax")
            flags.append(await create(la, made))
    (feed,) = await _feeds(la)
    await asyncio.gather(*(_put(la, flag | {"status": "inactive"}) for flag in flags))
    assert _deleted(await feed.poll()) == {reference(child) for child in children}


@pytest.mark.parametrize(
    "cursor",
    [
        "1.2.3.2",
        "1.2.3.1.1",
        "1.2",
        "a.2.3",
        "999999999999999999.1.1",  # a watermark past the last instant FHIR can write
        "253402300800000000.1.1",
        "5.5.1",  # a last change at or after its own watermark
    ],
)
async def test_a_history_cursor_not_issued_here_is_400(
    client: httpx.AsyncClient, cursor: str
) -> None:
    response = await client.get("/_history", params={"_cursor": cursor})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["_cursor"]


async def test_an_export_since_lists_what_a_child_moving_away_hid_as_deleted(
    client: httpx.AsyncClient, caller: Caller
) -> None:
    h1 = await caller("vh1", "health")
    old, stranger = await caller("vlax", "local-authority"), await caller("vlaz", "local-authority")
    await caller("vlay", "local-authority")
    child = await create(client, _child("vlax", nhs=840))
    theirs = await create(h1, f.condition(subject=reference(child)))
    first = await exports.export(old, _type="Patient,Condition")
    assert exports.ids((await exports.by_type(old, first))["Condition"]) == {theirs["id"]}
    await _put(client, child | {"extension": _child("vlay", nhs=840)["extension"]})
    since = first["transactionTime"]
    later = await exports.export(old, _type="Patient,Condition", _since=since)
    assert later["output"] == []
    listed = [line for item in later["deleted"] for line in await exports.lines(old, item["url"])]
    assert sorted(e["request"]["url"] for b in listed for e in b.get("entry", [])) == sorted(
        [reference(child), reference(theirs)]
    )
    unseen = await exports.export(stranger, _type="Patient,Condition", _since=since)
    assert unseen["output"] == [] and unseen["deleted"] == []
