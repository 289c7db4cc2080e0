"""kill -9 under concurrent writers: every write the server acknowledged survives, with its
content and an unbroken version history, and no transaction is ever partly there."""

import asyncio
import random
from pathlib import Path

import httpx

from tests.reliability.conftest import backend_of, report, scaled
from tests.reliability.server import Server
from tests.reliability.writers import (
    FHIR_JSON,
    Ledger,
    Verdict,
    Writer,
    check,
    read_back,
    stored_versions,
)

WRITERS = 8
RUN_BEFORE_KILL = (0.5, 2.5)  # seconds of writing before each kill, drawn at random
VREADS = 300  # acknowledged writes also read back one by one


async def _kill_repeatedly(server: Server, kills: int, chooser: random.Random) -> None:
    """Let the writers write a random while, kill -9 the server, restart it; `kills` times."""
    for _ in range(kills):
        await asyncio.sleep(chooser.uniform(*RUN_BEFORE_KILL))
        server.kill()
        await server.start()


async def _write_through_kills(server: Server, kills: int, ledger: Ledger) -> Verdict:
    """The writers write while the server is killed and restarted; then the check of every
    acknowledged write (and a sample read back one by one)."""
    headers = {**server.bearer(), "content-type": FHIR_JSON}
    limits = httpx.Limits(max_connections=WRITERS * 2)
    async with httpx.AsyncClient(
        base_url=server.base_url, headers=headers, timeout=30, limits=limits
    ) as http:
        stop = asyncio.Event()
        writers = [asyncio.create_task(Writer(n, http, ledger).run(stop)) for n in range(WRITERS)]
        try:
            await _kill_repeatedly(server, kills, random.Random(kills))
            await asyncio.sleep(RUN_BEFORE_KILL[0])  # writes after the last restart too
        finally:
            stop.set()
            await asyncio.gather(*writers)
        verdict = check(await stored_versions(http, ("Patient", "Flag")), ledger)
        sample = random.Random(0).sample(ledger.acks, min(VREADS, len(ledger.acks)))
        await read_back(http, sample, verdict)
        return verdict


async def test_acknowledged_writes_survive_kill_9(database_url: str, tmp_path: Path) -> None:
    kills = scaled(5, 20)
    server = Server(database_url, tmp_path / "server.log")
    ledger = Ledger()
    try:
        await server.start()
        verdict = await _write_through_kills(server, kills, ledger)
    finally:
        server.stop()
    report(
        f"kill-9 ({backend_of(database_url)})",
        kills=kills,
        acknowledged_writes_checked=verdict.checked,
        lost=len(verdict.lost),
        history_gaps=len(verdict.history_gaps),
        transactions_sent=len(ledger.transactions_sent),
        transactions_acknowledged=len(ledger.transactions_acked),
        partial_transactions=len(verdict.partial_transactions),
        server_errors_5xx=sum(n for s, n in ledger.statuses.items() if s >= 500),
        statuses=dict(sorted(ledger.statuses.items())),
        connection_errors=ledger.connection_errors,
    )
    assert verdict.checked > 0
    assert verdict.lost == [], verdict.lost[:10]
    assert verdict.history_gaps == [], verdict.history_gaps[:10]
    assert verdict.partial_transactions == [], verdict.partial_transactions[:10]
    assert ledger.server_errors() == 0, ledger.statuses
