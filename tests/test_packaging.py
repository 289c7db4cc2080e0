"""`pip install .` gives a `safeguard` that works without the source tree: the wheel, built
from what the Dockerfile copies and installed alone into a fresh venv, migrates a new database
and serves it, /docs included. These are the Docker image's steps; `.ci/run` builds and runs
the image itself only where a Docker daemon answers. Runs once (not per database of the
suite): on PostgreSQL when SAFEGUARD_TEST_DATABASE_URL names a server, else on SQLite.
"""

import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import asyncpg
import httpx
import pytest
from alembic.script import ScriptDirectory

from app.storage.db import asyncpg_dsn
from app.storage.migrate import alembic_config
from tests.conftest import PG_ADMIN_URL, run_admin, with_database
from tests.docs_pages import PAGES, local_assets, served_as_itself

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("pyproject.toml", "constraints.txt", "app")  # what the Dockerfile's build stage copies
INSTALL_TIMEOUT = 300  # seconds: building and installing are bounded, not timed
READY_DEADLINE = 60.0  # seconds for the served app to answer /_status


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built by pip from a copy of what the Dockerfile copies (so
    nothing else of the work tree can stand in for a file the wheel lacks)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in COPIED:
        if (ROOT / name).is_dir():
            ignored = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, ignore=ignored)
        else:
            shutil.copy2(ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist")]
    _run([*command, str(source)], cwd=work)
    (built,) = (work / "dist").glob("safeguard_fhir-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ of a fresh venv (no site-packages of ours) with the wheel installed, its
    dependencies held to constraints.txt."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", str(venv)], cwd=venv)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt")]
    _run([*pip, str(wheel)], cwd=venv)
    return venv / "bin"


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """The URL of a database nothing has touched: a new PostgreSQL database (dropped after),
    or a SQLite file when no PostgreSQL server is named."""
    if PG_ADMIN_URL is None:
        yield f"sqlite:///{tmp_path / 'safeguard.db'}"
        return
    name = f"safeguard_wheel_{uuid.uuid4().hex[:12]}"
    asyncio.run(run_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(PG_ADMIN_URL, name)
    finally:
        asyncio.run(run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_the_wheel_holds_every_file_of_the_package(wheel: Path) -> None:
    """Modules, the migration scripts and their template, the flag vocabularies: all of app/."""
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    wanted = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "app").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert wanted - shipped == set()
    assert "app/storage/migrations/script.py.mako" in shipped
    assert "app/flags/data/safeguarding_flag_types.csv" in shipped


def test_the_installed_safeguard_migrates_and_serves(
    installed: Path, fresh_database: str, tmp_path: Path
) -> None:
    environment = _environment(fresh_database, tmp_path)
    where = [str(installed / "python"), "-c", "import app; print(app.__file__)"]
    imported = _run(where, cwd=tmp_path, env=environment)  # not the work tree's app/
    assert Path(imported.strip()).is_relative_to(installed.parent), imported
    migrated = _run([str(installed / "safeguard"), "migrate"], cwd=tmp_path, env=environment)
    assert "database is at the latest schema" in migrated
    assert _revision(fresh_database) == _head()
    port = _free_port()
    command = [str(installed / "safeguard"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            command,
            cwd=tmp_path,
            env={**environment, "SAFEGUARD_BASE_URL": f"http://127.0.0.1:{port}/fhir"},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped whole below
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            _wait_until_ready(http, server, log)
            _check_served(http)
    finally:
        _stop(server)
    # uvicorn shuts down, then ends by the signal it was sent: -SIGTERM; -SIGKILL would say
    # it did not stop when asked.
    assert server.returncode in (0, -signal.SIGTERM), log.read_text(errors="replace")


def _check_served(http: httpx.Client) -> None:
    """The CapabilityStatement, and the documentation pages with their assets."""
    metadata = http.get("/fhir/metadata")
    assert metadata.status_code == 200
    assert metadata.json()["resourceType"] == "CapabilityStatement"
    for page in PAGES:
        response = http.get(page)
        assert response.status_code == 200, page
        for url in local_assets(response.text):
            asset = http.get(url)
            served_as_itself(url, asset.status_code, asset.headers["content-type"], asset.content)


def _environment(database_url: str, workdir: Path) -> dict[str, str]:
    """This process's environment less our settings and any path to the source tree, with
    the installed app's settings: no demo population, exports under `workdir`."""
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SAFEGUARD_") and name not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    return {
        **kept,
        "SAFEGUARD_DATABASE_URL": database_url,
        "SAFEGUARD_SEED_DEMO": "false",
        "SAFEGUARD_EXPORT_DIR": str(workdir / "exports"),
        "SAFEGUARD_LOG_LEVEL": "WARNING",
    }


def _run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command to its end; its output, or a failure showing it."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{command[:4]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _head() -> str:
    """The newest revision of the source tree's migrations."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _revision(database_url: str) -> str:
    """The revision Alembic recorded in a database."""
    query = "SELECT version_num FROM alembic_version"
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path)) as conn:
            return str(conn.execute(query).fetchone()[0])

    async def fetch() -> str:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return str(await conn.fetchval(query))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_ready(http: httpx.Client, server: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until /_status says the database answers; fail if the server ended first."""
    deadline = time.monotonic() + READY_DEADLINE
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text(errors="replace")
        try:
            if http.get("/_status").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready in {READY_DEADLINE} s:\n{log.read_text(errors='replace')}")


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL if it has not ended 30 s later."""
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
