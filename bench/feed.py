"""`make bench-feed`: how fast a client pages the change feed, on a bulk-loaded population.

A fresh migrated database (PostgreSQL by default) is bulk-loaded (`app.storage.bulk`) with a
seeded population (`bench.population`, ~7 resources a child: `--versions` 200,000 by default),
analysed, then served by one uvicorn worker. A system client polls `GET /fhir/_history?
_since=T&_count=N` from a time before the load and follows every `next` link to the end, as
the README's polling contract says; changes per second is versions received over the walk's
wall time. Every version must arrive exactly once, and a second poll from the first page's
`Bundle.meta.lastUpdated` must find nothing new. On PostgreSQL the history statement of a
first and of the last page is shown with `EXPLAIN (ANALYZE, BUFFERS)`.
"""

import argparse
import asyncio
import datetime
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx

from app.access import SYSTEM
from app.clock import instant, now_micros
from app.storage import changes, repository
from app.storage.db import Row, asyncpg_dsn
from bench import population as pop
from bench.backends import BACKENDS, UnavailableError, database
from bench.process import ROOT, serve
from bench.report import write_json
from bench.search_volume import load

OUTPUT = ROOT / "bench" / "results" / "feed.json"
TARGET = 5000.0  # changes per second
PER_CHILD = 7  # resources a child of `bench.population` brings, on average


@dataclass(slots=True)
class Walk:
    """One poll followed to its end: what arrived, and how long each page took."""

    count: int
    versions: int = 0
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    page_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    last_updated: str = ""  # the first page's Bundle.meta.lastUpdated: the next poll's _since
    last_next: str = ""  # the last page's URL (for the deep page's plan)

    @property
    def per_second(self) -> float:
        """Versions received per second of wall time."""
        return self.versions / self.seconds if self.seconds else 0.0


def _next(bundle: dict[str, Any]) -> str | None:
    return next((x["url"] for x in bundle.get("link", []) if x["relation"] == "next"), None)


def _key(entry: dict[str, Any]) -> tuple[str, str, str]:
    """(type, id, version) of a history entry, from its request or its resource."""
    resource = entry.get("resource")
    if resource is not None:
        return resource["resourceType"], resource["id"], resource["meta"]["versionId"]
    url = entry["request"]["url"]  # a deletion: Type/id
    return url.split("/")[0], url.split("/")[1], entry["response"]["etag"]


