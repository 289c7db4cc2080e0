"""`safeguard serve` hands its limits to uvicorn: idle keep-alive connections are closed,
and requests beyond the connection limit get 503; checked against a real server."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from app.cli import uvicorn_options
from app.main import create_app
from app.settings import Settings

PING = b"GET /_ping HTTP/1.1\r\nHost: test\r\n\r\n"


@asynccontextmanager
async def serving(settings: Settings, **changes: Any) -> AsyncIterator[int]:
    """A real uvicorn server of the app with `changes` to `settings`, on a free port."""
    changed = settings.model_copy(update=changes)
    options = uvicorn_options(changed)
    options.pop("log_config")  # the test run keeps its own logging
    config = uvicorn.Config(create_app(changed), host="127.0.0.1", port=0, **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # 5 s at most
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def _status(reader: asyncio.StreamReader) -> int:
    line = await asyncio.wait_for(reader.readline(), 5)
    return int(line.split()[1])


def test_the_limits_reach_uvicorn() -> None:
    options = uvicorn_options(Settings(keep_alive_seconds=2.5, max_connections=7))
    assert options["timeout_keep_alive"] == 2.5 and options["limit_concurrency"] == 7
    assert options["server_header"] is False and options["access_log"] is False


async def _closed_after_idle(port: int, idle: float) -> bool:
    """Whether the server closed a keep-alive connection left idle for `idle` seconds."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(PING)
    assert await _status(reader) == 200
    await asyncio.sleep(idle)
    try:
        await asyncio.wait_for(reader.read(), 0.5)  # the answer's rest, then EOF if closed
    except TimeoutError:
        return False
    finally:
        writer.close()
    return reader.at_eof()


async def test_an_idle_keep_alive_connection_is_closed(settings: Settings) -> None:
    async with serving(settings, keep_alive_seconds=0.3) as port:
        assert await _closed_after_idle(port, 1.0)
    async with serving(settings, keep_alive_seconds=30) as port:
        assert not await _closed_after_idle(port, 1.0)


async def test_requests_beyond_the_connection_limit_get_503(settings: Settings) -> None:
    async with serving(settings, max_connections=1) as port:
        _, holding = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(PING)
        assert await _status(reader) == 503
        for connection in (holding, writer):
            connection.close()
