"""CORS: off by default; SAFEGUARD_CORS_ORIGINS allows the origins it names, and only them."""

from collections.abc import AsyncIterator

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests.http import BASE
from tests.tokens import bearer

ALLOWED = "https://app.example.org"
PREFLIGHT = {
    "origin": ALLOWED,
    "access-control-request-method": "PUT",
    "access-control-request-headers": "authorization, content-type, if-match",
}


@pytest.fixture
async def cors_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app allowing ALLOWED and one more origin, with a system token."""
    configured = settings.model_copy(update={"cors_origins": f" {ALLOWED}, https://b.example "})
    app = create_app(configured)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = await bearer(app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
            yield http


def test_the_setting_is_a_comma_separated_list() -> None:
    assert Settings(cors_origins="").cors_allow_list == []
    assert Settings(cors_origins="https://a, https://b,").cors_allow_list == [
        "https://a",
        "https://b",
    ]


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    preflight = await client.options("/Patient", headers=PREFLIGHT)
    assert preflight.status_code == 405
    response = await client.get("/Patient", headers={"origin": ALLOWED})
    assert "access-control-allow-origin" not in response.headers


async def test_a_preflight_from_an_allowed_origin_needs_no_token(
    cors_client: httpx.AsyncClient,
) -> None:
    del cors_client.headers["authorization"]
    response = await cors_client.options("/Patient/1", headers=PREFLIGHT)
    assert response.status_code == 204, response.text
    assert response.headers["access-control-allow-origin"] == ALLOWED
    methods = response.headers["access-control-allow-methods"]
    assert {m.strip() for m in methods.split(",")} == {"GET", "POST", "PUT", "PATCH", "DELETE"}
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "if-none-exist", "prefer", "x-request-id"):
        assert header in allowed
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_preflight_from_another_origin_is_refused(
    cors_client: httpx.AsyncClient,
) -> None:
    response = await cors_client.options(
        "/Patient", headers={**PREFLIGHT, "origin": "https://evil.example"}
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_actual_responses_name_allowed_origins_only(
    cors_client: httpx.AsyncClient,
) -> None:
    allowed = await cors_client.get("/Patient", headers={"origin": ALLOWED})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    exposed = allowed.headers["access-control-expose-headers"].lower()
    for header in ("etag", "location", "last-modified", "x-request-id", "content-location"):
        assert header in exposed
    other = await cors_client.get("/Patient", headers={"origin": "https://evil.example"})
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


async def test_without_a_token_an_actual_request_is_still_401(
    cors_client: httpx.AsyncClient,
) -> None:
    del cors_client.headers["authorization"]
    response = await cors_client.get("/Patient", headers={"origin": ALLOWED})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == ALLOWED
