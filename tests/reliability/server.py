"""The real server as a subprocess (`python -m app.cli serve`), started, killed and restarted
by the reliability scenarios, and a bearer token of a `system` client to call it with."""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from app.auth import commands
from app.auth.clients import find, local_key_pair, register
from app.settings import Settings
from app.storage.db import make_database

REPO = Path(__file__).resolve().parents[2]
CLIENT = "reliability-system"
TOKEN_LIFETIME = 3600  # seconds: one token lasts a whole scenario
READY_DEADLINE = 60.0  # seconds for a (re)started server to answer /_ping: a liveness bound


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """One `safeguard serve` process on its own port over `database_url`; `env` adds
    SAFEGUARD_* settings. Its output goes to `log_path`, kept across restarts."""

    def __init__(self, database_url: str, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.origin}/fhir"
        self.log_path = log_path
        self.env = {
            "SAFEGUARD_DATABASE_URL": database_url,
            "SAFEGUARD_BASE_URL": self.base_url,
            "SAFEGUARD_TOKEN_LIFETIME_SECONDS": str(TOKEN_LIFETIME),
            "SAFEGUARD_LOG_LEVEL": "WARNING",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        """The server's process id (it must be running)."""
        assert self.process is not None
        return self.process.pid

    def settings(self) -> Settings:
        """The server's settings, as its environment makes them."""
        changes = {k.removeprefix("SAFEGUARD_").lower(): v for k, v in self.env.items()}
        return Settings.model_validate(changes)

    def launch(self) -> None:
        """Start the process (migrating first); `ready` waits for it to answer."""
        assert self.process is None, "already running"
        command = [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, "--no-seed-demo"],
                cwd=REPO,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: kill -9 reaches any worker too
            )
        self.starts += 1

    async def ready(self) -> None:
        """Wait until /_ping answers 200; fail if the process died or the deadline passed."""
        deadline = time.monotonic() + READY_DEADLINE
        async with httpx.AsyncClient(base_url=self.origin, timeout=2) as http:
            while time.monotonic() < deadline:
                assert self.process is not None and self.process.poll() is None, self.log_tail()
                try:
                    if (await http.get("/_ping")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"server not ready in {READY_DEADLINE} s\n{self.log_tail()}")

    async def start(self) -> None:
        """Launch and wait until ready."""
        self.launch()
        await self.ready()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` (kill -9 by default) to the server's process group and reap it."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """Stop the server gracefully if it runs (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output, for a failure message."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def bearer(self) -> dict[str, str]:
        """The Authorization header of a `system/*.cruds` client registered on its database."""
        return self.bearer_of(CLIENT, "Organization/reliability", "system")

    def bearer_of(self, client_id: str, organisation: str, role: str) -> dict[str, str]:
        """The Authorization header of a `system/*.cruds` client of `organisation` with `role`,
        registered on the server's database the first time."""
        with ThreadPoolExecutor(1) as pool:  # callers may be inside a running event loop
            found = pool.submit(_token, self.settings(), client_id, organisation, role)
            token = found.result()
        return {"Authorization": f"Bearer {token}"}


def _token(settings: Settings, client_id: str, organisation: str, role: str) -> str:
    """Register a client (once per database) and mint its token in-process."""

    async def register_once() -> None:
        db = make_database(settings.database_url, 1, 2)
        await db.open()
        try:
            async with db.reader() as conn:
                if await find(conn, client_id) is not None:
                    return
            private, public = local_key_pair()
            scope = "system/*.cruds"
            await register(db, client_id, organisation, role, scope, public, private)
        finally:
            await db.close()

    asyncio.run(register_once())
    return commands.local_token(settings, client_id)
