"""A TCP relay between the app and PostgreSQL that can fail like a network does: refuse and
drop every connection (the database is gone), or break one connection at its COMMIT, before
the COMMIT reaches the server or after the server has committed but before its answer
arrives. A real fault in the real wire, not a stand-in for the storage code."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

COMMIT = b"COMMIT\x00"  # a simple-protocol Query message's text, as asyncpg sends it

CutAt = Literal["before-commit", "after-commit"]


@dataclass
class Relay:
    """Relays 127.0.0.1:`port` to `upstream`; `down` drops every connection."""

    upstream: tuple[str, int]
    port: int = 0
    down: bool = False
    cut_at: CutAt | None = None  # the next COMMIT seen breaks its connection, once
    cuts: int = 0
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def go_down(self) -> None:
        """The database becomes unreachable: open connections break, new ones are refused."""
        self.down = True
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        self._writers |= {writer, up_writer}
        armed = asyncio.Event()  # set: break on the server's next bytes (its COMMIT answer)
        pumps = {
            asyncio.create_task(self._pump(reader, up_writer, (writer, up_writer), armed)),
            asyncio.create_task(self._pump_back(up_reader, writer, (writer, up_writer), armed)),
        }
        try:  # either side closing closes the other, as a real connection does
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            self._writers -= {writer, up_writer}
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pump(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        both: tuple[asyncio.StreamWriter, ...],
        armed: asyncio.Event,
    ) -> None:
        """Client to server; at an armed COMMIT, break before sending it or arm the reply."""
        while data := await source.read(65536):
            if self.cut_at is not None and COMMIT in data:
                cut_at, self.cut_at = self.cut_at, None
                self.cuts += 1
                if cut_at == "before-commit":
                    return _abort(both)
                armed.set()
            sink.write(data)
            await sink.drain()

    async def _pump_back(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        both: tuple[asyncio.StreamWriter, ...],
        armed: asyncio.Event,
    ) -> None:
        """Server to client; once armed, the COMMIT's answer is dropped with the connection."""
        while data := await source.read(65536):
            if armed.is_set():
                return _abort(both)
            sink.write(data)
            await sink.drain()


def _abort(writers: tuple[asyncio.StreamWriter, ...]) -> None:
    for writer in writers:
        writer.transport.abort()


@contextlib.asynccontextmanager
async def relay_to(host: str, port: int) -> AsyncIterator[Relay]:
    """A Relay to host:port, listening on a free local port while the block runs."""
    relay = Relay((host, port))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await relay._serve(reader, writer)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    relay.port = server.sockets[0].getsockname()[1]
    try:
        yield relay
    finally:
        relay.go_down()
        server.close()
        await server.wait_closed()
