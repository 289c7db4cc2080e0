"""Each request's one log line and metrics name it by the template of the route that served
it, whichever way it was routed, never by its path; the log level turns the lines off."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.fhir.observing import logged_id
from app.settings import Settings
from tests import factories as f
from tests.fhir.test_middleware import Boom, app_that_fails
from tests.http import create


def request_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The request lines written to stderr since the last call."""
    return [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]


@contextmanager
def requests_log_at(level: int) -> Iterator[None]:
    logger = logging.getLogger("safeguard.requests")
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)


async def test_each_way_of_routing_names_its_route_template(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(7401)))
    root = httpx.AsyncClient(transport=client._transport, base_url="http://test")
    requests = {
        f"/Patient/{child['id']}": "/fhir/{resource_type}/{logical_id}",  # a shortcut
        f"/Patient/{child['id']}/Flag": "/fhir/Patient/{logical_id}/Flag",
        f"/Patient/{child['id']}/$safeguarding-summary": "/fhir/Patient/{logical_id}/"
        "$safeguarding-summary",
        "/.well-known/smart-configuration": "/fhir/.well-known/smart-configuration",  # mounted
    }
    capsys.readouterr()
    for path in requests:
        assert (await client.get(path)).status_code == 200, path
    assert (await root.put("/_ping")).status_code == 405  # a partial match
    assert (await root.get("/nowhere")).status_code == 404
    assert (await root.get("/fhir/Patient")).status_code == 401  # refused before routing
    assert (await client.request("BREW", "/Patient")).status_code == 405
    await root.aclose()
    routes = [(line["route"], line["method"]) for line in request_lines(capsys)]
    assert routes == [
        *((template, "GET") for template in requests.values()),
        ("/_ping", "PUT"),
        ("unmatched", "GET"),
        ("unrouted", "GET"),
        ("/fhir/{resource_type}", "other"),
    ]


async def test_below_info_no_request_line_is_written(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    with requests_log_at(logging.WARNING):
        assert (await client.get("/Patient")).status_code == 200
    assert request_lines(capsys) == []
    assert (await client.get("/Patient")).status_code == 200
    [line] = request_lines(capsys)
    assert line["route"] == "/fhir/{resource_type}" and line["level"] == "info"


async def _fails(thing: str) -> None:
    raise Boom("a bug")


async def test_an_unexpected_error_is_logged_by_its_route_not_its_path(
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app: FastAPI = app_that_fails(settings)
    app.add_api_route("/boom/{thing}", _fails, methods=["GET"])
    nhs = f.nhs_number(7402)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as http,
    ):
        capsys.readouterr()
        assert (await http.get(f"/boom/{nhs}")).status_code == 500
    [line] = request_lines(capsys)
    assert (line["route"], line["status"]) == ("/boom/{thing}", 500)
    [error] = [r.getMessage() for r in caplog.records if r.name == "safeguard"]
    assert error == "unhandled Boom on GET /boom/{thing}"


def test_a_request_id_is_logged_as_sent_only_when_it_is_a_uuid() -> None:
    given = "0D3C5E0E-4F3B-4C1D-9A57-2F1B6F0F8A11"
    assert logged_id(given) == given and logged_id(None) is None
    digested = logged_id("9000000009")
    assert digested is not None and digested.startswith("sha256:") and len(digested) == 23
    assert "9000000009" not in digested and digested == logged_id("9000000009")
