"""Retries with the same X-Request-ID (a UUID) get the first answer and write nothing new."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from app.access import ANONYMOUS, caller_for
from app.access.scopes import parse
from app.auth.clients import known_types
from app.errors import Unprocessable
from app.fhir.bundles import idempotency
from app.fhir.context import CALLER
from app.main import create_app
from app.settings import Settings
from app.storage import request_log
from app.storage.repository import Repository
from tests import factories as f
from tests.conftest import BASE, app_context, database
from tests.http import FHIR_JSON, create, outcome_expressions
from tests.tokens import bearer

TEST_SYSTEM = caller_for(
    "test-system", "test-org", "system", parse("system/*.cruds", known_types()), known_types()
)
ANSWER_HEADERS = ("location", "etag", "last-modified", "content-type", "content-length")


def _id_header(request_id: str | None = None) -> dict[str, str]:
    return {"x-request-id": request_id or str(uuid.uuid4()), "content-type": FHIR_JSON}


def _answer(response: httpx.Response) -> tuple[int, dict[str, str | None], bytes]:
    """What a retry must repeat: status, the write's headers and the body bytes."""
    headers = {name: response.headers.get(name) for name in ANSWER_HEADERS}
    return response.status_code, headers, response.content


async def _total(client: httpx.AsyncClient, resource_type: str) -> int:
    found = await client.get(f"/{resource_type}", params={"_total": "accurate"})
    total: int = found.json()["total"]
    return total


async def _versions(client: httpx.AsyncClient, reference: str) -> list[str]:
    history = (await client.get(f"/{reference}/_history")).json()
    return [e["request"]["method"] for e in history.get("entry", [])]


async def test_a_create_retried_ten_times_makes_one_resource_with_one_answer(
    client: httpx.AsyncClient,
) -> None:
    headers, body = _id_header(), json.dumps(f.patient(nhs=f.nhs_number(7)))
    answers = [
        _answer(await client.post("/Patient", content=body, headers=headers)) for _ in range(10)
    ]
    assert answers[0][0] == 201 and answers[0][1]["location"] is not None
    assert all(answer == answers[0] for answer in answers)
    assert await _total(client, "Patient") == 1


async def test_an_update_retried_writes_one_version(client: httpx.AsyncClient) -> None:
    created = await create(client, f.organization())
    url, headers = f"/Organization/{created['id']}", _id_header()
    changed = json.dumps(created | {"name": "Hillside Surgery"})
    first = await client.put(url, content=changed, headers=headers)
    again = await client.put(url, content=changed, headers=headers)
    assert first.status_code == 200 and _answer(again) == _answer(first)
    assert await _versions(client, url.lstrip("/")) == ["PUT", "POST"]


async def test_a_patch_retried_writes_one_version(client: httpx.AsyncClient) -> None:
    created = await create(client, f.patient())
    url = f"/Patient/{created['id']}"
    patch = json.dumps([{"op": "replace", "path": "/gender", "value": "male"}])
    headers = _id_header() | {"content-type": "application/json-patch+json"}
    first = await client.patch(url, content=patch, headers=headers)
    again = await client.patch(url, content=patch, headers=headers)
    assert first.status_code == 200 and _answer(again) == _answer(first)
    assert await _versions(client, url.lstrip("/")) == ["PATCH", "POST"]


async def test_a_delete_retried_gets_the_first_answer(client: httpx.AsyncClient) -> None:
    created = await create(client, f.organization())
    url, headers = f"/Organization/{created['id']}", _id_header()
    first = await client.delete(url, headers=headers)
    again = await client.delete(url, headers=headers)
    assert first.headers["etag"] == 'W/"2"'  # a fresh delete of a deleted one has no ETag
    assert _answer(again) == _answer(first)
    assert await _versions(client, url.lstrip("/")) == ["DELETE", "POST"]


