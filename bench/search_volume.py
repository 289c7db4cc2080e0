"""`make bench-search`: search latency over HTTP on a bulk-loaded population, per backend.

Each backend gets a fresh migrated database, bulk-loaded (`app.storage.bulk`) with a seeded
population (`bench.population`: 100,000 children by default, ~700,000 resources), analysed,
then served by one uvicorn worker. Each query is sent `--samples` times in turn on one
keep-alive connection, a different child, NHS number or code each time, and every answer is
checked against what the population says it must hold.
"""

import argparse
import asyncio
import bisect
import datetime
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

import asyncpg
import httpx

from app.access import SYSTEM
from app.criteria import Query as SearchQuery
from app.fhir.search import parsing as search
from app.flags import follow_ups
from app.flags.codes import vocabulary
from app.records import writing
from app.storage.bulk import WrittenAs, bulk_load
from app.storage.db import asyncpg_dsn, sqlite_path
from app.storage.query import search_sql
from app.storage.tables import metadata
from bench import population as pop
from bench.backends import BACKENDS, UnavailableError, database
from bench.process import ROOT, Server, serve
from bench.report import write_json

OUTPUT = ROOT / "bench" / "results" / "search_volume.json"
BASE = "http://127.0.0.1/fhir"  # references are relative, so the index does not depend on it
DEFAULT_PAGE = 20  # the server's default _count (Settings.default_page_size)
TARGET_MS, TARGET_RATIO = 20.0, 3.0
FAMILY_PREFIXES = ("Sm", "Jo", "Wi", "Ta", "Br", "Ro", "Ha", "Wa", "Kh", "Pa")
TABLES = [table.name for table in metadata.sorted_tables]
COLUMNS = ("backend", "query", "n", "median ms", "p95 ms", "p95/read", "target", "result", "checks")


@dataclass(frozen=True, slots=True)
class Probe:
    """One request to time, and what its answer must hold."""

    path: str
    matches: int | None = None  # entries with search.mode "match" (over all pages if paged)
    included: int | None = None  # entries with search.mode "include"
    check: Callable[[dict[str, Any]], bool] | None = None


class Facts:
    """What the population says each query must find, precomputed once."""

    def __init__(self, population: pop.Population) -> None:
        self.population = population
        self.active_by_code = [0] * len(pop.FLAG_CODES)
        self.births: dict[str, list[datetime.date]] = {p: [] for p in FAMILY_PREFIXES}
        for child in population.children:
            for flag in child.flags:
                self.active_by_code[flag.code] += flag.status == "active"
            if child.family[:2] in self.births:
                self.births[child.family[:2]].append(child.birth_date)
        for dates in self.births.values():
            dates.sort()

    def born_since(self, prefix: str, year: int) -> int:
        """Children whose family name starts with `prefix`, born in `year` or later."""
        dates = self.births[prefix]
        return len(dates) - bisect.bisect_left(dates, datetime.date(year, 1, 1))


def _nhs(child: pop.Child) -> str:
    return quote(f"{pop.NHS}|{child.nhs}", safe="")


def read_flag(facts: Facts, rng: random.Random) -> Probe:
    """`GET /fhir/Flag/{id}`: the baseline the single-patient searches are held to."""
    flag = rng.choice(rng.choice(facts.population.children).flags)
    return Probe(f"/fhir/Flag/{flag.id}", check=lambda body: body.get("id") == flag.id)


def flags_active(facts: Facts, rng: random.Random) -> Probe:
    """A child's active Flags."""
    child = rng.choice(facts.population.children)
    active = sum(f.status == "active" for f in child.flags)
    return Probe(f"/fhir/Flag?patient={child.id}&status=active", matches=active)


def flags_by_nhs(facts: Facts, rng: random.Random) -> Probe:
    """A child's Flags, found through the Patient's NHS number (a chained search)."""
    child = rng.choice(facts.population.children)
    return Probe(f"/fhir/Flag?patient.identifier={_nhs(child)}", matches=len(child.flags))


def patient_with_flags(facts: Facts, rng: random.Random) -> Probe:
    """A child by NHS number, with every Flag on it."""
    child = rng.choice(facts.population.children)
    path = f"/fhir/Patient?identifier={_nhs(child)}&_revinclude=Flag:patient"
    return Probe(path, matches=1, included=len(child.flags))


