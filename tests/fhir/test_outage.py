"""Honest answers when PostgreSQL goes away: 503 with Retry-After and a transient
OperationOutcome, "outcome unknown" when a write's COMMIT got no answer, the truth from a
replay with the same X-Request-ID, and recovery once the database is back. The faults are
made in the wire between the app and the database (`tests.faults`)."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from app.settings import Settings
from app.storage.migrate import upgrade
from tests import factories as f
from tests.conftest import BASE, PG_ADMIN_URL, run_admin
from tests.faults import Relay, relay_to
from tests.http import FHIR_JSON, client_with

pytestmark = pytest.mark.skipif(PG_ADMIN_URL is None, reason="needs SAFEGUARD_TEST_DATABASE_URL")


@pytest.fixture(scope="module")
def database_name() -> Iterator[str]:
    """A migrated PostgreSQL database of this module's own."""
    assert PG_ADMIN_URL is not None
    name = f"safeguard_outage_{uuid.uuid4().hex[:12]}"
    asyncio.run(run_admin(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
        yield name
    finally:
        asyncio.run(run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    assert PG_ADMIN_URL is not None
    server = urlsplit(PG_ADMIN_URL)
    async with relay_to(server.hostname or "127.0.0.1", server.port or 5432) as relay:
        yield relay


@pytest.fixture
async def client(database_name: str, relay: Relay) -> AsyncIterator[httpx.AsyncClient]:
    """The system client of an app reaching its database through `relay` (no background
    sealing, so the only COMMITs are the requests')."""
    user = urlsplit(PG_ADMIN_URL).username or "root"
    url = f"postgresql://{user}@127.0.0.1:{relay.port}/{database_name}"
    settings = Settings(database_url=url, base_url=BASE, audit_seal_interval_seconds=0.0)
    async with client_with(settings) as http:
        yield http


def _transient(response: httpx.Response) -> str:
    """The diagnostics of a 503 that says when to retry; fails on any other answer."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"].startswith(FHIR_JSON)
    (issue,) = response.json()["issue"]
    assert issue["code"] == "transient"
    return str(issue["diagnostics"])


async def _put(client: httpx.AsyncClient, logical_id: str, request_id: str) -> httpx.Response:
    headers = {"x-request-id": request_id, "content-type": FHIR_JSON}
    body = f.patient(family="Outage") | {"id": logical_id}
    return await client.put(f"/Patient/{logical_id}", json=body, headers=headers)


async def test_a_database_gone_answers_503_and_the_server_recovers_when_it_returns(
    client: httpx.AsyncClient, relay: Relay
) -> None:
    stored = await _put(client, "before", str(uuid.uuid4()))
    assert stored.status_code == 201
    relay.go_down()
    read = await client.get("/Patient/before")
    write = await client.post("/Patient", json=f.patient(), headers={"content-type": FHIR_JSON})
    for refused in (read, write):
        assert "cannot be reached" in _transient(refused)
    relay.down = False
    assert (await client.get("/Patient/before")).status_code == 200


async def test_a_commit_broken_before_the_server_saw_it_is_unknown_and_a_replay_writes(
    client: httpx.AsyncClient, relay: Relay
) -> None:
    request_id = str(uuid.uuid4())
    relay.cut_at = "before-commit"
    first = await _put(client, "lost", request_id)
    assert relay.cuts == 1
    assert _transient(first).startswith("outcome unknown")
    assert (await client.get("/Patient/lost")).status_code == 404  # in truth, not applied
    replay = await _put(client, "lost", request_id)
    assert replay.status_code == 201
    history = (await client.get("/Patient/lost/_history")).json()
    assert len(history.get("entry", [])) == 1


async def test_a_commit_that_held_but_lost_its_answer_is_unknown_and_a_replay_says_so(
    client: httpx.AsyncClient, relay: Relay
) -> None:
    request_id = str(uuid.uuid4())
    relay.cut_at = "after-commit"
    first = await _put(client, "kept", request_id)
    assert relay.cuts == 1
    assert _transient(first).startswith("outcome unknown")
    stored = await client.get("/Patient/kept")
    assert stored.status_code == 200  # in truth, applied
    replay = await _put(client, "kept", request_id)
    assert replay.status_code == 201  # the first answer, not a second write
    assert replay.headers["etag"] == stored.headers["etag"] == 'W/"1"'
    history = (await client.get("/Patient/kept/_history")).json()
    assert len(history.get("entry", [])) == 1
