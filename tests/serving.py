"""A real uvicorn server of the app, as `safeguard serve` runs it, on a free port of this host;
and the raw HTTP/1.1 the tests of its limits speak to it."""

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from app.access import Caller
from app.cli import uvicorn_options
from app.main import create_app
from app.server import Implementation, http_protocol
from app.settings import Settings

PING = b"GET /_ping HTTP/1.1\r\nHost: test\r\n\r\n"
STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ")
WAIT = 5.0  # seconds an answer or a close may take before a test gives up


@asynccontextmanager
async def serving(
    settings: Settings,
    http: Implementation = "auto",
    caller: Caller | None = None,
    app: FastAPI | None = None,
    port: int = 0,
    **changes: Any,
) -> AsyncIterator[int]:
    """A real uvicorn server, with `safeguard serve`'s options on `settings` with `changes`
    (and uvicorn's `http` implementation), of `app` or the app of those settings, whose every
    request is `caller`'s if one is given, on `port` (0: any free one). Yields its port."""
    changed = settings.model_copy(update=changes)
    options = uvicorn_options(changed)
    options.pop("log_config")  # the test run keeps its own logging
    options["http"] = http_protocol(changed, http)
    options["timeout_graceful_shutdown"] = WAIT  # a test that fails leaves no request hanging
    if app is None:
        app = create_app(changed, identify=(lambda request: caller) if caller else None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # 5 s at most
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def status_of(reader: asyncio.StreamReader) -> int:
    """The status of the next answer on a connection."""
    line = await asyncio.wait_for(reader.readline(), WAIT)
    return int(line.split()[1])


class Connection(asyncio.Protocol):
    """A client connection that keeps every byte the server sends, and notes when it closes
    (a reset included: what arrived before it is kept)."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(None)

    def send(self, data: bytes) -> None:
        """Send `data`, unless the connection is closed."""
        assert self.transport is not None
        if not self.lost.done():
            self.transport.write(data)

    async def trickle(self, data: bytes, pause: float = 0.05) -> None:
        """Send `data` a byte at a time, until it is all sent or the connection closes."""
        for byte in data:
            self.send(bytes([byte]))
            await asyncio.wait([self.lost], timeout=pause)

    async def closed_by_server(self) -> bool:
        """Whether the server closes the connection within `WAIT` seconds."""
        await asyncio.wait([self.lost], timeout=WAIT)
        return self.lost.done()

    async def answers(self, count: int = 1) -> list[int]:
        """The statuses of the next `count` answers, waiting `WAIT` seconds at most."""
        for _ in range(int(WAIT / 0.01)):
            if len(STATUS_LINE.findall(self.received)) >= count or self.lost.done():
                break
            await asyncio.sleep(0.01)
        return [int(status) for status in STATUS_LINE.findall(self.received)]

    def last_answer(self) -> tuple[dict[str, str], bytes]:
        """The headers and body of the last answer received."""
        head, _, body = bytes(self.received).rpartition(b"HTTP/1.1 ")[2].partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        return dict(line.lower().split(": ", 1) for line in lines), body

    def close(self) -> None:
        """Close the connection from the client's side."""
        assert self.transport is not None
        self.transport.close()


async def connect(port: int) -> Connection:
    """A new connection to the server on `port`."""
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(Connection, "127.0.0.1", port)
    return connection