async def test_conditional_update_and_delete_retried_write_once(
    client: httpx.AsyncClient,
) -> None:
    url, body = "/Organization?identifier=A81001", json.dumps(f.organization())
    put_headers, delete_headers = _id_header(), _id_header()
    answers = [await client.put(url, content=body, headers=put_headers) for _ in range(2)]
    assert answers[0].status_code == 201 and _answer(answers[1]) == _answer(answers[0])
    deleted = [await client.delete(url, headers=delete_headers) for _ in range(2)]
    assert _answer(deleted[1]) == _answer(deleted[0])
    reference = answers[0].json()["id"]
    assert await _versions(client, f"Organization/{reference}") == ["DELETE", "PUT"]


async def test_the_request_id_is_a_uuid_in_any_case(client: httpx.AsyncClient) -> None:
    request_id, body = str(uuid.uuid4()), json.dumps(f.organization())
    first = await client.post("/Organization", content=body, headers=_id_header(request_id))
    again = await client.post("/Organization", content=body, headers=_id_header(request_id.upper()))
    assert _answer(again) == _answer(first)
    assert await _total(client, "Organization") == 1


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/Organization", f.organization(name="Another Surgery")),
        ("POST", "/Organization?_pretty=true", f.organization()),
        ("PUT", "/Organization/la-E06000001", f.organization() | {"id": "la-E06000001"}),
    ],
)
async def test_the_same_id_on_another_request_is_422(
    client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any]
) -> None:
    headers = _id_header()
    first = await client.post(
        "/Organization", content=json.dumps(f.organization()), headers=headers
    )
    assert first.status_code == 201
    other = await client.request(method, url, content=json.dumps(body), headers=headers)
    assert other.status_code == 422
    assert outcome_expressions(other) == ["X-Request-ID"]
    assert other.json()["issue"][0]["code"] == "business-rule"
    assert await _total(client, "Organization") == 1


async def test_a_request_id_that_is_not_a_uuid_makes_no_retry_idempotent(
    client: httpx.AsyncClient,
) -> None:
    headers, body = _id_header("trace-4f1c2a"), json.dumps(f.organization())
    for _ in range(2):
        assert (
            await client.post("/Organization", content=body, headers=headers)
        ).status_code == 201
    assert await _total(client, "Organization") == 2


async def test_a_failed_write_is_not_remembered(client: httpx.AsyncClient) -> None:
    created = await create(client, f.organization())
    url, body = f"/Organization/{created['id']}", json.dumps(created | {"name": "Renamed"})
    headers = _id_header()
    stale = await client.put(url, content=body, headers=headers | {"if-match": 'W/"7"'})
    assert stale.status_code == 412
    retried = await client.put(url, content=body, headers=headers)
    assert retried.status_code == 200 and retried.headers["etag"] == 'W/"2"'


async def test_a_write_refused_by_a_rule_is_not_remembered(client: httpx.AsyncClient) -> None:
    headers, body = _id_header(), json.dumps(f.flag(subject="Patient/child-1"))
    refused = await client.post("/Flag", content=body, headers=headers)
    assert refused.status_code == 422  # the Patient does not exist yet
    child = f.patient() | {"id": "child-1"}
    assert (await client.put("/Patient/child-1", json=child)).status_code == 201
    retried = await client.post("/Flag", content=body, headers=headers)
    assert retried.status_code == 201
    assert await _total(client, "Flag") == 1


# Every caller is anonymous until access control lands, so that one client's request ids do
# not answer another's cannot be shown over HTTP yet; the key includes the client.


