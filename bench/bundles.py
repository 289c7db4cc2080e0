"""`make bench-bundles`: resources written per second by transaction Bundles against single POSTs.

Per backend, one uvicorn worker; the same families (1 Patient, 3 RelatedPersons, 96 Flags and
Conditions alternating) are written as one 100-entry transaction each (`POST /fhir`) or as 100
single POSTs (the Patient first, the rest on its id), by 1 client and by 4 concurrent clients,
in interleaved rounds (medians reported). Every request sends `Prefer: return=minimal` and
every status is checked. Targets: transactions >= 5x the single-POST rate, and on PostgreSQL
>= 3,000 resources/s.
"""

import argparse
import datetime
import os
import statistics
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import machine
from bench.backends import BACKENDS, UnavailableError, database
from bench.bundle_load import (
    FAMILY_SIZE,
    MODES,
    PREFER,
    Bodies,
    Run,
    Serials,
    check,
    drive,
    put_council,
)
from bench.process import ROOT, Server, serve, tail
from bench.report import write_json

OUTPUT = ROOT / "bench" / "results" / "bundles.json"
TARGET_RATIO, TARGET_PG_RATE = 5.0, 3000.0
COLUMNS = (
    "backend",
    "clients",
    "transaction res/s",
    "single-POST res/s",
    "ratio",
    "tx srv us/res",
    "single srv us/res",
    "by srv CPU",
    "cores busy",
    "target",
    "result",
)


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values present, or None."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise_mode(runs: list[Run]) -> dict[str, Any]:
    """Median rate and server CPU per resource of one mode's rounds."""
    rates = [r.rate for r in runs]
    rate = median(rates)
    return {
        "resources_per_second": rate,
        "spread": (max(rates) - min(rates)) / rate if rate else None,
        "server_us_per_resource": median([r.server_us for r in runs]),
        "loadgen_cpu": median([r.loadgen_cpu_seconds / r.seconds for r in runs]),
        "machine_cores": median([r.machine_cores for r in runs]),
        "errors": sum(r.errors for r in runs),
        "rounds": [{**asdict(r), "rate": r.rate, "server_us": r.server_us} for r in runs],
    }


def cpu_ratio(modes: dict[str, dict[str, Any]]) -> float | None:
    """Server CPU per resource of single POSTs over that of transactions."""
    costs = [modes[m]["server_us_per_resource"] if m in modes else None for m in MODES]
    return costs[1] / costs[0] if costs[0] and costs[1] else None


def compare(
    backend: str, clients: int, runs: dict[str, list[Run]], problems: dict[str, str | None]
) -> dict[str, Any]:
    """Both modes at one client count, their ratio, and the verdict against the targets."""
    modes = {mode: summarise_mode(runs[mode]) for mode in MODES if runs.get(mode)}
    rates = {mode: found["resources_per_second"] for mode, found in modes.items()}
    transaction, single = rates.get("transaction"), rates.get("single")
    # The median of each round's ratio: a round's two runs are next to each other in time, so a
    # neighbour's load on the shared machine hits both about equally.
    paired = zip(runs.get("transaction", []), runs.get("single", []), strict=False)
    ratio = median([t.rate / s.rate if s.rate else None for t, s in paired])
    targets = {"ratio": TARGET_RATIO}
    if backend == "postgresql":
        targets["transaction_rate"] = TARGET_PG_RATE
    met = ratio is not None and ratio >= TARGET_RATIO
    if backend == "postgresql":
        met = met and transaction is not None and transaction >= TARGET_PG_RATE
    errors = sum(found["errors"] for found in modes.values())
    unchecked = [mode for mode, problem in problems.items() if problem]
    return {
        "clients": clients,
        "modes": modes,
        "ratio": ratio,
        "ratio_of_medians": transaction / single if transaction and single else None,
        "cpu_ratio": cpu_ratio(modes),
        "targets": targets,
        "errors": errors,
        "problems": unchecked,  # modes whose one-family check failed
        "passed": met and not errors and not unchecked,
    }


def progress(backend: str, round_no: int, run: Run) -> None:
    """One line per measured run."""
    cpu = _fmt(run.server_us, ",.0f")
    errors = f", {run.errors} errors: {run.failures[0]}" if run.errors else ""
    print(
        f"  [{backend} round {round_no}] {run.clients} client(s) {run.mode:<11} "
        f"{run.rate:>8,.0f} resources/s  server {cpu} us/resource, load generator "
        f"{run.loadgen_cpu_seconds / run.seconds:.0%} of a core, machine "
        f"{_fmt(run.machine_cores, '.1f')} cores busy{errors}",
        flush=True,
    )


def checked_modes(server: Server, bodies: Bodies, serials: Serials) -> dict[str, str | None]:
    """Each mode tried once with one family: what went wrong, per mode."""
    put_council(server)
    problems = {mode: check(server, bodies, serials, mode) for mode in MODES}
    for mode, problem in problems.items():
        if problem is not None:
            print(f"  {mode}: NOT MEASURED, one family failed: {problem}", flush=True)
            print("    server log: " + (tail(server, 5).replace("\n", "\n    ") or "-"))
    return problems


