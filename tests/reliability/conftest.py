"""The reliability suite: the real server as a subprocess under faults and hostile load.

Collected only when SAFEGUARD_RELIABILITY is `quick` (CI's bounded form) or `full`
(`make test-reliability [QUICK=1]`). Each scenario gets a fresh database of each backend
(a SQLite file; a PostgreSQL database created on SAFEGUARD_TEST_DATABASE_URL's server and
dropped after). The figures the scenarios report (writes checked and lost, 5xx seen, peak
RSS...) are printed at the end of the run and written to reliability-figures.json in the
run's temporary directory.
"""

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, PG_ADMIN_URL, run_admin

QUICK = os.environ.get("SAFEGUARD_RELIABILITY", "quick") != "full"
FIGURES: dict[str, dict[str, Any]] = {}
for noisy in ("httpx", "httpcore"):  # thousands of requests: a failure shows its own story
    logging.getLogger(noisy).setLevel(logging.WARNING)


def scaled(quick: int, full: int) -> int:
    """`quick` in the quick form, `full` in the full one."""
    return quick if QUICK else full


def report(scenario: str, **figures: Any) -> None:
    """Keep figures of a scenario for the run's summary (and print them at once)."""
    FIGURES.setdefault(scenario, {}).update(figures)
    print(f"\n{scenario}: {figures}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures of every scenario, one line each."""
    if not FIGURES:
        return
    terminalreporter.section(f"reliability figures ({'quick' if QUICK else 'full'})")
    for scenario, figures in FIGURES.items():
        shown = ", ".join(f"{name}={value}" for name, value in figures.items())
        terminalreporter.write_line(f"{scenario}: {shown}")


@pytest.fixture(scope="session", autouse=True)
def figures_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """reliability-figures.json in the run's temporary directory, written at the end."""
    path = tmp_path_factory.getbasetemp() / "reliability-figures.json"
    yield path
    path.write_text(json.dumps({"mode": "quick" if QUICK else "full", **FIGURES}, indent=2))
    print(f"\nreliability figures written to {path}")


def _run(sql: str) -> None:
    """Run admin SQL from a sync fixture (no event loop is running there)."""
    asyncio.run(run_admin(sql))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend for one scenario (the server migrates it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'safeguard.db'}"
        return
    assert PG_ADMIN_URL is not None
    name = f"safeguard_rel_{uuid.uuid4().hex[:12]}"
    _run(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        _run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backend_of(database_url: str) -> str:
    """`sqlite` or `postgresql`."""
    return database_url.split(":", 1)[0]
