"""`make bench-summary`: latency of `GET /fhir/Patient/{id}/$safeguarding-summary` with a
large population loaded (default 100,000 families, bulk-loaded through the storage layer).

The timed children each belong to a family of 8 Patients with 40 safeguarding flags (a child,
3 siblings, a half-sibling by another mother, both parents and that mother); one request gives
each summary. One uvicorn worker, one client, requests one after the other; every answer is
checked (the 7 Patients linked to the child, its flags, the warnings). Target on PostgreSQL:
p95 < 50 ms.
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
TARGET_MS = 50.0


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


def time_summaries(server: Server, timed: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then time `samples` summaries round the timed children, one at a time."""
    latencies, failures = [], []
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=60.0) as client:
        for child in timed[: args.warmup]:
            client.get(f"/fhir/{child}/$safeguarding-summary")
        for n in range(args.samples):
            child = timed[n % len(timed)]
            started = time.perf_counter()
            response = client.get(f"/fhir/{child}/$safeguarding-summary")
            latencies.append((time.perf_counter() - started) * 1000)
            if (found := problem(child, response)) is not None:
                failures.append(found)
    p95 = statistics.quantiles(latencies, n=20, method="inclusive")[18]
    return {
        "requests": len(latencies),
        "median_ms": statistics.median(latencies),
        "p95_ms": p95,
        "max_ms": max(latencies),
        "failed": len(failures),
        "failures": failures[:5],
    }


def bench_backend(
    backend: str, url: str, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Load, serve, time; the backend's results with the verdict."""
    timed, loaded = load(backend, url, args)
    os.environ["SAFEGUARD_CANONICAL_BASE_URL"] = CANONICAL
    with serve(url, workdir, timeout=120.0) as server:
        found = time_summaries(server, timed, args)
    passed = found["p95_ms"] < TARGET_MS and not found["failed"]
    found |= {
        "target": f"p95 < {TARGET_MS:.0f} ms" if backend == "postgresql" else None,
        "passed": passed if backend == "postgresql" else None,
        "load": loaded,
    }
    print(
        f"  summary of a family of 8 with 40 flags: median {found['median_ms']:.1f} ms, "
        f"p95 {found['p95_ms']:.1f} ms, max {found['max_ms']:.1f} ms over "
        f"{found['requests']} requests ({found['failed']} failed)",
        flush=True,
    )
    for failure in found["failures"]:
        print(f"    {failure}", flush=True)
    return found


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
    failed = not results or any(r["failed"] for r in results.values())
    missed = any(r["passed"] is False for r in results.values())
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