def bench_backend(
    backend: str,
    url: str,
    workdir: Path,
    bodies: Bodies,
    serials: Serials,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Serve `url`, check both modes, then measure the working ones in interleaved rounds."""
    runs: dict[int, dict[str, list[Run]]] = {n: {m: [] for m in MODES} for n in args.clients}
    with serve(url, workdir) as server:
        problems = checked_modes(server, bodies, serials)
        modes = [mode for mode in MODES if problems[mode] is None]
        busy = machine.quiet_check(backend)
        for r in range(args.rounds):
            for clients in args.clients:
                for mode in modes[r % 2 :] + modes[: r % 2]:
                    found = drive(server, bodies, serials, mode, clients, args)
                    progress(backend, r + 1, found)
                    runs[clients][mode].append(found)
    comparisons = [compare(backend, n, runs[n], problems) for n in args.clients]
    return {"busy_cores_before": busy, "checks": problems, "comparisons": comparisons}


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _rate(comparison: dict[str, Any], mode: str) -> str:
    found = comparison["modes"].get(mode)
    if found is None:
        return "-"
    return f"{_fmt(found['resources_per_second'], ',.0f')} ±{_fmt(found['spread'], '.0%')}"


def _cost(comparison: dict[str, Any], mode: str) -> str:
    found = comparison["modes"].get(mode)
    return "-" if found is None else _fmt(found["server_us_per_resource"], ",.0f")


def _busy(comparison: dict[str, Any]) -> str:
    """Median cores busy machine-wide during the transaction and the single-POST runs."""
    found = [comparison["modes"].get(mode) for mode in MODES]
    return "/".join("-" if f is None else _fmt(f["machine_cores"], ".1f") for f in found)


def _result(comparison: dict[str, Any]) -> str:
    if comparison["problems"]:
        return f"FAIL ({' and '.join(comparison['problems'])} not working)"
    if comparison["errors"]:
        return f"FAIL ({comparison['errors']} errors)"
    return "PASS" if comparison["passed"] else "FAIL"


def table(results: dict[str, dict[str, Any]]) -> str:
    """The results as a fixed-width table."""
    lines = [COLUMNS]
    for backend, found in results.items():
        target = f">= {TARGET_RATIO:.0f}x" + (
            f", tx >= {TARGET_PG_RATE:,.0f}/s" if backend == "postgresql" else ""
        )
        for row in found["comparisons"]:
            lines.append(
                (
                    backend,
                    str(row["clients"]),
                    _rate(row, "transaction"),
                    _rate(row, "single"),
                    _fmt(row["ratio"], ".2f"),
                    _cost(row, "transaction"),
                    _cost(row, "single"),
                    _fmt(row["cpu_ratio"], ".2f"),
                    _busy(row),
                    target,
                    _result(row),
                )
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    rows = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    ]
    rows.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(rows)


def legend(rounds: int) -> str:
    """What the table's columns mean."""
    return (
        f"(medians of {rounds} rounds, ± (max - min) / median; ratio: median of the rounds' "
        "ratios; srv us/res: server CPU per resource; by srv CPU: single's us/res over tx's; "
        "cores busy: the whole machine's during the tx/single runs, of "
        f"{os.cpu_count()}; Prefer: {PREFER} on every request)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (defaults: about 2 minutes per backend)."""
    parser = argparse.ArgumentParser(prog="python -m bench.bundles", description=__doc__)
    add = parser.add_argument
    add("--backend", choices=[*BACKENDS, "all"], default="all")
    add("--duration", type=float, default=8.0, help="measured seconds per run")
    add("--warmup", type=float, default=1.0, help="warm-up seconds before each run")
    add("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    add("--clients", type=int, nargs="+", default=[1, 4], help="client counts to compare at")
    add("--output", type=Path, default=OUTPUT)
    add("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def run_backends(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Benchmark each selected backend: the results, and how many failed to run."""
    bodies, serials = Bodies.build(), Serials()
    results: dict[str, Any] = {}
    failed = 0
    for backend in BACKENDS if args.backend == "all" else (args.backend,):
        print(f"{backend}:", flush=True)
        with tempfile.TemporaryDirectory(prefix="safeguard-bundles-") as tmp:
            try:
                with database(backend, Path(tmp)) as url:
                    results[backend] = bench_backend(backend, url, Path(tmp), bodies, serials, args)
            except UnavailableError as exc:
                print(f"  skipped: {exc}", flush=True)
            except (RuntimeError, OSError) as exc:
                print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
                failed += 1
    return results, failed


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write the JSON; non-zero on failures (or missed targets if strict)."""
    args = parse_args(argv)
    print(
        f"families of {FAMILY_SIZE} resources; {args.rounds} rounds x {args.duration:g}s "
        f"(+{args.warmup:g}s warm-up) per mode and client count {args.clients}; every "
        f"request sends Prefer: {PREFER}",
        flush=True,
    )
    results, failed = run_backends(args)
    if not results:
        print("no backend could be benchmarked", file=sys.stderr)
        return 1
    print("\n" + table(results))
    print(legend(args.rounds))
    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    settings = {k: str(v) for k, v in vars(args).items()}
    write_json(
        args.output,
        {
            "when": when,
            "settings": settings,
            "prefer": PREFER,
            "family_size": FAMILY_SIZE,
            "backends": results,
        },
    )
    print(f"\nresults written to {args.output}")
    rows = [row for found in results.values() for row in found["comparisons"]]
    if failed or any(row["errors"] or row["problems"] for row in rows):
        return 1
    return 1 if args.strict and not all(row["passed"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