@pytest.fixture
async def forgetful_client(app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a second app on the same database that keeps answers for 0 seconds."""
    forgetful = create_app(settings.model_copy(update={"idempotency_window_seconds": 0}))
    async with forgetful.router.lifespan_context(forgetful):
        transport = httpx.ASGITransport(app=forgetful)
        headers = await bearer(forgetful)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
            yield http


async def test_after_the_window_a_retry_writes_again_and_its_answer_is_kept(
    client: httpx.AsyncClient, forgetful_client: httpx.AsyncClient
) -> None:
    headers, body = _id_header(), json.dumps(f.organization())
    first = await client.post("/Organization", content=body, headers=headers)
    late = await forgetful_client.post("/Organization", content=body, headers=headers)
    assert late.status_code == 201 and late.json()["id"] != first.json()["id"]
    again = await client.post("/Organization", content=body, headers=headers)
    assert _answer(again) == _answer(late)
    assert await _total(client, "Organization") == 2


async def test_concurrent_identical_creates_make_one_resource(client: httpx.AsyncClient) -> None:
    headers, body = _id_header(), json.dumps(f.patient(nhs=f.nhs_number(8)))
    responses = await asyncio.gather(
        *(client.post("/Patient", content=body, headers=headers) for _ in range(10))
    )
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await _total(client, "Patient") == 1


async def test_concurrent_creates_with_one_id_and_different_bodies_write_one(
    client: httpx.AsyncClient,
) -> None:
    headers = _id_header()
    bodies = [json.dumps(f.organization(name=f"Surgery {n}")) for n in range(6)]
    responses = await asyncio.gather(
        *(client.post("/Organization", content=body, headers=headers) for body in bodies)
    )
    assert sorted(r.status_code for r in responses) == [201] + [422] * 5
    assert await _total(client, "Organization") == 1


def _request(app: FastAPI, method: str, path: str, body: bytes, request_id: str) -> Request:
    """A request as the Bundle route receives it, its body not yet read."""
    scope = {
        "type": "http",
        "app": app,
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(b"x-request-id", request_id.encode()), (b"content-type", FHIR_JSON.encode())],
        CALLER: TEST_SYSTEM,  # the caller the `client` fixture's token stands for
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


async def test_a_batch_answer_is_kept_and_replayed_without_running_again(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    context, request_id = app_context(app), str(uuid.uuid4())
    answer = Response(b'{"resourceType":"Bundle"}', 200, {"etag": 'W/"1"'}, FHIR_JSON)
    runs: list[int] = []

    async def run() -> Response:
        runs.append(1)
        return answer

    def batch(body: bytes) -> Any:
        return idempotency.batch_once(
            _request(app, "POST", "/fhir", body, request_id), context, run
        )

    first, replayed = await batch(b"{}"), await batch(b"{}")
    assert len(runs) == 1
    assert (replayed.status_code, replayed.raw_headers, replayed.body) == (
        first.status_code,
        first.raw_headers,
        first.body,
    )
    with pytest.raises(Unprocessable):
        await batch(b"[]")


async def test_a_batch_that_raises_leaves_its_id_free(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    context, request_id = app_context(app), str(uuid.uuid4())

    async def failing() -> Response:
        raise RuntimeError("the batch broke")

    with pytest.raises(RuntimeError):
        await idempotency.batch_once(
            _request(app, "POST", "/fhir", b"{}", request_id), context, failing
        )
    answer = Response(b"{}", 200)
    again = await idempotency.batch_once(
        _request(app, "POST", "/fhir", b"{}", request_id), context, lambda: _ready(answer)
    )
    assert again is answer


async def _ready(response: Response) -> Response:
    return response


async def test_the_purge_keeps_pace_when_expired_records_pile_up(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """While a purge finds a full batch the next write purges again, so expired records go at
    the rate writes come, not 1,000 a minute."""
    piled = idempotency.PURGE_LIMIT * 2 + 500
    async with database(app).transaction() as conn:
        for n in range(piled):
            await request_log.claim(Repository(conn, ANONYMOUS), f"old-{n}", "f" * 64)
        await conn.execute("UPDATE request_log SET created_at = $1", 0)
    idempotency._purge_clock.due = 0.0
    for _ in range(3):
        headers = {"x-request-id": str(uuid.uuid4()), "content-type": FHIR_JSON}
        created = await client.post("/Organization", json=f.organization(), headers=headers)
        assert created.status_code == 201, created.text
    async with database(app).reader() as conn:
        left = await conn.fetch("SELECT request_id FROM request_log WHERE created_at = $1", 0)
    assert left == []
