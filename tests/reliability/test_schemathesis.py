"""schemathesis over the OpenAPI document against the real server, for a bounded number of
cases (seeded): no request it makes is answered with a server error."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.reliability.conftest import QUICK, backend_of, report, scaled
from tests.reliability.server import REPO, Server

SEED = 14
PHASES = "examples,fuzzing" if QUICK else "examples,coverage,fuzzing,stateful"


def _schemathesis(
    server: Server, workdir: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run `schemathesis run` with the `not_a_server_error` check; its output and report."""
    report_path = workdir / "schemathesis.json"
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "run", str(REPO / "openapi/openapi.json")),
        *("--url", server.origin, "-H", f"Authorization: {server.bearer()['Authorization']}"),
        *("--checks", "not_a_server_error", "--max-examples", str(scaled(4, 60))),
        *("--seed", str(SEED), "--phases", PHASES, "--workers", "2", "--request-timeout", "60"),
        *("--generation-database", "none", "--no-color", "--report", "json"),
        *("--report-json-path", str(report_path), "--report-dir", str(workdir)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=workdir, timeout=3000)
    return done, json.loads(report_path.read_text()) if report_path.exists() else {}


async def test_no_generated_request_gets_a_server_error(database_url: str, tmp_path: Path) -> None:
    server = Server(database_url, tmp_path / "server.log")
    try:
        await server.start()
        done, run = await asyncio.to_thread(_schemathesis, server, tmp_path)
    finally:
        server.stop()
    cases = run.get("test_cases", {})
    report(
        f"schemathesis ({backend_of(database_url)})",
        cases=cases.get("generated"),
        with_failures=cases.get("with_failures"),
        errored=cases.get("errored"),
        seed=SEED,
    )
    assert done.returncode == 0 and run.get("failures") == [], (
        done.stdout[-8000:] + done.stderr[-2000:]
    )
    assert cases.get("generated", 0) > 0, done.stdout[-4000:]
