"""Medians, ratios to the ceiling, the printed table and the JSON file."""

import json
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.scenario import Measurement, Scenario

COLUMNS = (
    "backend",
    "scenario",
    "req/s",
    "spread",
    "p50 ms",
    "p99 ms",
    "CPU srv/gen/all",
    "srv us/req",
    "vs ceiling",
    "by srv CPU",
    "target",
    "result",
)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _paired(values: list[float | None], ceilings: list[float | None]) -> float | None:
    """The median of each round's value over the same round's ceiling value."""
    ratios = [v / c for v, c in zip(values, ceilings, strict=True) if v and c]
    return statistics.median(ratios) if ratios else None


def _scenario(
    scenario: Scenario, runs: list[Measurement], ceiling: list[Measurement]
) -> dict[str, Any]:
    rates = [m.rps for m in runs]
    rps, cost = statistics.median(rates), _median([m.server_us for m in runs])
    errors = sum(m.errors for m in runs)
    other = scenario.name != "ceiling"
    ratio = _paired(rates, [m.rps for m in ceiling]) if other else None
    costs = [1 / m.server_us if m.server_us else None for m in runs]
    ceiling_costs = [1 / m.server_us if m.server_us else None for m in ceiling]
    cpu_ratio = _paired(costs, ceiling_costs) if other else None
    passed = None if scenario.target is None or ratio is None else ratio >= scenario.target
    return {
        "label": scenario.label,
        "median_rps": rps,
        "spread": (max(rates) - min(rates)) / rps if rps else None,
        "p50_ms": _median([m.p50_ms for m in runs]),
        "p99_ms": _median([m.p99_ms for m in runs]),
        "server_cpu": _median([m.server_cpu for m in runs]),
        "loadgen_cpu": _median([m.loadgen_cpu for m in runs]),
        "machine_cpu": _median([m.machine_cpu for m in runs]),
        "errors": errors,
        "server_us_per_request": cost,
        "ratio": ratio,
        "cpu_ratio": cpu_ratio,
        "target": scenario.target,
        "passed": passed if errors == 0 else False,
        "rounds": [{**asdict(m), "rps": m.rps} for m in runs],
    }


def summarise(scenarios: list[Scenario], runs: dict[str, list[Measurement]]) -> dict[str, Any]:
    """Per scenario: median req/s and server CPU per request; against the ceiling, the median
    of each round's ratio to the ceiling measured in the same round (so a slower or faster
    minute of a shared machine weighs on both sides of a ratio alike)."""
    return {s.name: _scenario(s, runs[s.name], runs["ceiling"]) for s in scenarios}


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _result(row: dict[str, Any]) -> str:
    if row["errors"]:
        return f"ERR ({row['errors']})"
    return {True: "PASS", False: "FAIL", None: ""}[row["passed"]]


def _cpu(row: dict[str, Any]) -> str:
    """Median CPU of the server, the load generator and the whole machine, in % of one core."""
    keys = ("server_cpu", "loadgen_cpu", "machine_cpu")
    return "/".join(_fmt(None if row[k] is None else row[k] * 100, ".0f") for k in keys) + "%"


def _row(backend: str, name: str, row: dict[str, Any]) -> list[str]:
    return [
        backend,
        name,
        _fmt(row["median_rps"], ",.0f"),
        "±" + _fmt(row["spread"], ".0%"),
        _fmt(row["p50_ms"], ".2f"),
        _fmt(row["p99_ms"], ".2f"),
        _cpu(row),
        _fmt(row["server_us_per_request"], ".0f"),
        _fmt(row["ratio"], ".1%"),
        _fmt(row["cpu_ratio"], ".1%"),
        ">= " + _fmt(row["target"], ".0%") if row["target"] else "",
        _result(row),
    ]


def table(backends: dict[str, dict[str, Any]]) -> str:
    """The results as an aligned text table."""
    rows = [list(COLUMNS)]
    rows += [
        _row(backend, name, row)
        for backend, found in backends.items()
        for name, row in found["scenarios"].items()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write the results, creating the folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