def poll(client: httpx.Client, since: str, count: int) -> Walk:
    """`GET /fhir/_history?_since=&_count=`, every `next` link followed; each version once."""
    walk = Walk(count)
    url: str | None = "/fhir/_history"
    params: dict[str, str] | None = {"_since": since, "_count": str(count)}
    started = time.perf_counter()
    while url is not None:
        sent = time.perf_counter()
        response = client.get(url, params=params)
        walk.page_ms.append((time.perf_counter() - sent) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
        bundle = response.json()
        if not walk.last_updated:
            walk.last_updated = bundle["meta"]["lastUpdated"]
        for entry in bundle.get("entry", []):
            walk.seen.add(_key(entry))
            walk.versions += 1
        url, params = _next(bundle), None
        walk.last_next = url or walk.last_next
    walk.seconds = time.perf_counter() - started
    return walk


class Recorder:
    """A connection that records the statements it is given and returns no rows."""

    dialect = "postgresql"

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """Record; no row."""
        self.statements.append((sql, args))
        return None

    async def fetchrow_final(self, sql: str, *args: Any) -> Row | None:
        """Record; no row."""
        return await self.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        """Record; no rows."""
        self.statements.append((sql, args))
        return []

    async def execute(self, sql: str, *args: Any) -> None:
        """Record."""
        self.statements.append((sql, args))

    async def executemany(self, sql: str, rows: Any) -> None:
        """Not used by reads."""
        raise NotImplementedError

    def expect_more(self) -> None:
        """Not used by reads."""

    def local_watermark(self) -> int | None:
        """None: as PostgreSQL."""
        return None


async def _history_sql(since: int, mark: changes.Mark, count: int) -> tuple[str, list[Any]]:
    """The statement a system caller's history page runs (text, arguments)."""
    recorder = Recorder()
    repo = repository.Repository(recorder, SYSTEM)
    await changes.history(
        repo,
        resource_types=None,
        logical_id=None,
        since=since,
        mark=mark,
        count=count + 1,
        max_bytes=32 * 1024 * 1024,
    )
    sql, args = recorder.statements[-1]
    return sql, list(args)


def _mark_of(next_url: str) -> changes.Mark:
    cursor = parse_qs(urlsplit(next_url).query)["_cursor"][0]
    watermark, changed_at, seq = (int(part) for part in cursor.split(".")[:3])
    return changes.Mark(watermark, changed_at, seq)


async def explain(url: str, since: int, walk: Walk) -> dict[str, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the first page's statement and of the last page's."""
    first = changes.Mark(now_micros())
    deep = _mark_of(walk.last_next) if walk.last_next else first
    conn = await asyncpg.connect(asyncpg_dsn(url), server_settings={"jit": "off"})
    plans: dict[str, list[str]] = {}
    try:
        for name, mark in (("first page", first), ("last page", deep)):
            sql, args = await _history_sql(since, mark, walk.count)
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
            plans[name] = [sql, *(row[0] for row in rows)]
    finally:
        await conn.close()
    return plans


def bench_backend(
    backend: str, url: str, workdir: Path, population: pop.Population, args: argparse.Namespace
) -> dict[str, Any]:
    """Load, serve, walk the feed once per page size (and once more to check), explain."""
    since_micros = now_micros() - 1_000_000
    loaded = load(backend, url, population)
    since = instant(since_micros)
    walks: dict[str, Any] = {}
    with (
        serve(url, workdir, timeout=120.0) as server,
        httpx.Client(base_url=server.url, auth=server.auth, timeout=120.0) as client,
    ):
        last = poll(client, since, args.counts[0])  # warm-up: caches, plans, the page cache
        for count in args.counts:
            last = poll(client, since, count)
            again = poll(client, last.last_updated, count)
            walks[str(count)] = summarise(last, loaded["resources"], again)
            print_walk(backend, walks[str(count)])
    plans = asyncio.run(explain(url, since_micros, last)) if backend == "postgresql" else {}
    for name, lines in plans.items():
        print(f"\n  EXPLAIN {name}\n    " + "\n    ".join(lines), flush=True)
    return {"load": loaded, "walks": walks, "plans": plans}


def summarise(walk: Walk, loaded: int, again: Walk) -> dict[str, Any]:
    """A walk's figures and checks: every loaded version exactly once, nothing on the next poll."""
    return {
        "count": walk.count,
        "versions": walk.versions,
        "distinct": len(walk.seen),
        "expected": loaded,
        "pages": len(walk.page_ms),
        "seconds": walk.seconds,
        "changes_per_second": walk.per_second,
        "page_median_ms": statistics.median(walk.page_ms),
        "page_max_ms": max(walk.page_ms),
        "next_poll_versions": again.versions,
        "passed": walk.per_second >= TARGET,
        "correct": walk.versions == len(walk.seen) == loaded and again.versions == 0,
    }


def print_walk(backend: str, row: dict[str, Any]) -> None:
    """One line per walk."""
    verdict = "PASS" if row["passed"] else "FAIL"
    check = "ok" if row["correct"] else "WRONG"
    print(
        f"  [{backend}] _count={row['count']:<4} {row['versions']:,} versions in "
        f"{row['pages']:,} pages, {row['seconds']:.2f}s: {row['changes_per_second']:,.0f} "
        f"changes/s (target >= {TARGET:,.0f}: {verdict}); page median "
        f"{row['page_median_ms']:.1f} ms, max {row['page_max_ms']:.1f} ms; "
        f"{row['distinct']:,} distinct of {row['expected']:,} loaded, next poll "
        f"{row['next_poll_versions']} ({check})",
        flush=True,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.feed", description=__doc__)
    add = parser.add_argument
    add("--backend", choices=[*BACKENDS, "all"], default="postgresql")
    add("--versions", type=int, default=200_000, help="about this many versions are loaded")
    add("--counts", type=int, nargs="+", default=[500, 100], help="_count of each walk")
    add("--seed", type=int, default=pop.SEED)
    add("--output", type=Path, default=OUTPUT)
    add("--strict", action="store_true", help="exit 1 when the target is missed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run, print, write the JSON; 1 if a walk was wrong (or, if strict, slow)."""
    args = parse_args(argv)
    population = pop.plan(max(1, args.versions // PER_CHILD), args.seed)
    print(f"population: {population.counts()}", flush=True)
    results: dict[str, Any] = {}
    for backend in BACKENDS if args.backend == "all" else (args.backend,):
        print(f"{backend}:", flush=True)
        with tempfile.TemporaryDirectory(prefix="safeguard-feed-") as tmp:
            try:
                with database(backend, Path(tmp)) as url:
                    results[backend] = bench_backend(backend, url, Path(tmp), population, args)
            except UnavailableError as exc:
                print(f"  skipped: {exc}", flush=True)
    if not results:
        print("no backend could be benchmarked", file=sys.stderr)
        return 1
    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    settings = {k: str(v) for k, v in vars(args).items()}
    write_json(args.output, {"when": when, "settings": settings, "backends": results})
    print(f"\nresults written to {args.output}")
    rows = [row for found in results.values() for row in found["walks"].values()]
    if not all(row["correct"] for row in rows):
        return 1
    return 1 if args.strict and not all(row["passed"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
