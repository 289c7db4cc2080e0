"""What a reconciliation found, shown on the terminal (counts per category, then each
difference) and written as JSON or CSV for the job that runs it."""

import csv
import io
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from app.reconcile.matching import CATEGORIES, SAME, Difference, Plan
from app.reconcile.writing import Applied

SHOWN = 50  # differences listed on the terminal; the report file has them all
CSV_COLUMNS = (
    "category",
    "where",
    "nhs_number",
    "flag_type",
    "start",
    "end",
    "flag",
    "changes",
    "reason",
)


def rows(plan: Plan, applied: Applied | None = None) -> list[dict[str, Any]]:
    """One row per record that is not the same, refusals at apply time included."""
    refused = {id(d): why for d, why in (applied.refused if applied else [])}
    found = []
    for difference in plan.differences:
        if difference.category == SAME:
            continue
        row = _row(difference)
        if id(difference) in refused:
            row["reason"] = f"refused by the server: {refused[id(difference)]}"
        found.append(row)
    return found


def _row(d: Difference) -> dict[str, Any]:
    entry, flag = d.entry, d.flag
    return {
        "category": d.category,
        "where": entry.where if entry else "",
        "nhs_number": entry.nhs_number if entry else (flag.nhs_number if flag else ""),
        "flag_type": entry.flag_type if entry else (flag.flag_type if flag else ""),
        "start": entry.start if entry else (flag.start if flag else ""),
        "end": (entry.end if entry else (flag.end if flag else None)) or "",
        "flag": f"Flag/{flag.id}" if flag else "",
        "changes": "; ".join(f"{name}: {here} -> {listed}" for name, here, listed in d.changes),
        "reason": d.reason or "",
    }


def document(plan: Plan, applied: Applied | None, requests: int) -> dict[str, Any]:
    """The JSON report."""
    return {
        "counts": plan.counts(),
        "applied": None
        if applied is None
        else {
            "written": applied.written,
            "bundles": applied.bundles,
            "refused": len(applied.refused),
        },
        "requests": requests,
        "differences": rows(plan, applied),
    }


def write(path: Path, found: dict[str, Any], form: str) -> None:
    """The report as JSON, or its differences as CSV."""
    if form == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(found["differences"])
        path.write_text(out.getvalue(), encoding="utf-8")
    else:
        path.write_bytes(orjson.dumps(found, option=orjson.OPT_INDENT_2) + b"\n")


def show(console: Console, found: dict[str, Any], applying: bool) -> None:
    """Counts per category, then the first `SHOWN` differences."""
    counts = Table(title="reconciliation" + (" (applied)" if applying else " (dry run)"))
    counts.add_column("category")
    counts.add_column("records", justify="right")
    for category in CATEGORIES:
        counts.add_row(category, f"{found['counts'][category]:,}")
    console.print(counts)
    if found["applied"] is not None:
        done = found["applied"]
        console.print(
            f"written: {done['written']:,} in {done['bundles']:,} transaction(s); "
            f"refused by the server: {done['refused']:,}"
        )
    if not found["differences"]:
        return
    table = Table(title="differences")
    for column in ("category", "where", "nhs_number", "flag_type", "start", "end", "flag"):
        table.add_column(column)
    table.add_column("what differs, or why it conflicts")
    for row in found["differences"][:SHOWN]:
        cells = [
            str(row[c])
            for c in ("category", "where", "nhs_number", "flag_type", "start", "end", "flag")
        ]
        table.add_row(*cells, "; ".join(part for part in (row["changes"], row["reason"]) if part))
    console.print(table)
    if len(found["differences"]) > SHOWN:
        more = len(found["differences"]) - SHOWN
        console.print(f"... and {more:,} more differences: --report FILE writes them all")