def active_by_code(facts: Facts, rng: random.Random) -> Probe:
    """Every active Flag with one code, 50 a page."""
    index = rng.randrange(len(pop.FLAG_CODES))
    system, code = pop.FLAG_CODES[index][:2]
    path = f"/fhir/Flag?code={quote(f'{system}|{code}', safe='')}&status=active&_count=50"
    return Probe(path, matches=facts.active_by_code[index])


def family_born_since(facts: Facts, rng: random.Random) -> Probe:
    """Children by family-name prefix born since a year (first page only)."""
    prefix, year = rng.choice(FAMILY_PREFIXES), rng.randint(2010, 2022)

    def check(bundle: dict[str, Any]) -> bool:
        found = [e["resource"] for e in bundle.get("entry", [])]
        return all(
            p["name"][0]["family"].startswith(prefix) and p["birthDate"] >= str(year) for p in found
        )

    expected = min(facts.born_since(prefix, year), DEFAULT_PAGE)
    return Probe(f"/fhir/Patient?family={prefix}&birthdate=ge{year}", expected, None, check)


@dataclass(frozen=True, slots=True)
class Query:
    """A query under test: how to draw a probe, and whether the PostgreSQL targets apply."""

    name: str
    label: str
    probe: Callable[[Facts, random.Random], Probe]
    single_patient: bool = False
    paged: bool = False


QUERIES = (
    Query("read", "GET Flag/{id}", read_flag),
    Query("flag_patient_active", "Flag?patient=X&status=active", flags_active, True),
    Query("flag_patient_nhs", "Flag?patient.identifier=nhs|N", flags_by_nhs, True),
    Query(
        "patient_revinclude",
        "Patient?identifier=nhs|N&_revinclude=Flag:patient",
        patient_with_flags,
        True,
    ),
    Query(
        "flag_code_pages",
        "Flag?code=C&status=active&_count=50 (per page)",
        active_by_code,
        paged=True,
    ),
    Query("patient_family_birthdate", "Patient?family=Sm&birthdate=ge2015", family_born_since),
)


@dataclass(slots=True)
class Timings:
    """Latencies of one query, pages walked, the first few failures; cut short at `deadline`."""

    deadline: float = math.inf
    latencies: list[float] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    failed: int = 0
    truncated: bool = False

    def fail(self, message: str) -> None:
        """Count a failure, keeping the first few messages."""
        self.failed += 1
        if len(self.failures) < 5:
            self.failures.append(message)


def _get(client: httpx.Client, url: str, timings: Timings) -> dict[str, Any] | None:
    """GET and time one request; the JSON body if 200, else None (a failure noted)."""
    started = time.perf_counter()
    response = client.get(url)
    timings.latencies.append((time.perf_counter() - started) * 1000)
    if response.status_code != 200:
        timings.fail(f"{url}: {response.status_code} {response.text[:200]}")
        return None
    body: dict[str, Any] = response.json()
    return body


def _modes(bundle: dict[str, Any]) -> tuple[int, int]:
    modes = [e.get("search", {}).get("mode") for e in bundle.get("entry", [])]
    return modes.count("match"), modes.count("include")


def _next(bundle: dict[str, Any]) -> str | None:
    return next((x["url"] for x in bundle.get("link", []) if x["relation"] == "next"), None)


def run_probe(client: httpx.Client, probe: Probe, paged: bool, timings: Timings) -> None:
    """Send a probe (following `next` links if paged) and check the answer."""
    url: str | None = probe.path
    matches = included = pages = 0
    while url is not None:
        if time.monotonic() > timings.deadline:
            timings.truncated = True
            return
        body = _get(client, url, timings)
        if body is None:
            return
        if probe.check is not None and not probe.check(body):
            timings.fail(f"{url}: unexpected content")
        found = _modes(body)
        matches, included, pages = matches + found[0], included + found[1], pages + 1
        url = _next(body) if paged else None
    timings.pages.append(pages)
    counted = (("matches", matches, probe.matches), ("included", included, probe.included))
    for what, got, want in counted:
        if want is not None and got != want:
            timings.fail(f"{probe.path}: {got} {what}, expected {want}")


