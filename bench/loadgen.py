"""A lean HTTP/1.1 keep-alive load generator on raw asyncio streams, used when wrk is absent."""

import asyncio
import time
from dataclasses import dataclass, field

from bench.process import HOST, Server
from bench.scenario import Measurement, Scenario

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
    uvloop = None  # type: ignore[assignment]


@dataclass(slots=True)
class _Tally:
    recording: bool = True
    count: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)


def _content_length(head: bytes) -> int:
    start = head.lower().find(b"\r\ncontent-length:")
    if start < 0:
        return 0
    end = head.find(b"\r\n", start + 2)
    return int(head[start + 17 : end])


async def _client(
    requests: list[bytes], first: int, expect: bytes, tally: _Tally, port: int
) -> None:
    """One connection, one request in flight, until the tally stops recording."""
    reader, writer = await asyncio.open_connection(HOST, port)
    clock, count, i = time.perf_counter, len(requests), first
    try:
        while tally.recording:
            sent = clock()
            writer.write(requests[i % count])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(_content_length(head))
            if tally.recording:
                tally.latencies.append(clock() - sent)
                tally.count += 1
                if head[9:12] != expect:
                    tally.errors += 1
    finally:
        writer.close()


async def _drive(
    server: Server, scenario: Scenario, connections: int, seconds: float
) -> Measurement:
    authorization = server.tokens.header() if scenario.authenticated else None
    requests, tally = scenario.requests(server.host, authorization), _Tally()
    expect = str(scenario.status).encode()
    start = time.perf_counter()
    tasks = [
        asyncio.create_task(_client(requests, k * 7, expect, tally, server.port))
        for k in range(connections)
    ]
    try:
        done, _ = await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
        if done:
            raise RuntimeError("a load-generator connection ended early")
    finally:
        tally.recording = False
        elapsed = time.perf_counter() - start
        await asyncio.wait(tasks, timeout=10)
        for task in tasks:
            task.cancel()
    return _measurement(tally, elapsed)


def _measurement(tally: _Tally, elapsed: float) -> Measurement:
    ordered = sorted(tally.latencies)

    def pct(q: float) -> float | None:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else None

    return Measurement(
        requests=tally.count,
        seconds=elapsed,
        errors=tally.errors,
        p50_ms=pct(0.5),
        p99_ms=pct(0.99),
    )


class PythonLoad:
    """The built-in generator: `connections` keep-alive connections, one request in flight each."""

    name = "python asyncio streams (built-in)"

    def run(
        self, server: Server, scenario: Scenario, connections: int, seconds: int
    ) -> Measurement:
        """Send requests for `seconds` and count the completed ones."""
        coro = _drive(server, scenario, connections, seconds)
        return uvloop.run(coro) if uvloop is not None else asyncio.run(coro)
