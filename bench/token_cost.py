"""What a request's token check costs, measured in-process next to `make bench`'s read.

The server checks every /fhir request's bearer token with `Authority.caller`: the verified
token looked up by its text (its signature and claims are checked once, on first use), then
the revocation check (`app.auth.revocation`). Here an `Authority` of the same settings, on the
same database, is handed the bench client's token `calls` times (after a warm-up that
verifies it once), and the revocation check alone as many times: wall-clock and CPU time per
call of this process. Its CPU time compares with the server's CPU per read (`srv us/req`):
neither counts PostgreSQL's own work, and with 16 connections in flight the server's CPU,
not a request's wait on the database, is what bounds throughput. The wall time is latency a
request carries.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.auth.tokens import Authority
from app.settings import Settings
from app.storage.db import make_database
from bench import machine
from bench.auth import CLIENT_ID, LIFETIME

SECONDS = 1.0  # each loop's length: long enough for /proc/stat's 10 ms ticks
BATCH, WARMUP = 100, 100

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
    uvloop = None  # type: ignore[assignment]


async def _per_call(work: Callable[[], Awaitable[Any]], seconds: float) -> dict[str, float]:
    """Microseconds per call of `work`, called for `seconds` after a warm-up: wall-clock, CPU
    of this process, and CPU of the whole machine (this process, PostgreSQL, anything else)."""
    for _ in range(WARMUP):
        await work()
    wall, cpu, busy = time.perf_counter(), time.process_time(), machine.machine_jiffies()
    calls = 0
    while time.perf_counter() - wall < seconds:
        for _ in range(BATCH):
            await work()
        calls += BATCH
    elapsed = time.perf_counter() - wall
    cores = machine.cores_between(busy, machine.machine_jiffies(), elapsed)
    return {
        "calls": calls,
        "wall_us": elapsed / calls * 1e6,
        "cpu_us": (time.process_time() - cpu) / calls * 1e6,
        "machine_us": None if cores is None else cores * elapsed / calls * 1e6,
    }


async def _measure(database_url: str, base_url: str, token: str, seconds: float) -> dict[str, Any]:
    settings = Settings(
        database_url=database_url, base_url=base_url, token_lifetime_seconds=LIFETIME
    )
    db = make_database(database_url, 1, 2)
    await db.open()
    authority = Authority(settings, db)
    try:
        caller = await _per_call(lambda: authority.caller(token), seconds)
        revocation = await _per_call(lambda: authority.revocations.live(CLIENT_ID), seconds)
    finally:
        authority.close()
        await db.close()
    return {"token_check": caller, "revocation_check": revocation}


def measure(
    database_url: str, base_url: str, token: str, seconds: float = SECONDS
) -> dict[str, Any]:
    """Per call of `Authority.caller(token)` (a token seen before) and of the revocation
    check alone: wall, CPU and machine-wide CPU microseconds."""
    coro = _measure(database_url, base_url, token, seconds)
    return uvloop.run(coro) if uvloop is not None else asyncio.run(coro)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def note(backend: str, found: dict[str, Any], read_us: float | None) -> str:
    """Two lines: the token check's cost, its share of the server's CPU per read, and the
    revocation check's part in it."""
    check, revocation = found["token_check"], found["revocation_check"]
    share = f" = {check['cpu_us'] / read_us:.1%} of a read's {read_us:,.0f} us" if read_us else ""
    return (
        f"{backend}: token check {_fmt(check['cpu_us'])} us CPU{share}; "
        f"{_fmt(check['wall_us'])} us wall, {_fmt(check['machine_us'])} us machine-wide\n"
        f"    of which the revocation check {_fmt(revocation['cpu_us'])} us CPU, "
        f"{_fmt(revocation['wall_us'])} us wall, {_fmt(revocation['machine_us'])} us machine-wide"
    )
