"""`make bench`: FHIR read and create throughput against the framework ceiling, per backend.

One uvicorn worker serves the FHIR app plus a constant route; ceiling, read and create are
measured in interleaved rounds (medians reported) on SQLite and on PostgreSQL.
"""

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench import machine, report, seed, token_cost, wrk
from bench.backends import BACKENDS, UnavailableError, database
from bench.loadgen import PythonLoad
from bench.process import ROOT, Server, serve
from bench.scenario import Measurement, Scenario, scenarios

OUTPUT = ROOT / "bench" / "results" / "latest.json"


class LoadGenerator(Protocol):
    """What the runner needs of a load generator."""

    name: str

    def run(
        self, server: Server, scenario: Scenario, connections: int, seconds: int
    ) -> Measurement: ...


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (defaults suit a 2-core machine: about 2 minutes per backend)."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    add = parser.add_argument
    add("--backend", choices=[*BACKENDS, "all"], default="all")
    add("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    add("--duration", type=int, default=6, help="measured seconds per run")
    add("--warmup", type=int, default=1, help="warm-up seconds before each run")
    add("--rounds", type=int, default=5, help="interleaved rounds; medians are reported")
    add("--connections", type=int, default=16, help="concurrent keep-alive connections")
    add("--flags", type=int, default=100, help="Flags created up front and read round-robin")
    add("--output", type=Path, default=OUTPUT)
    add("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def pick_loadgen(choice: str) -> LoadGenerator:
    """wrk if asked for or found on PATH, else the built-in generator."""
    executable = wrk.find()
    if choice == "wrk" and executable is None:
        raise SystemExit("--loadgen wrk: wrk is not on PATH (apt-get install wrk)")
    if choice != "python" and executable is not None:
        return wrk.WrkLoad(executable)
    return PythonLoad()


def measure(
    load: LoadGenerator, server: Server, scenario: Scenario, args: argparse.Namespace
) -> Measurement:
    """A warm-up run (discarded), then a measured run with CPU accounting."""
    if args.warmup > 0:
        load.run(server, scenario, args.connections, args.warmup)
    probe = machine.Probe(server)
    return probe.finish(load.run(server, scenario, args.connections, args.duration))


def _progress(backend: str, round_no: int, scenario: Scenario, m: Measurement) -> None:
    cpu = "-" if m.server_cpu is None else f"{m.server_cpu:.0%} of a core"
    errors = f", {m.errors} errors" if m.errors else ""
    print(
        f"  [{backend} round {round_no}] {scenario.label:<22} {m.rps:>9,.0f} req/s"
        f"  (server CPU {cpu}{errors})",
        flush=True,
    )


def bench_backend(
    backend: str, url: str, args: argparse.Namespace, load: LoadGenerator, workdir: Path
) -> dict[str, Any]:
    """Serve `url`, seed it, check each scenario once, measure in interleaved rounds, then
    time the token check in-process."""
    with serve(url, workdir) as server:
        flag_body, paths = seed.seed(server, args.flags)
        plan = scenarios(paths, flag_body, seed.seed_notified(server, url))
        sizes = {s.name: seed.check(server, s) for s in plan}
        busy = machine.quiet_check(backend)
        runs: dict[str, list[Measurement]] = {s.name: [] for s in plan}
        batching: dict[str, list[float]] = {s.name: [] for s in plan}
        for r in range(args.rounds):
            for s in plan[r % len(plan) :] + plan[: r % len(plan)]:
                before = audit_counts(server)
                found = measure(load, server, s, args)
                batching[s.name].append(per_commit(before, audit_counts(server)))
                _progress(backend, r + 1, s, found)
                runs[s.name].append(found)
        token_check = token_cost.measure(url, f"{server.url}/fhir", server.tokens.token())
    return {
        "busy_cores_before": busy,
        "notification_cost": notification_cost(runs["create"], runs["notified"]),
        "response_bytes": sizes,
        "scenarios": report.summarise(plan, runs),
        "token_check": token_check,
        "audit_records_per_commit": {k: max(v) for k, v in batching.items() if max(v) > 0},
    }


def notification_cost(
    quiet: list[Measurement], notified: list[Measurement]
) -> dict[str, float | None]:
    """What notifying costs a create: the median, over rounds, of each round's notified
    req/s over the same round's quiet create req/s, and of server CPU per request the other
    way round (1.0: no cost; 0.87: 15% more)."""
    rates = [n.rps / q.rps for q, n in zip(quiet, notified, strict=True) if q.rps and n.rps]
    cpu = [
        q.server_us / n.server_us
        for q, n in zip(quiet, notified, strict=True)
        if q.server_us and n.server_us
    ]
    return {
        "throughput_ratio": statistics.median(rates) if rates else None,
        "cpu_ratio": statistics.median(cpu) if cpu else None,
    }


def notification_notes(results: dict[str, Any]) -> str:
    """The notified create against the quiet one, per backend."""
    lines = [
        "\nnotifying (a Flag about a child whose responsible authority subscribes, against one "
        "about a child nobody else is responsible for; paired per round, median):"
    ]
    for backend, found in results.items():
        cost = found["notification_cost"]
        rate, cpu = cost["throughput_ratio"], cost["cpu_ratio"]
        shown = "n/a" if rate is None else f"{rate:.1%} of the quiet create's req/s"
        if cpu is not None:
            shown += f", {cpu:.1%} by server CPU per request"
        lines.append(f"  {backend}: {shown} (target >= 87%: at most 15% more)")
    return "\n".join(lines)


def audit_counts(server: Server) -> tuple[int, int]:
    """(audit records stored in batches, batch commits) so far, from the server's /_status."""
    found = httpx.get(f"{server.url}/_status", timeout=5.0).json().get("audit", {})
    return int(found.get("records_batched", 0)), int(found.get("batch_commits", 0))


def per_commit(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Audit records per batch commit between two counts (0 when none was batched)."""
    records, commits = after[0] - before[0], after[1] - before[1]
    return records / commits if commits else 0.0


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _environment(args: argparse.Namespace, load: LoadGenerator) -> dict[str, Any]:
    return {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadgen": load.name,
        "settings": {k: str(v) for k, v in vars(args).items()},
    }


def run_backends(args: argparse.Namespace, load: LoadGenerator) -> tuple[dict[str, Any], int]:
    """Benchmark each selected backend: the results, and how many backends failed to run."""
    results: dict[str, Any] = {}
    failed = 0
    for backend in BACKENDS if args.backend == "all" else (args.backend,):
        print(f"{backend}:", flush=True)
        with tempfile.TemporaryDirectory(prefix="safeguard-bench-") as tmp:
            try:
                with database(backend, Path(tmp)) as url:
                    results[backend] = bench_backend(backend, url, args, load, Path(tmp))
            except UnavailableError as exc:
                print(f"  skipped: {exc}", flush=True)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
                failed += 1
    return results, failed


def token_notes(results: dict[str, Any]) -> str:
    """Where a read's time goes on the token: the in-process check against the read's CPU."""
    lines = [
        "\nread and create carry a bearer token, checked by the server on each request (the "
        "ceiling carries none).",
        f"The check timed in-process, {token_cost.SECONDS:g} s of calls (bench/token_cost.py); "
        "CPU: this process's, against the server's per read; machine-wide: all cores' busy "
        "time, PostgreSQL's (and any other process's) included:",
    ]
    for backend, found in results.items():
        read_us = found["scenarios"]["read"]["server_us_per_request"]
        lines.append("  " + token_cost.note(backend, found["token_check"], read_us))
    return "\n".join(lines)


def audit_notes(results: dict[str, Any]) -> str:
    """How many requests' audit records shared each commit under load."""
    lines = [
        "\naudit records per commit under load (reads and other non-writes; a write's "
        "record is stored in its own transaction):"
    ]
    for backend, found in results.items():
        shares = ", ".join(f"{k} {v:.1f}" for k, v in found["audit_records_per_commit"].items())
        lines.append(f"  {backend}: {shares or 'none batched'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write the JSON; non-zero on errors (or missed targets if strict)."""
    args = parse_args(argv)
    load = pick_loadgen(args.loadgen)
    print(
        f"load generator: {load.name}; {args.rounds} rounds x {args.duration}s "
        f"(+{args.warmup}s warm-up), {args.connections} connections",
        flush=True,
    )
    results, failed = run_backends(args, load)
    if not results:
        print("no backend could be benchmarked", file=sys.stderr)
        return 1
    print("\n" + report.table(results))
    print(token_notes(results))
    print(audit_notes(results))
    print(notification_notes(results))
    report.write_json(args.output, {**_environment(args, load), "backends": results})
    print(f"\nresults written to {args.output}")
    rows = [row for found in results.values() for row in found["scenarios"].values()]
    if failed or any(row["errors"] for row in rows):
        return 1
    return 1 if args.strict and any(row["passed"] is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
