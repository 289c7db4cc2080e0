"""Every /fhir request but the open ones needs a valid bearer token, checked before routing;
a revoked client's token stops at once; a rate limit per client, when set."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from app.auth.clients import revoke
from app.main import create_app
from app.settings import Settings
from tests import factories as f
from tests.audit.trails import by_request, client_of, stored_events
from tests.conftest import BASE
from tests.http import FHIR_JSON
from tests.tokens import SYSTEM_CLIENT, authority, token_for

ROUTES = [
    ("GET", "/Patient/123"),
    ("GET", "/Patient/123/_history/1"),
    ("GET", "/Patient?name=x"),
    ("POST", "/Patient/_search"),
    ("GET", "/_history"),
    ("GET", "/Patient/_history"),
    ("POST", "/Patient"),
    ("PUT", "/Patient/123"),
    ("PATCH", "/Patient/123"),
    ("DELETE", "/Patient/123"),
    ("POST", ""),
    ("GET", "/Patient/123/$safeguarding-summary"),
    ("GET", "/SearchParameter/Flag-status"),
    ("GET", "/ValueSet/$validate-code?code=x"),
    ("GET", "/Observation/1"),
    ("POST", "/metadata"),
]


@pytest.fixture
async def anonymous(client: httpx.AsyncClient, app: FastAPI) -> httpx.AsyncClient:
    """A client of the same app that sends no token."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def assert_unauthorized(response: httpx.Response, invalid_token: bool) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) is invalid_token
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "login"
    assert "x-request-id" in response.headers


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_without_a_token_is_401(
    anonymous: httpx.AsyncClient, method: str, path: str
) -> None:
    # an oversized, wrongly typed body: the 401 still comes first
    response = await anonymous.request(
        method, BASE + path, content=b"<x/>" * 40_000, headers={"content-type": "text/xml"}
    )
    assert_unauthorized(response, invalid_token=False)


@pytest.mark.parametrize(
    "header", ["Bearer not-a-jwt", "Bearer a.b.c", "Bearer eyJhbGciOiJub25lIn0.e30."]
)
async def test_a_bad_token_is_401_invalid_token(anonymous: httpx.AsyncClient, header: str) -> None:
    response = await anonymous.get(BASE + "/Patient", headers={"Authorization": header})
    assert_unauthorized(response, invalid_token=True)


async def test_a_token_of_another_server_is_401(
    anonymous: httpx.AsyncClient, settings: Settings
) -> None:
    other = create_app(settings.model_copy(update={"base_url": "http://elsewhere/fhir"}))
    async with other.router.lifespan_context(other):
        foreign = await token_for(other)
    response = await anonymous.get(
        BASE + "/Patient", headers={"Authorization": f"Bearer {foreign}"}
    )
    assert_unauthorized(response, invalid_token=True)


async def test_basic_authorization_is_401(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get(BASE + "/Patient", headers={"Authorization": "Basic eDp5"})
    assert response.status_code == 401


async def test_metadata_smart_configuration_and_health_are_open(
    anonymous: httpx.AsyncClient,
) -> None:
    for path in ("/fhir/metadata", "/fhir/.well-known/smart-configuration", "/_ping", "/_status"):
        assert (await anonymous.get("http://test" + path)).status_code == 200, path
    assert (await anonymous.get("http://test/auth/jwks")).status_code == 200


async def delivered() -> None:
    """Give PostgreSQL time to deliver a revocation's notification to the server's listening
    connection (it takes well under a millisecond; SQLite's check needs none)."""
    await asyncio.sleep(0.1)


async def test_a_revoked_clients_token_stops_at_once(
    anonymous: httpx.AsyncClient, app: FastAPI
) -> None:
    token = await token_for(app, "soon-revoked", role="health", scope="system/Patient.rs")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await anonymous.get(BASE + "/Patient", headers=headers)).status_code == 200
    assert await revoke(authority(app).db, "soon-revoked")
    await delivered()
    assert_unauthorized(await anonymous.get(BASE + "/Patient", headers=headers), True)


async def test_revocation_by_another_process_stops_the_token(
    anonymous: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    token = await token_for(app, "revoked-elsewhere", role="health", scope="system/Patient.rs")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await anonymous.get(BASE + "/Patient", headers=headers)).status_code == 200
    elsewhere = create_app(settings)  # its own connections, as the CLI would have
    async with elsewhere.router.lifespan_context(elsewhere):
        assert await revoke(authority(elsewhere).db, "revoked-elsewhere")
    await delivered()
    assert (await anonymous.get(BASE + "/Patient", headers=headers)).status_code == 401


async def test_over_the_rate_limit_is_429_with_retry_after(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    limited = create_app(settings.model_copy(update={"rate_limit_per_minute": 2}))
    async with limited.router.lifespan_context(limited):
        transport = httpx.ASGITransport(app=limited)
        headers = {"Authorization": f"Bearer {await token_for(limited)}"}
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
            statuses = [(await http.get("/Patient")).status_code for _ in range(3)]
            throttled = await http.get("/Patient")
            other = await token_for(limited, "another-client", scope="system/Patient.rs")
            elsewhere = await http.get("/Patient", headers={"Authorization": f"Bearer {other}"})
        recorded = by_request(await stored_events(limited))[throttled.headers["x-request-id"]]
    assert [client_of(event) for event in recorded] == [SYSTEM_CLIENT]  # the refusal names it
    assert statuses == [200, 200, 429]
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    assert throttled.json()["issue"][0]["code"] == "throttled"
    assert elsewhere.status_code == 200


async def test_no_rate_limit_by_default(client: httpx.AsyncClient) -> None:
    for _ in range(30):
        assert (await client.get("/Organization")).status_code == 200


async def test_a_write_with_a_token_is_recorded(client: httpx.AsyncClient) -> None:
    created = await client.post("/Organization", json=f.organization(), headers={
        "content-type": FHIR_JSON
    })  # fmt: skip
    assert created.status_code == 201
