"""Prometheus metrics, served at /metrics in the text exposition format (prometheus-client).

Labels hold route templates (`/fhir/{resource_type}/{logical_id}`), methods, statuses, pool
and job-state names: never a path, an id, a client or anything about a patient.

Counted as they happen, in each process: requests by route template, method and status,
their latency by route template and method (`app.fhir.observing`), write transactions run
again after losing a race and writes given up (`app.records.store`), writes answered again
from an earlier request with the same X-Request-ID (`app.fhir.bundles.idempotency`).
Read when scraped: the database pools of this process (`record_pools`), and counts from the
database (export jobs by state, the notification outbox, events awaiting delivery), passed to
`exposition` by the /metrics route.

Several worker processes (`safeguard serve --workers N`): when PROMETHEUS_MULTIPROC_DIR is
set before this module is imported, prometheus-client keeps each process's values in files
there and a scrape, whichever worker answers it, adds them up (`MultiProcessCollector`); each
worker then writes its pools' gauges every `POOL_SAMPLE_SECONDS` (`sample_pools_forever`).
"""

import asyncio
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
POOL_SAMPLE_SECONDS = 1.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series

REQUESTS = Counter(
    "safeguard_http_requests",
    "HTTP requests answered, by route template, method and status (499: the client left "
    "before an answer).",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "safeguard_http_request_duration_seconds",
    "Time from a request's arrival to its answer's end, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
WRITE_RETRIES = Counter(
    "safeguard_write_retries",
    "Write transactions run again after losing a race to a concurrent writer.",
)
WRITES_GIVEN_UP = Counter(
    "safeguard_write_conflicts",
    "Writes that lost every one of their SAFEGUARD_WRITE_RETRIES attempts (409).",
)
IDEMPOTENT_REPLAYS = Counter(
    "safeguard_idempotent_replays",
    "Writes answered with the stored answer of an earlier request with the same "
    "X-Request-ID, writing nothing.",
)
POOL_IN_USE = Gauge(
    "safeguard_db_pool_connections_in_use",
    "Database connections lent out (SQLite: 1 while the writer is held).",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "safeguard_db_pool_waiting",
    "Units of work waiting for a database connection (SQLite: for the writer).",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_OPEN = Gauge(
    "safeguard_db_pool_connections_open",
    "Database connections open.",
    ["pool"],
    multiprocess_mode="livesum",
)


class PoolUsage(NamedTuple):
    """One connection pool of this process, as it is now."""

    pool: str
    in_use: int
    waiting: int
    open: int


class DatabaseCounts(NamedTuple):
    """What the database holds that operators watch; counts only."""

    export_jobs: dict[str, int]  # by state
    outbox: int  # notifications not yet numbered for their Subscriptions
    undelivered: int  # numbered events a rest-hook Subscription has not yet received


def multiprocess() -> bool:
    """Whether the values are shared between worker processes through files."""
    return bool(os.environ.get(MULTIPROCESS_DIR))


@contextmanager
def workers_sharing_metrics(workers: int) -> Iterator[None]:
    """PROMETHEUS_MULTIPROC_DIR for the workers' metrics, set before they are spawned: the
    folder given, emptied of an earlier run's files (but this process's own, when it is the
    one worker), or with several workers a temporary one, removed at the end."""
    given = os.environ.get(MULTIPROCESS_DIR)
    if given:
        own = f"_{os.getpid()}.db"
        for stale in Path(given).glob("*.db"):
            if workers > 1 or not stale.name.endswith(own):
                stale.unlink()
        yield
    elif workers <= 1:
        yield
    else:
        with tempfile.TemporaryDirectory(prefix="safeguard-metrics-") as folder:
            os.environ[MULTIPROCESS_DIR] = folder
            try:
                yield
            finally:
                del os.environ[MULTIPROCESS_DIR]


def record_pools(pools: Iterable[PoolUsage]) -> None:
    """Set the pool gauges from this process's pools."""
    for usage in pools:
        POOL_IN_USE.labels(usage.pool).set(usage.in_use)
        POOL_WAITING.labels(usage.pool).set(usage.waiting)
        POOL_OPEN.labels(usage.pool).set(usage.open)


async def sample_pools_forever(pools: Callable[[], Sequence[PoolUsage]]) -> None:
    """Write this worker's pool gauges every `POOL_SAMPLE_SECONDS`, where another worker's
    scrape reads them (multiprocess mode only: otherwise a scrape reads them itself)."""
    while True:
        record_pools(pools())
        await asyncio.sleep(POOL_SAMPLE_SECONDS)


def process_ended() -> None:
    """Drop this worker's pool gauges from the shared files (its counters stay counted)."""
    if multiprocess():
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class _Families(Collector):
    """Metric families computed before the scrape (from the database)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _database_families(counts: DatabaseCounts | None) -> list[Metric]:
    up = GaugeMetricFamily(
        "safeguard_database_up", "1 if the database answered this scrape's counts."
    )
    up.add_metric([], 0 if counts is None else 1)
    if counts is None:
        return [up]
    jobs = GaugeMetricFamily(
        "safeguard_export_jobs", "Bulk export jobs by state.", labels=["state"]
    )
    for state, count in sorted(counts.export_jobs.items()):
        jobs.add_metric([state], count)
    outbox = GaugeMetricFamily(
        "safeguard_notification_outbox",
        "Notifications recorded and not yet numbered for their Subscriptions (counted up to "
        "100,000).",
        value=counts.outbox,
    )
    undelivered = GaugeMetricFamily(
        "safeguard_notification_events_undelivered",
        "Events numbered for rest-hook Subscriptions and not yet delivered to them.",
        value=counts.undelivered,
    )
    return [up, jobs, outbox, undelivered]


def exposition(counts: DatabaseCounts | None) -> bytes:
    """Every metric in the text format: this process's, or every worker's when they share a
    directory; then the database's counts (None: it did not answer)."""
    registry: Collector = REGISTRY
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry) + generate_latest(_Families(_database_families(counts)))
