"""`make bench-summary`: latency of `GET /fhir/Patient/{id}/$safeguarding-summary` with a
large population loaded (default 100,000 families, bulk-loaded through the storage layer).

The timed children each belong to a family of 8 Patients with 40 safeguarding flags (a child,
3 siblings, a half-sibling by another mother, both parents and that mother); one request gives
each summary. One uvicorn worker, one client, requests one after the other; every answer is
checked (the 7 Patients linked to the child, its flags, the warnings). Each summary is asked
for twice in a row, as the Bundle and as the HTML page (`_format=html`, its family diagram
checked). Targets on PostgreSQL: p95 < 50 ms for the Bundle, < 75 ms for the page.
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from app.flags.codes import vocabulary
from app.storage.bulk import bulk_load
from bench.backends import BACKENDS, UnavailableError, database
from bench.process import ROOT, Server, serve
from bench.report import write_json
from bench.search_volume import _pg_prepare, _sqlite_prepare, claimed_numbers, written_as
from bench.summary_population import population

OUTPUT = ROOT / "bench" / "results" / "summary.json"
CANONICAL = "https://safeguard-fhir.example/fhir"  # the bench server's canonical base
TARGETS_MS = {"bundle": 50.0, "page": 75.0}  # p95 on PostgreSQL


def load(backend: str, url: str, args: argparse.Namespace) -> tuple[list[str], dict[str, Any]]:
    """Bulk-load the population and analyse it: the timed children, and load figures."""
    timed, resources = population(args.families, args.targets, args.seed, vocabulary(CANONICAL))
    started = time.perf_counter()
    ids = asyncio.run(
        bulk_load(
            url,
            resources,
            CANONICAL,
            claimed_numbers=claimed_numbers,
            written_as=written_as(CANONICAL),
        )
    )
    loaded = time.perf_counter() - started
    rows = asyncio.run(_pg_prepare(url)) if backend == "postgresql" else _sqlite_prepare(url)
    print(
        f"  loaded {len(ids):,} resources in {loaded:.0f}s ({len(ids) / loaded:,.0f}/s)", flush=True
    )
    return timed, {"resources": len(ids), "rows": rows, "load_seconds": loaded}


def problem(child: str, response: httpx.Response) -> str | None:
    """What is wrong with a summary answer, or None."""
    if response.status_code != 200:
        return f"{child}: {response.status_code} {response.text[:200]}"
    kinds = [e["resource"]["resourceType"] for e in response.json().get("entry", [])]
    if kinds.count("Patient") != 7 or kinds.count("OperationOutcome") != 1:
        return f"{child}: {kinds.count('Patient')} Patients, expected 7 and one outcome"
    if kinds.count("Flag") < 20:
        return f"{child}: only {kinds.count('Flag')} flags"
    return None


def page_problem(child: str, response: httpx.Response) -> str | None:
    """What is wrong with a summary page, or None."""
    if response.status_code != 200 or not response.headers["content-type"].startswith("text/html"):
        return f"{child} page: {response.status_code} {response.text[:200]}"
    boxes = response.content.count(b'class="member ')
    if b"<svg" not in response.content or boxes != 7:
        return f"{child} page: a family diagram of {boxes} people, expected the child and 6"
    return None


def _figures(latencies: list[float], failures: list[str]) -> dict[str, Any]:
    return {
        "requests": len(latencies),
        "median_ms": statistics.median(latencies),
        "p95_ms": statistics.quantiles(latencies, n=20, method="inclusive")[18],
        "max_ms": max(latencies),
        "failed": len(failures),
        "failures": failures[:5],
    }


def time_summaries(server: Server, timed: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then time `samples` summaries round the timed children, one at a time, each
    as the Bundle and then as the HTML page (`_format=html`)."""
    kinds = {"bundle": ("", problem), "page": ("?_format=html", page_problem)}
    latencies: dict[str, list[float]] = {kind: [] for kind in kinds}
    failures: dict[str, list[str]] = {kind: [] for kind in kinds}
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=60.0) as client:
        for child in timed[: args.warmup]:
            for query, _ in kinds.values():
                client.get(f"/fhir/{child}/$safeguarding-summary{query}")
        for n in range(args.samples):
            child = timed[n % len(timed)]
            for kind, (query, check) in kinds.items():
                started = time.perf_counter()
                response = client.get(f"/fhir/{child}/$safeguarding-summary{query}")
                latencies[kind].append((time.perf_counter() - started) * 1000)
                if (found := check(child, response)) is not None:
                    failures[kind].append(found)
    return {kind: _figures(latencies[kind], failures[kind]) for kind in kinds}


def bench_backend(
    backend: str, url: str, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Load, serve, time; the backend's results with the verdicts."""
    timed, loaded = load(backend, url, args)
    os.environ["SAFEGUARD_CANONICAL_BASE_URL"] = CANONICAL
    with serve(url, workdir, timeout=120.0) as server:
        found = time_summaries(server, timed, args)
    for kind, target in TARGETS_MS.items():
        figures = found[kind]
        passed = figures["p95_ms"] < target and not figures["failed"]
        figures |= {
            "target": f"p95 < {target:.0f} ms" if backend == "postgresql" else None,
            "passed": passed if backend == "postgresql" else None,
        }
        print(
            f"  summary of a family of 8 with 40 flags, {kind}: median "
            f"{figures['median_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, max "
            f"{figures['max_ms']:.1f} ms over {figures['requests']} requests "
            f"({figures['failed']} failed)",
            flush=True,
        )
        for failure in figures["failures"]:
            print(f"    {failure}", flush=True)
    return found | {"load": loaded}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.summary", description=__doc__)
    add = parser.add_argument
    add("--backend", choices=[*BACKENDS, "all"], default="postgresql")
    add("--families", type=int, default=100_000, help="families loaded in all")
    add("--targets", type=int, default=200, help="of them, families of 8 with 40 flags")
    add("--samples", type=int, default=1000, help="summaries timed")
    add("--warmup", type=int, default=50, help="summaries sent first, not timed")
    add("--seed", type=int, default=1)
    add("--output", type=Path, default=OUTPUT)
    add("--strict", action="store_true", help="exit 1 when the target is missed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run each backend, print the figures, write the JSON; non-zero on failures."""
    args = parse_args(argv)
    results: dict[str, Any] = {}
    for backend in BACKENDS if args.backend == "all" else (args.backend,):
        print(
            f"{backend}: {args.families:,} families, {args.targets} of 8 with 40 flags", flush=True
        )
        with tempfile.TemporaryDirectory(prefix="safeguard-summary-") as tmp:
            try:
                with database(backend, Path(tmp)) as url:
                    results[backend] = bench_backend(backend, url, Path(tmp), args)
            except UnavailableError as exc:
                print(f"  skipped: {exc}", flush=True)
    write_json(
        args.output, {"arguments": vars(args) | {"output": str(args.output)}, "results": results}
    )
    print(f"\nresults written to {args.output}")
    figures = [r[kind] for r in results.values() for kind in TARGETS_MS]
    failed = not results or any(f["failed"] for f in figures)
    missed = any(f["passed"] is False for f in figures)
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
