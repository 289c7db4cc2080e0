"""Slow clients are cut off: 200 connections sending their headers a byte a second are
closed after SAFEGUARD_HEADER_TIMEOUT_SECONDS, a body shorter than its Content-Length gets
408 and a close after SAFEGUARD_BODY_TIMEOUT_SECONDS, and a normal client is answered
meanwhile."""

import asyncio
from collections import Counter
from pathlib import Path

import httpx

from tests.reliability.conftest import report
from tests.reliability.server import Server

SLOW_CONNECTIONS = 200
SHORT_BODIES = 5
TIMEOUT_SECONDS = 2  # both the header and the body timeout given to the server
CLOSE_DEADLINE = 20.0  # seconds by which each slow connection must be closed: a liveness bound
SLOW_HEAD = b"GET /_ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 60 + b"\r\n\r\n"


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes | None:
    """Whatever the server sent up to its close, or None if it is still open after 1 s."""
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 1.0):
            received += chunk
    except TimeoutError:
        return None
    except ConnectionError:
        pass
    return received


async def _slow_head(port: int) -> bool:
    """Send a request head a byte a second; whether the server closed the connection before
    the deadline (the head takes longer than that to send)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(CLOSE_DEADLINE):
            for byte in SLOW_HEAD:
                writer.write(bytes([byte]))
                await writer.drain()
                if await _closed_by_server(reader) is not None:
                    return True
    except TimeoutError:
        return False
    except ConnectionError:  # reset, or a broken pipe: the server closed it
        return True
    finally:
        writer.close()
    return False


async def _short_body(port: int, token: str) -> bytes | None:
    """POST a Patient whose body stops short of its Content-Length; what the server sent
    before closing, or None if it had not closed by the deadline."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/fhir+json\r\n"
        "Content-Length: 1000\r\n\r\n"
    )
    writer.write(head.encode() + b'{"resourceType":')
    try:
        async with asyncio.timeout(CLOSE_DEADLINE):
            while (received := await _closed_by_server(reader)) is None:
                pass
            return received
    except TimeoutError:
        return None
    finally:
        writer.close()


async def _normal_client(
    server: Server, headers: dict[str, str], stop: asyncio.Event
) -> Counter[int | str]:
    """Ask for /_ping and the CapabilityStatement every 0.2 s until `stop`; the statuses."""
    statuses: Counter[int | str] = Counter()
    async with httpx.AsyncClient(base_url=server.origin, headers=headers, timeout=5) as http:
        while not stop.is_set():
            for path in ("/_ping", "/fhir/metadata"):
                try:
                    statuses[(await http.get(path)).status_code] += 1
                except httpx.TransportError as exc:
                    statuses[type(exc).__name__] += 1
            await asyncio.sleep(0.2)
    return statuses


async def test_slow_clients_are_cut_off_and_others_still_answered(tmp_path: Path) -> None:
    timeouts = {
        "SAFEGUARD_HEADER_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "SAFEGUARD_BODY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
    }
    server = Server(f"sqlite:///{tmp_path / 'safeguard.db'}", tmp_path / "server.log", **timeouts)
    await server.start()
    headers = server.bearer()
    token = headers["Authorization"].removeprefix("Bearer ")
    stop = asyncio.Event()
    try:
        normal = asyncio.create_task(_normal_client(server, headers, stop))
        heads = [_slow_head(server.port) for _ in range(SLOW_CONNECTIONS)]
        bodies = [_short_body(server.port, token) for _ in range(SHORT_BODIES)]
        results = await asyncio.gather(*heads, *bodies)
        stop.set()
        statuses = await normal
    finally:
        server.stop()
    heads_closed = sum(1 for closed in results[:SLOW_CONNECTIONS] if closed)
    answers = results[SLOW_CONNECTIONS:]
    timed_out = [a for a in answers if a is not None and a.startswith(b"HTTP/1.1 408")]
    report(
        "slow clients (sqlite)",
        slow_heads=SLOW_CONNECTIONS,
        slow_heads_closed=heads_closed,
        short_bodies=SHORT_BODIES,
        short_bodies_408=len(timed_out),
        normal_client=dict(statuses),
    )
    assert heads_closed == SLOW_CONNECTIONS
    assert len(timed_out) == SHORT_BODIES, answers
    assert all(b"OperationOutcome" in answer for answer in timed_out), timed_out
    assert set(statuses) == {200} and statuses[200] > 0, statuses
