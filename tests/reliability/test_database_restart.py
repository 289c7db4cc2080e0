"""The database stopped (immediate, then fast) and started again under load: every answer is
a success or an honest 503, a write whose outcome was unknown tells the truth when replayed
with its X-Request-ID, /_status says 503 while the database is down, and the server recovers
on its own."""

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.reliability.conftest import report, scaled
from tests.reliability.load import Load, Write, fault, origin
from tests.reliability.pgcluster import Cluster
from tests.reliability.server import Server
from tests.reliability.writers import FHIR_JSON, stored_versions

WRITERS, READERS = 4, 2
LOAD_BETWEEN = 1.5  # seconds of load before, between and after the outages
RECOVERY_DEADLINE = 30.0  # seconds for a 2xx after the database is back: a liveness bound
STOP_MODES = ("immediate", "fast")


async def _recovered(http: httpx.AsyncClient, since: float) -> float:
    """Seconds from `since` until a search and /_status both answer 200 (fails past the
    deadline)."""
    while time.monotonic() - since < RECOVERY_DEADLINE:
        try:
            search = await http.get("/Patient", params={"_count": 1})
            status = await http.get(origin(http) + "/_status")
            if search.status_code == 200 and status.status_code == 200:
                return round(time.monotonic() - since, 2)
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"no 2xx within {RECOVERY_DEADLINE} s of the database's restart")


async def _outages(
    load: Load, cluster: Cluster, outage: float
) -> tuple[list[tuple[float, float]], dict[str, float]]:
    """Stop and start the database once per mode under load; the windows it was down and
    how long the server took to recover after each."""
    windows: list[tuple[float, float]] = []
    recoveries: dict[str, float] = {}
    await asyncio.sleep(LOAD_BETWEEN)
    for mode in STOP_MODES:
        await asyncio.to_thread(cluster.stop, mode)
        down = time.monotonic()
        await asyncio.sleep(outage)
        up = time.monotonic()
        windows.append((down, up))
        await asyncio.to_thread(cluster.start)
        recoveries[mode] = await _recovered(load.http, up)
        await asyncio.sleep(LOAD_BETWEEN)
    return windows, recoveries


async def _replay(load: Load, write: Write) -> int | None:
    """Send an unacknowledged write again with its X-Request-ID; the replay's status."""
    retried = Write(write.request_id, write.resource)
    await load.create(retried)
    write.created_id = retried.created_id
    return retried.status


async def test_answers_stay_honest_while_the_database_restarts(tmp_path: Path) -> None:
    outage = scaled(4, 8)
    cluster = Cluster()
    cluster.init()
    cluster.start()
    server = Server(cluster.url, tmp_path / "server.log")
    try:
        await server.start()
        headers = {**server.bearer(), "content-type": FHIR_JSON}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=15) as http:
            load = Load(http)
            stop = asyncio.Event()
            tasks = [load.writer(stop) for _ in range(WRITERS)]
            tasks += [load.reader(stop, seed) for seed in range(READERS)] + [
                load.status_poller(stop)
            ]
            running = [asyncio.create_task(task) for task in tasks]
            try:
                windows, recoveries = await _outages(load, cluster, outage)
            finally:
                stop.set()
                await asyncio.gather(*running)
            faults = [problem for answer in load.answers if (problem := fault(answer))]
            unacknowledged = [w for w in load.writes if w.status not in (200, 201)]
            replays = Counter([await _replay(load, write) for write in unacknowledged])
            stored = await stored_versions(http, ("Patient",))
    finally:
        server.stop()
        cluster.remove()
    holders: dict[str, list[str]] = {}
    for (_, resource_id), versions in stored.items():
        holders.setdefault(versions.get(1, ""), []).append(resource_id)
    untrue = [
        w for w in load.writes if holders.get(w.resource["name"][0]["family"]) != [w.created_id]
    ]
    down_status = [
        a.status
        for a in load.answers
        if a.what == "status" and any(down <= a.sent and a.at <= up for down, up in windows)
    ]
    report(
        "database restart (postgresql)",
        outage_seconds=outage,
        answers=len(load.answers),
        statuses=dict(Counter(a.status for a in load.answers)),
        faults=len(faults),
        writes=len(load.writes),
        outcome_unknown=sum(1 for w in unacknowledged if w.status == 503 and "unknown" in w.text),
        replays=dict(replays),
        untrue_replays=len(untrue),
        status_while_down=dict(Counter(down_status)),
        recovery_seconds=recoveries,
    )
    assert faults == [], Counter(problem[:100] for problem in faults).most_common(5)
    assert down_status and set(down_status) == {503}, down_status
    assert set(replays) <= {200, 201}, replays
    assert untrue == [], [(w.request_id, w.status, w.created_id) for w in untrue[:10]]
