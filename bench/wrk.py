"""wrk as the load generator (preferred: it costs far less CPU than the server it loads)."""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.process import Server
from bench.scenario import ACCEPT, Measurement, Scenario
from bench.server import FHIR_JSON

SCRIPT = Path(__file__).with_name("wrk.lua")
MARK = "BENCH_JSON "
ERRORS = ("connect", "read", "write", "status", "timeout")


def find() -> str | None:
    """The wrk executable on PATH, if any."""
    return shutil.which("wrk")


def _summary(stdout: str) -> dict[str, int]:
    for line in stdout.splitlines():
        if line.startswith(MARK):
            found: dict[str, int] = json.loads(line[len(MARK) :])
            return found
    raise RuntimeError(f"wrk printed no summary:\n{stdout[-2000:]}")


def _script_args(scenario: Scenario, workdir: Path) -> list[str]:
    if scenario.method == "POST":
        body = workdir / "body.json"
        body.write_bytes(scenario.body)
        return ["post", str(body), FHIR_JSON]
    return ["get", *scenario.paths]


class WrkLoad:
    """wrk with one thread and `connections` keep-alive connections (non-2xx/3xx are errors)."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.name = f"wrk ({executable})"

    def run(
        self, server: Server, scenario: Scenario, connections: int, seconds: int
    ) -> Measurement:
        """One wrk run of `seconds` (whole seconds), summarised by wrk.lua."""
        with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
            load = ["-t1", f"-c{connections}", f"-d{max(1, seconds)}s", "--timeout", "5s"]
            target = [server.url + scenario.paths[0], "--", *_script_args(scenario, Path(tmp))]
            headers = ["-H", ACCEPT]
            if scenario.authenticated:
                headers += ["-H", f"Authorization: {server.tokens.header()}"]
            command = [self.executable, *load, *headers, "-s", str(SCRIPT), *target]
            done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-2000:]}")
        found = _summary(done.stdout)
        return Measurement(
            requests=found["requests"],
            seconds=found["duration_us"] / 1e6,
            errors=sum(found[k] for k in ERRORS),
            p50_ms=found["p50_us"] / 1000,
            p99_ms=found["p99_us"] / 1000,
            extra={"bytes": found["bytes"]},
        )
