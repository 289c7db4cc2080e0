"""The sample registers in `examples/reconcile/` against the demo population `make run` seeds
(20 families, seed 1), run as the README runs them: with a token minted locally for a demo
council (no key given). The first finds new, changed and missing records and no conflict, and
`--apply` brings the server into line; the second shows each kind of conflict."""

import asyncio
import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from app.cli import SERVE_DEMO_FAMILIES, SERVE_DEMO_SEED, cli
from app.demo.clients import register_demo_clients
from app.demo.population import population
from app.demo.seeding import seed
from app.flags.codes import vocabulary
from app.reconcile.command import AGREED, DIFFERENT, FAILED
from app.reconcile.matching import CHANGED, CONFLICTING, MISSING, NEW, SAME
from app.settings import Settings, get_settings
from tests.conftest import database
from tests.reconcile.helpers import serving

EXAMPLES = Path(__file__).parents[2] / "examples" / "reconcile"


async def _seed_demo(client: httpx.AsyncClient, app: FastAPI, settings: Settings) -> None:
    await register_demo_clients(database(app))
    canonical = vocabulary(settings.canonical_base)
    today = datetime.date.today()
    await seed(client, population(SERVE_DEMO_FAMILIES, SERVE_DEMO_SEED, canonical, today))


async def _reconcile(
    register: str, base: str, council: str, report: Path, *more: str
) -> tuple[int, dict[str, Any]]:
    """The command's exit status and JSON report, as a shell runs it (no key: a local token)."""
    args = ["reconcile", str(EXAMPLES / register), "--server", base, "--client", council]
    args += ["--report", str(report), "--no-progress", *more]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    return result.exit_code, _read(report, result.output)


def _read(report: Path, output: str) -> dict[str, Any]:
    assert report.exists(), output
    found: dict[str, Any] = orjson.loads(report.read_bytes())
    return found


@pytest.fixture
async def demo_base(
    client: httpx.AsyncClient,
    app: FastAPI,
    same_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """The demo population served over HTTP; its base URL, where the CLI's settings point."""
    await _seed_demo(client, app, same_settings)
    async with serving(same_settings) as base:
        monkeypatch.setenv("SAFEGUARD_BASE_URL", base)
        get_settings.cache_clear()
        yield base


async def test_the_first_sample_finds_new_changed_and_missing_and_applies_once(
    demo_base: str, tmp_path: Path
) -> None:
    register, report = "council-9le.csv", tmp_path / "report.json"

    status, found = await _reconcile(register, demo_base, "demo-la-a", report)
    assert status == DIFFERENT
    assert found["counts"] == {NEW: 2, CHANGED: 1, SAME: 2, MISSING: 1, CONFLICTING: 0}
    by_category = {row["category"]: row for row in found["differences"]}
    assert by_category[CHANGED]["flag_type"] == "elective-home-education"
    assert by_category[MISSING]["flag_type"] == "domestic-abuse-in-household"

    status, found = await _reconcile(register, demo_base, "demo-la-a", report, "--apply")
    assert (status, found["applied"]) == (AGREED, {"written": 4, "bundles": 2, "refused": 0})

    status, found = await _reconcile(register, demo_base, "demo-la-a", report)
    assert (status, found["counts"][SAME], found["differences"]) == (AGREED, 5, [])


async def test_the_second_sample_shows_each_kind_of_conflict(
    demo_base: str, tmp_path: Path
) -> None:
    status, found = await _reconcile(
        "council-9bd-conflicts.csv",
        demo_base,
        "demo-la-b",
        tmp_path / "r.json",
        "--organisation",
        "9BD",
    )

    assert status == DIFFERENT
    assert found["counts"] == {NEW: 0, CHANGED: 0, SAME: 2, MISSING: 0, CONFLICTING: 6}
    reasons = {row["where"]: row["reason"] for row in found["differences"]}
    assert reasons == {
        "line 4": "the same flag is listed 2 times (line 4, line 5)",
        "line 5": "the same flag is listed 2 times (line 4, line 5)",
        "line 6": "no child with this NHS number is held here",
        "line 7": "flag type 'home-education' is not in the safeguarding flag-type value set",
        "line 8": "raised by 9LE, not by the register's organisation 9BD: the client may not "
        "change it",
        "line 9": "not a valid NHS number",
    }


async def test_a_client_with_no_local_key_and_no_key_given_is_an_error_not_a_crash(
    demo_base: str,
) -> None:
    args = ["reconcile", str(EXAMPLES / "council-9le.csv"), "--server", demo_base]
    args += ["--client", "no-such-council", "--no-progress"]

    result = await asyncio.to_thread(CliRunner().invoke, cli, args)

    assert result.exit_code == FAILED
    assert "no local token for no-such-council (give --key or --token)" in result.output
