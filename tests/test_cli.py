"""`safeguard serve` hands its limits to uvicorn: idle keep-alive connections are closed,
and requests beyond the connection limit get 503; checked against a real server."""

import asyncio

from app.cli import uvicorn_options
from app.settings import Settings
from tests.serving import PING, serving, status_of


def test_the_limits_reach_uvicorn() -> None:
    options = uvicorn_options(Settings(keep_alive_seconds=2.5, max_connections=7))
    assert options["timeout_keep_alive"] == 2.5 and options["limit_concurrency"] == 7
    assert options["server_header"] is False and options["access_log"] is False


async def _closed_after_idle(port: int, idle: float) -> bool:
    """Whether the server closed a keep-alive connection left idle for `idle` seconds."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(PING)
    assert await status_of(reader) == 200
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
        assert await status_of(reader) == 503
        for connection in (holding, writer):
            connection.close()
