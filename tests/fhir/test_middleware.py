"""The headers every response carries, and a 500 that tells the client the connection closes."""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings
from tests import factories as f
from tests.http import FHIR_JSON


async def test_fhir_answers_are_not_stored_nor_sniffed(client: httpx.AsyncClient) -> None:
    created = await client.post("/Patient", json=f.patient(), headers={"content-type": FHIR_JSON})
    for response in (
        created,
        await client.get(created.headers["location"]),
        await client.get("/Patient"),
        await client.get("/Patient/unknown"),
        await client.get("/metadata"),
        await client.post("/Patient/1", json=f.patient()),
    ):
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "server" not in response.headers


async def test_every_response_says_nosniff(client: httpx.AsyncClient) -> None:
    transport = client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as root:
        for path in ("/_ping", "/openapi.json", "/nowhere", "/fhir/Patient"):
            response = await root.get(path)
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers.get_list("cache-control") == ["no-store"], path


async def test_a_response_keeps_its_own_cache_control(client: httpx.AsyncClient) -> None:
    transport = client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as root:
        response = await root.post("/auth/token", data={"grant_type": "nothing"})
    assert response.headers.get_list("cache-control") == ["no-store"]


class Boom(RuntimeError):
    pass


async def _boom() -> None:
    raise Boom("a bug")


def app_that_fails(settings: Settings) -> FastAPI:
    app = create_app(settings)
    app.add_api_route("/boom", _boom, methods=["GET"])
    return app


async def test_an_unexpected_error_is_a_500_outcome_with_connection_close(
    settings: Settings,
) -> None:
    app = app_that_fails(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        response = await http.get("/boom", headers={"x-request-id": "r-1"})
    assert response.status_code == 500
    assert response.json()["issue"][0]["code"] == "exception"
    assert response.headers["connection"] == "close"
    assert response.headers["x-request-id"] == "r-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


class Server(uvicorn.Server):
    """uvicorn's server, telling when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """The app behind a real uvicorn server on a free port of this host, as `safeguard serve`
    runs it (no Server header)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="critical", server_header=False, access_log=False)
    server = Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    ready = asyncio.create_task(server.ready.wait())
    try:
        await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
        assert server.started
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        ready.cancel()
        await task
        sock.close()


async def test_after_a_500_the_client_can_go_on(settings: Settings) -> None:
    async with serving(app_that_fails(settings)) as origin, httpx.AsyncClient() as http:
        failed = await http.get(f"{origin}/boom")
        assert failed.status_code == 500
        assert failed.headers["connection"] == "close"
        assert "server" not in failed.headers
        for _ in range(3):
            assert (await http.get(f"{origin}/_ping")).status_code == 200
            assert (await http.get(f"{origin}/boom")).status_code == 500


async def test_two_request_ids_echo_the_first_only(client: httpx.AsyncClient) -> None:
    headers = [("X-Request-ID", "first-id"), ("X-Request-ID", "second-id")]
    response = await client.get("/metadata", headers=headers)
    assert response.headers.get_list("x-request-id") == ["first-id"]