def time_query(server: Server, query: Query, facts: Facts, args: argparse.Namespace) -> Timings:
    """Warm up (first pages, discarded), then time probes one after the other, within budget."""
    rng = random.Random(f"{args.seed}-{query.name}")
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=60.0) as client:
        for _ in range(20):
            run_probe(client, query.probe(facts, rng), False, Timings())
        timings = Timings(deadline=time.monotonic() + args.budget)
        for _ in range(args.walks if query.paged else args.samples):
            if not timings.truncated:
                run_probe(client, query.probe(facts, rng), query.paged, timings)
    return timings


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if values[1:] else values[0]


def summarise(
    query: Query, timings: Timings, read_p95: float | None, backend: str
) -> dict[str, Any]:
    """Median and p95, the ratio to the read's p95, and the verdict where a target applies."""
    values = timings.latencies or [float("nan")]
    p95 = _p95(values)
    ratio = p95 / read_p95 if read_p95 and query.name != "read" else None
    targeted = query.single_patient and backend == "postgresql"
    within = p95 < TARGET_MS and ratio is not None and ratio <= TARGET_RATIO
    return {
        "label": query.label,
        "requests": len(timings.latencies),
        "median_ms": statistics.median(values),
        "p95_ms": p95,
        "ratio_to_read_p95": ratio,
        "target": f"<{TARGET_MS:.0f} ms, <={TARGET_RATIO:.0f}x" if targeted else None,
        "passed": False if timings.failed else (within if targeted else None),
        "failed": timings.failed,
        "failures": timings.failures,
        "truncated": timings.truncated,
        "walks": len(timings.pages) if query.paged else None,
        "pages": sum(timings.pages) if query.paged else None,
    }


claimed_numbers = follow_ups.claimed_numbers  # the NHS numbers a Patient claims, as the server


def written_as(base: str) -> WrittenAs:
    """A resource as a system client writes it, by the server's own rules, at `base`."""
    return writing.written_as(SYSTEM, vocabulary(base), base)


async def _pg_prepare(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("VACUUM (ANALYZE)")
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
    finally:
        await conn.close()


def _sqlite_prepare(url: str) -> dict[str, int]:
    conn = sqlite3.connect(sqlite_path(url))
    try:
        conn.execute("ANALYZE")
        conn.execute("PRAGMA optimize")
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def load(backend: str, url: str, population: pop.Population) -> dict[str, Any]:
    """Bulk-load the population, then analyse; rows written and how fast."""
    started = time.perf_counter()
    resources = pop.resources(population)
    ids = asyncio.run(
        bulk_load(
            url, resources, BASE, claimed_numbers=claimed_numbers, written_as=written_as(BASE)
        )
    )
    loaded = time.perf_counter() - started
    rows = asyncio.run(_pg_prepare(url)) if backend == "postgresql" else _sqlite_prepare(url)
    analysed = time.perf_counter() - started - loaded
    total = sum(rows.values())
    print(
        f"  loaded {len(ids):,} resources ({total:,} rows) in {loaded:.1f}s: "
        f"{len(ids) / loaded:,.0f} resources/s, {total / loaded:,.0f} rows/s; "
        f"analysed in {analysed:.1f}s",
        flush=True,
    )
    return {
        "resources": len(ids),
        "rows": rows,
        "load_seconds": loaded,
        "resources_per_second": len(ids) / loaded,
        "rows_per_second": total / loaded,
        "analyse_seconds": analysed,
    }


async def _explain_pg(url: str, statements: list[tuple[str, list[Any]]]) -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url), server_settings={"jit": "off"})
    try:
        lines = []
        for sql, args in statements:
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
            lines += [f"-- {sql}", *(row[0] for row in rows)]
        return lines
    finally:
        await conn.close()


def _first_page_sql(resource_type: str, query_string: str) -> tuple[str, list[Any]]:
    """The statement (text, arguments) that finds a search's first page of 20, as a system
    caller's."""
    parsed = search.parse(resource_type, parse_qsl(query_string), BASE)
    return search_sql(SearchQuery(resource_type, parsed.criteria, 21), SYSTEM)


