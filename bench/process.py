"""The server under test: uvicorn in a subprocess of its own, polled until ready, always stopped."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from joserfc.jwk import ECKey

from bench.auth import LIFETIME, BearerAuth, Tokens, register_client
from bench.server import BASE_URL_ENV, DATABASE_ENV

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
LIFETIME_ENV = "SAFEGUARD_TOKEN_LIFETIME_SECONDS"
RATE_LIMIT_ENV = "SAFEGUARD_RATE_LIMIT_PER_MINUTE"  # never set for the bench server


@dataclass(frozen=True, slots=True)
class Server:
    """A running server subprocess, and the bench client's tokens for it."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    tokens: Tokens

    @property
    def auth(self) -> BearerAuth:
        """httpx authentication sending the bench client's token."""
        return BearerAuth(self.tokens)

    @property
    def url(self) -> str:
        """The server's root URL."""
        return f"http://{HOST}:{self.port}"

    @property
    def host(self) -> str:
        """host:port, as sent in the Host header."""
        return f"{HOST}:{self.port}"

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server has used so far (None off Linux)."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def command(port: int) -> list[str]:
    """uvicorn serving the bench app: one worker, uvloop, httptools, no access log."""
    app = [sys.executable, "-m", "uvicorn", "bench.server:create_bench_app", "--factory"]
    listen = ["--host", HOST, "--port", str(port)]
    serving = ["--workers", "1", "--loop", "uvloop", "--http", "httptools"]
    quiet = ["--no-access-log", "--no-server-header"]  # as `safeguard serve`
    return [*app, *listen, *serving, *quiet, "--log-level", "warning"]


@contextmanager
def serve(
    database_url: str,
    workdir: Path,
    timeout: float = 30.0,
    root: Path = ROOT,
    environment: dict[str, str] | None = None,
    key: ECKey | None = None,
) -> Iterator[Server]:
    """Register the bench client (unless its `key` is given: registered before), start the
    server on a free port, wait until it is ready; stop it however the block ends. Tokens live
    `LIFETIME` seconds; no rate limit. The server runs the code of the source tree at `root`
    (this one unless told), with `environment` added to this process's."""
    key = register_client(database_url) if key is None else key
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != RATE_LIMIT_ENV}
    env |= {
        DATABASE_ENV: database_url,
        BASE_URL_ENV: f"http://{HOST}:{port}/fhir",
        LIFETIME_ENV: str(LIFETIME),
    }
    env |= environment or {}
    log = workdir / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command(port),
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(proc, port, log, Tokens(f"http://{HOST}:{port}", key))
    try:
        wait_ready(server, timeout)
        server.tokens.token()  # the first token now: a client that cannot authenticate fails here
        yield server
    finally:
        stop(proc)


def wait_ready(server: Server, timeout: float) -> None:
    """Poll /_status until it answers 200; fail early if the process dies."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise RuntimeError(f"server exited with {server.proc.returncode}:\n{tail(server)}")
            try:
                if client.get(f"{server.url}/_status").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"server not ready within {timeout:.0f}s:\n{tail(server)}")


def tail(server: Server, lines: int = 20) -> str:
    """The last lines of the server's log."""
    text = server.log.read_text(errors="replace") if server.log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers; reap it."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
