"""The reconcile report (`app.reconcile.report`): counts, then the differences on the terminal,
at most `SHOWN` of them there (a nightly run's thousands go to the report file)."""

import io
from pathlib import Path

import orjson
from rich.console import Console

from app.reconcile.matching import NEW, Difference, Plan
from app.reconcile.register import Entry
from app.reconcile.report import SHOWN, document, show, write
from tests.factories import nhs_number


def _plan(new: int) -> Plan:
    entries = [
        Entry(f"line {n + 2}", nhs_number(6000 + n), "child-in-need", "2026-01-05", None, "9ZZ")
        for n in range(new)
    ]
    return Plan([Difference(NEW, entry=e) for e in entries])


def _shown(plan: Plan) -> str:
    out = io.StringIO()
    show(Console(file=out, width=300), document(plan, None, 3), applying=False)
    return out.getvalue()


def test_a_few_differences_are_all_listed_on_the_terminal() -> None:
    text = _shown(_plan(3))

    assert all(f"line {n + 2}" in text for n in range(3))
    assert "more differences" not in text


def test_the_terminal_lists_the_first_differences_and_says_how_many_more_the_file_has(
    tmp_path: Path,
) -> None:
    plan = _plan(SHOWN + 7)

    text = _shown(plan)
    write(tmp_path / "report.json", document(plan, None, 3), "json")

    assert f"line {SHOWN + 1}" in text and f"line {SHOWN + 2}" not in text
    assert "and 7 more differences" in text
    found = orjson.loads((tmp_path / "report.json").read_bytes())
    assert len(found["differences"]) == SHOWN + 7
    assert found["counts"][NEW] == SHOWN + 7
