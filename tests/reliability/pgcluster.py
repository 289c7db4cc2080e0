"""A PostgreSQL cluster of the test's own (`initdb`, `pg_ctl`) on a free port, which the test
may stop and start again under load. Run as the `postgres` OS user when the test is root
(initdb refuses root); trust authentication, superuser `postgres`, database `postgres`."""

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.reliability.server import free_port

SUPERUSER = "postgres"


def _binary(name: str) -> str:
    """A PostgreSQL program: on PATH, or in the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    assert found, f"{name} not found: PostgreSQL's server programs are needed"
    return found


class Cluster:
    """A cluster in a fresh directory under /tmp (readable by the `postgres` user)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="safeguard-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.directory, SUPERUSER, SUPERUSER)

    @property
    def url(self) -> str:
        """The database URL of its `postgres` database."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        """Run a PostgreSQL program as the cluster's owner; fail with its output."""
        prefix = ["runuser", "-u", SUPERUSER, "--"] if self.as_root else []
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, cwd=self.directory, timeout=120
        )
        assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout}\n{done.stderr}"

    def init(self) -> None:
        """initdb: trust authentication for local connections, superuser `postgres`."""
        self._run(_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", SUPERUSER)

    def start(self) -> None:
        """pg_ctl start, waiting until it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory}"
        self._run(
            _binary("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop -m `mode` (smart, fast or immediate), waiting until it is down."""
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop it if it runs (immediately) and delete its directory."""
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)
