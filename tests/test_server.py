"""Slow and idle clients are cut off: a request's head and its body each have a deadline,
on both of uvicorn's HTTP implementations; a client that leaves is logged in one line.
Checked against a real server over TCP."""

import asyncio
import logging
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
import pytest
from fastapi import Request
from starlette.responses import Response

from app.access import Caller
from app.cli import uvicorn_options
from app.main import create_app
from app.server import HttpToolsWithDeadlines, Implementation
from app.settings import Settings
from tests import factories as f
from tests.callers import scoped
from tests.http import FHIR_JSON
from tests.serving import PING, connect, serving

SHORT = 0.5  # seconds: the deadlines under test
CALLER: Caller = scoped("system/*.cruds")
both_implementations = pytest.mark.parametrize("http", ["h11", "httptools"])


def post_head(length: int, path: str = "/fhir/Patient") -> bytes:
    """The head of a POST of a FHIR JSON body of `length` bytes."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {FHIR_JSON}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def quick(settings: Settings, http: Implementation) -> AbstractAsyncContextManager[int]:
    """A server whose head and body deadlines are `SHORT`, idle connections kept 30 s."""
    return serving(
        settings,
        http,
        CALLER,
        keep_alive_seconds=30,
        header_timeout_seconds=SHORT,
        body_timeout_seconds=SHORT,
    )


def test_the_deadlines_reach_uvicorn_with_httptools_as_uvicorn_picks() -> None:
    protocol = uvicorn_options(Settings(header_timeout_seconds=3, body_timeout_seconds=4))["http"]
    assert protocol.func is HttpToolsWithDeadlines
    assert protocol.keywords == {"header_timeout": 3, "body_timeout": 4}


@both_implementations
async def test_an_upgrade_is_not_offered_and_its_connection_keeps_the_deadlines(
    settings: Settings, http: Implementation
) -> None:
    upgrade = b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    async with quick(settings, http) as port:
        connection = await connect(port)
        connection.send(PING.replace(b"\r\n\r\n", b"\r\n" + upgrade + b"\r\n"))
        assert await connection.answers(1) == [200]
        connection.send(b"GET /_ping HTTP/1.1\r\n")
        assert await connection.closed_by_server()


@both_implementations
async def test_a_connection_sending_nothing_is_closed(
    settings: Settings, http: Implementation
) -> None:
    async with quick(settings, http) as port:
        connection = await connect(port)
        assert await connection.closed_by_server()
        assert connection.received == b""


@both_implementations
async def test_a_head_sent_a_byte_at_a_time_is_cut_off(
    settings: Settings, http: Implementation
) -> None:
    endless_head = b"GET /_ping HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 200  # 10 s
    async with quick(settings, http) as port:
        connection = await connect(port)
        sending = asyncio.create_task(connection.trickle(endless_head))
        assert await connection.closed_by_server()
        await sending
        assert connection.received == b""


@both_implementations
async def test_a_kept_alive_connection_idle_past_the_head_deadline_still_serves(
    settings: Settings, http: Implementation
) -> None:
    async with quick(settings, http) as port:
        connection = await connect(port)
        connection.send(PING)
        assert await connection.answers(1) == [200]
        await asyncio.sleep(3 * SHORT)  # idle, within the keep-alive time
        connection.send(PING)
        assert await connection.answers(2) == [200, 200]
        connection.close()


@both_implementations
async def test_the_next_head_on_a_kept_alive_connection_has_a_deadline_too(
    settings: Settings, http: Implementation
) -> None:
    async with quick(settings, http) as port:
        connection = await connect(port)
        connection.send(PING + b"GET /_ping HTTP/1.1\r\n")
        assert await connection.closed_by_server()
        assert await connection.answers(2) == [200]


@both_implementations
async def test_a_whole_request_is_answered_and_the_connection_kept(
    settings: Settings, http: Implementation
) -> None:
    body = orjson.dumps(f.patient())
    async with quick(settings, http) as port:
        connection = await connect(port)
        connection.send(post_head(len(body)) + body)
        assert await connection.answers(1) == [201]
        connection.send(PING)
        assert await connection.answers(2) == [201, 200]
        connection.close()


def _timed_out(connection_answers: list[int], headers: dict[str, str], body: bytes) -> None:
    assert connection_answers == [408]
    assert headers["connection"] == "close"
    assert headers["content-type"].startswith(FHIR_JSON)
    outcome = orjson.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "timeout"


@both_implementations
async def test_a_body_shorter_than_its_length_gets_408_then_the_connection_closes(
    settings: Settings, http: Implementation
) -> None:
    async with quick(settings, http) as port:
        connection = await connect(port)
        connection.send(post_head(1000) + b'{"resourceType": ')
        assert await connection.closed_by_server()
        _timed_out(await connection.answers(), *connection.last_answer())


@both_implementations
async def test_a_trickling_body_gets_408_then_the_connection_closes(
    settings: Settings, http: Implementation
) -> None:
    async with quick(settings, http) as port:
        connection = await connect(port)
        connection.send(post_head(1000))
        sending = asyncio.create_task(connection.trickle(b" " * 1000))  # 50 s
        assert await connection.closed_by_server()
        await sending
        _timed_out(await connection.answers(), *connection.last_answer())


@both_implementations
async def test_a_body_still_trickling_after_its_answer_is_cut_off(
    settings: Settings, http: Implementation
) -> None:
    async with quick(settings, http) as port:
        connection = await connect(port)
        connection.send(post_head(1000, path="/_ping"))  # 405, answered without the body
        assert await connection.answers(1) == [405]
        sending = asyncio.create_task(connection.trickle(b" " * 1000))
        assert await connection.closed_by_server()
        await sending


def _server_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the server logged through the standard library, but uvicorn's start and stop."""
    return [
        record
        for record in caplog.records
        if record.name.startswith("safeguard") or record.levelno >= logging.WARNING
    ]


async def _disconnect_mid_body(port: int, path: str) -> None:
    """Send a request's head and part of its body, then leave."""
    connection = await connect(port)
    connection.send(post_head(1000, path) + b'{"resourceType": ')
    await asyncio.sleep(SHORT / 5)
    connection.close()


async def _request_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The request lines the server wrote to stderr (among uvicorn's own), once there is one
    (5 s at most)."""
    lines: list[str] = []
    for _ in range(500):
        lines += [line for line in capsys.readouterr().err.splitlines() if line[:1] == "{"]
        if lines:
            break
        await asyncio.sleep(0.01)
    return [orjson.loads(line) for line in lines]


@both_implementations
async def test_a_client_that_leaves_mid_request_is_one_log_line(
    settings: Settings,
    http: Implementation,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    async with serving(settings, http, CALLER) as port:
        await _disconnect_mid_body(port, "/fhir/Patient")
        [line] = await _request_lines(capsys)
    assert _server_lines(caplog) == []  # no traceback, no error
    assert line["status"] == 499 and line["route"] == "/fhir/{resource_type}"


async def _echo(request: Request) -> Response:
    return Response(await request.body())


async def test_a_client_that_leaves_a_request_left_unaudited_is_one_log_line(
    settings: Settings, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(settings)
    app.add_api_route("/echo", _echo, methods=["POST"])
    async with serving(settings, app=app) as port:
        await _disconnect_mid_body(port, "/echo")
        [line] = await _request_lines(capsys)
    assert _server_lines(caplog) == []
    assert line["status"] == 499 and line["route"] == "/echo"
