"""The database stopped (immediate, then fast) and started again under load: every answer is
a success or an honest 503, a write whose outcome was unknown tells the truth when replayed
with its X-Request-ID, /_status says 503 while the database is down, and the server recovers
on its own."""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.reliability.conftest import report, scaled
from tests.reliability.load import Load, Write, fault, origin
from tests.reliability.pgcluster import Cluster
from tests.reliability.server import Server
from tests.reliability.writers import FHIR_JSON, Versions, stored_versions

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


@dataclass
class Run:
    """What a run under outages gave: the load, when the database was down, how long the
    server took to recover, the replays' statuses and the Patients stored at the end."""

    load: Load
    windows: list[tuple[float, float]]
    recoveries: dict[str, float]
    replays: Counter[int | None]
    stored: Versions


async def _run_through_outages(server: Server, cluster: Cluster, outage: float) -> Run:
    """Writers, readers and a /_status poller while the database goes down and comes back;
    then every unacknowledged write replayed, and every Patient read back."""
    headers = {**server.bearer(), "content-type": FHIR_JSON}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=15) as http:
        load = Load(http)
        stop = asyncio.Event()
        tasks = [load.writer(stop) for _ in range(WRITERS)] + [load.status_poller(stop)]
        tasks += [load.reader(stop, seed) for seed in range(READERS)]
        running = [asyncio.create_task(task) for task in tasks]
        try:
            windows, recoveries = await _outages(load, cluster, outage)
        finally:
            stop.set()
            await asyncio.gather(*running)
        answered = len(load.answers)
        unacknowledged = [w for w in load.writes if w.status not in (200, 201)]
        replays = Counter([await _replay(load, write) for write in unacknowledged])
        del load.answers[answered:]  # the replays are judged by their own rule
        return Run(load, windows, recoveries, replays, await stored_versions(http, ("Patient",)))


def _untrue(run: Run) -> list[Write]:
    """Writes whose marker is not held by exactly the one Patient their answer named."""
    holders: dict[str, list[str]] = {}
    for (_, resource_id), versions in run.stored.items():
        holders.setdefault(versions.get(1, ""), []).append(resource_id)
    return [w for w in run.load.writes if holders.get(w.marker) != [w.created_id]]


def _status_while_down(run: Run) -> list[int | None]:
    """What /_status answered to requests sent and answered while the database was down."""
    return [
        a.status
        for a in run.load.answers
        if a.what == "status" and any(down <= a.sent and a.at <= up for down, up in run.windows)
    ]


async def test_answers_stay_honest_while_the_database_restarts(tmp_path: Path) -> None:
    outage = scaled(4, 8)
    cluster = Cluster()
    cluster.init()
    cluster.start()
    server = Server(cluster.url, tmp_path / "server.log")
    try:
        await server.start()
        run = await _run_through_outages(server, cluster, outage)
    finally:
        server.stop()
        cluster.remove()
    faults = [problem for answer in run.load.answers if (problem := fault(answer))]
    untrue, down_status = _untrue(run), _status_while_down(run)
    unknown = [w for w in run.load.writes if w.status == 503 and "unknown" in w.text]
    report(
        "database restart (postgresql)",
        outage_seconds=outage,
        answers=len(run.load.answers),
        statuses=dict(Counter(a.status for a in run.load.answers)),
        faults=len(faults),
        writes=len(run.load.writes),
        outcome_unknown=len(unknown),
        replays=dict(run.replays),
        untrue_replays=len(untrue),
        status_while_down=dict(Counter(down_status)),
        recovery_seconds=run.recoveries,
    )
    assert faults == [], Counter(problem[:100] for problem in faults).most_common(5)
    assert down_status and set(down_status) == {503}, down_status
    assert set(run.replays) <= {200, 201}, run.replays
    assert untrue == [], [(w.request_id, w.status, w.created_id) for w in untrue[:10]]
