"""Work stops when the client disconnects: a batch runs no more entries, a transaction writes
nothing, a search's `_include:iterate` rounds stop; each request is audited as status 499, a
failure. A client that stays connected is served as before. On both databases.

httpx's ASGI transport cannot disconnect, so these requests are driven by hand: `receive`
gives the body, then `http.disconnect` (as a server does once the client has gone) or, for a
connected client, nothing until the answer has been sent.
"""

import asyncio
import uuid
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from starlette.types import Message

from tests import factories as f
from tests.audit.trails import by_request, resources, stored_events
from tests.http import FHIR_JSON, create, post_bundle, reference
from tests.tokens import bearer

READS = 200


async def _exchange(
    app: FastAPI,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    leaves: bool,
    request_id: str | None = None,
) -> tuple[int, str]:
    """Send one request to the app as a server would; (status of the answer, request id).
    A client that `leaves` disconnects once its body has been read."""
    path, _, query = target.partition("?")
    request_id = request_id or f"presence-{uuid.uuid4().hex}"
    headers = {**await bearer(app), "content-type": FHIR_JSON, "x-request-id": request_id}
    if body:
        headers["content-length"] = str(len(body))
    answered, messages = asyncio.Event(), [{"type": "http.request", "body": body}]
    sent: list[Message] = []

    async def receive() -> Message:
        if messages:
            return messages.pop()
        if not leaves:
            await answered.wait()  # a server hears nothing more until the answer is sent
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"test")]
        + [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start"), request_id


async def _event(app: FastAPI, request_id: str) -> dict[str, Any]:
    """The one AuditEvent of a request."""
    (event,) = by_request(await stored_events(app))[request_id]
    return event


def _batch_of_reads(targets: list[str]) -> bytes:
    entries = [f.entry(method="GET", url=target) for target in targets]
    return orjson.dumps(f.bundle(kind="batch", entries=entries))


async def _many_patients(client: httpx.AsyncClient) -> list[str]:
    entries = [
        f.entry(method="POST", url="Patient", resource=f.patient(given=f"Child{n}"))
        for n in range(READS)
    ]
    response = await post_bundle(client, f.bundle(kind="transaction", entries=entries))
    assert response.status_code == 200, response.text
    return [
        e["response"]["location"].split("/_history")[0] for e in response.json().get("entry", [])
    ]


async def test_a_batch_whose_client_left_runs_no_more_entries(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    targets = await _many_patients(client)
    status, request_id = await _exchange(
        app, "POST", "/fhir", _batch_of_reads(targets), leaves=True
    )
    assert status == 499
    event = await _event(app, request_id)
    assert event["outcome"] == "4" and event["outcomeDesc"].startswith("HTTP 499: the client")
    assert len(resources(event)) < READS  # the reads it ran, each named by its AuditEvent


async def test_a_batch_whose_client_stays_runs_every_entry(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    targets = await _many_patients(client)
    status, request_id = await _exchange(
        app, "POST", "/fhir", _batch_of_reads(targets), leaves=False
    )
    assert status == 200
    event = await _event(app, request_id)
    assert event["outcome"] == "0" and resources(event) == set(targets)


async def test_a_batch_that_a_retry_may_replay_runs_to_its_end_when_the_client_leaves(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """With a UUID X-Request-ID the batch's answer is stored for the client's retry, and its
    entries commit one by one: stopping half-way would leave the retry to write them again."""
    family = "Retried" + uuid.uuid4().hex[:12]
    entries = [
        f.entry(method="POST", url="Patient", resource=f.patient(family=family, given=f"C{n}"))
        for n in range(50)
    ]
    body = orjson.dumps(f.bundle(kind="batch", entries=entries))
    request_id = str(uuid.uuid4())
    first, _ = await _exchange(app, "POST", "/fhir", body, leaves=True, request_id=request_id)
    retried, _ = await _exchange(app, "POST", "/fhir", body, leaves=False, request_id=request_id)
    assert (first, retried) == (200, 200)
    found = (await client.get("/Patient", params={"family": family, "_count": 100})).json()
    assert found["total"] == 50


async def test_a_transaction_whose_client_left_writes_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    family = "Left" + uuid.uuid4().hex[:12]
    entries = [
        f.entry(method="POST", url="Patient", resource=f.patient(family=family, given=f"C{n}"))
        for n in range(20)
    ]
    body = orjson.dumps(f.bundle(kind="transaction", entries=entries))
    status, request_id = await _exchange(app, "POST", "/fhir", body, leaves=True)
    assert status == 499
    found = (await client.get("/Patient", params={"family": family})).json()
    assert found["total"] == 0 and not found.get("entry")
    event = await _event(app, request_id)
    assert event["outcome"] == "4" and not resources(event)


async def test_include_iterate_rounds_stop_when_the_client_leaves(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    child = reference(await create(client, f.patient()))
    flag = await create(client, f.flag(subject=child))
    search = f"/fhir/Flag?_id={flag['id']}&_include:iterate=Flag:subject"
    status, request_id = await _exchange(app, "GET", search, leaves=True)
    assert status == 499 and (await _event(app, request_id))["outcome"] == "4"
    status, request_id = await _exchange(app, "GET", search, leaves=False)
    assert status == 200 and (await _event(app, request_id))["outcome"] == "0"