def explain(url: str, facts: Facts) -> dict[str, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL of the SQL two of the queries run, for one child."""
    child = facts.population.children[len(facts.population.children) // 2]
    shown = {
        "Flag": f"patient={child.id}&status=active",
        "Patient": f"identifier={_nhs(child)}&_revinclude=Flag:patient",
    }
    plans: dict[str, list[str]] = {}
    for resource_type, query_string in shown.items():
        lines = asyncio.run(_explain_pg(url, [_first_page_sql(resource_type, query_string)]))
        plans[f"{resource_type}?{query_string}"] = lines
    return plans


def bench_backend(
    backend: str, url: str, workdir: Path, population: pop.Population, args: argparse.Namespace
) -> dict[str, Any]:
    """Load, serve, time every query, explain two; the backend's results."""
    loaded = load(backend, url, population)
    facts = Facts(population)
    queries: dict[str, Any] = {}
    with serve(url, workdir, timeout=120.0) as server:
        for query in QUERIES:
            timings = time_query(server, query, facts, args)
            read_p95 = queries["read"]["p95_ms"] if "read" in queries else None
            queries[query.name] = summarise(query, timings, read_p95, backend)
            row = queries[query.name]
            print(
                f"  {query.label:<52} median {row['median_ms']:7.2f} ms  p95 "
                f"{row['p95_ms']:7.2f} ms  ({row['failed']} failed)",
                flush=True,
            )
    plans = explain(url, facts) if backend == "postgresql" else {}
    for key, lines in plans.items():
        print(f"\n  EXPLAIN {key}\n    " + "\n    ".join(lines), flush=True)
    return {"load": loaded, "queries": queries, "plans": plans}


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or value != value else format(value, spec)


def table(results: dict[str, dict[str, Any]]) -> str:
    """The results as a fixed-width table."""
    lines = [COLUMNS]
    for backend, found in results.items():
        for row in found["queries"].values():
            result = {None: "-", True: "PASS", False: "FAIL"}[row["passed"]]
            checks = "ok" if not row["failed"] else f"{row['failed']} failed"
            checks += ", cut short at --budget" if row["truncated"] else ""
            if row["pages"] is not None:
                checks += f", {row['pages']} pages / {row['walks']} walks"
            lines.append(
                (
                    backend,
                    row["label"],
                    str(row["requests"]),
                    _fmt(row["median_ms"], ".2f"),
                    _fmt(row["p95_ms"], ".2f"),
                    _fmt(row["ratio_to_read_p95"], ".2f"),
                    row["target"] or "-",
                    result,
                    checks,
                )
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.search_volume", description=__doc__)
    add = parser.add_argument
    add("--backend", choices=[*BACKENDS, "all"], default="all")
    add("--patients", type=int, default=100_000, help="children in the population")
    add("--samples", type=int, default=200, help="requests per query")
    add("--walks", type=int, default=5, help="paged searches followed to the end")
    add("--budget", type=float, default=300.0, help="seconds at most per query")
    add("--seed", type=int, default=pop.SEED)
    add("--output", type=Path, default=OUTPUT)
    add("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def run_backends(
    args: argparse.Namespace, population: pop.Population
) -> tuple[dict[str, Any], int]:
    """Benchmark each selected backend: the results, and how many failed to run."""
    results: dict[str, Any] = {}
    failed = 0
    for backend in BACKENDS if args.backend == "all" else (args.backend,):
        print(f"{backend}:", flush=True)
        with tempfile.TemporaryDirectory(prefix="safeguard-search-") as tmp:
            try:
                with database(backend, Path(tmp)) as url:
                    results[backend] = bench_backend(backend, url, Path(tmp), population, args)
            except UnavailableError as exc:
                print(f"  skipped: {exc}", flush=True)
            except (RuntimeError, OSError, httpx.HTTPError, asyncpg.PostgresError) as exc:
                print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
                failed += 1
    return results, failed


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write the JSON; non-zero on failures (or missed targets if strict)."""
    args = parse_args(argv)
    started = time.perf_counter()
    population = pop.plan(args.patients, args.seed)
    print(f"population: {population.counts()} (planned in {time.perf_counter() - started:.1f}s)")
    results, failed = run_backends(args, population)
    if not results:
        print("no backend could be benchmarked", file=sys.stderr)
        return 1
    print("\n" + table(results))
    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    settings = {k: str(v) for k, v in vars(args).items()}
    write_json(
        args.output,
        {
            "when": when,
            "settings": settings,
            "population": population.counts(),
            "backends": results,
        },
    )
    print(f"\nresults written to {args.output}")
    rows = [row for found in results.values() for row in found["queries"].values()]
    if failed or any(row["failed"] for row in rows):
        return 1
    return 1 if args.strict and any(row["passed"] is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
