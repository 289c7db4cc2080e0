"""Fixtures: a real database per backend, built by the migrations; the real app over ASGI.

The suite runs on SQLite always, and on PostgreSQL too when SAFEGUARD_TEST_DATABASE_URL names
a server (its database is only used to create and drop a database of the suite's own).
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.fhir.context import AppContext
from app.main import create_app
from app.settings import Settings, get_settings
from app.storage.audit_chain import become_sealer
from app.storage.db import Database, asyncpg_dsn
from app.storage.migrate import upgrade
from app.storage.tables import metadata
from tests.logcheck import LogCapture, nhs_numbers_in
from tests.tokens import bearer
from tests.wirecheck import ResponseWalk

BASE = "http://test/fhir"
PG_ADMIN_URL = os.environ.get("SAFEGUARD_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_ADMIN_URL else [])
SERVER_LOG = LogCapture()
RESPONSES = ResponseWalk()
# The reliability suite (servers as subprocesses, kills, faults) runs only when asked for:
# `make test-reliability` sets SAFEGUARD_RELIABILITY (quick or full).
collect_ignore = [] if os.environ.get("SAFEGUARD_RELIABILITY") else ["reliability"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Capture every server log line of the run, to check at its end; walk every FHIR
    response the suite receives for empty arrays."""
    SERVER_LOG.install()
    RESPONSES.install()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many FHIR resources were walked for empty arrays."""
    terminalreporter.write_line(
        f"{RESPONSES.walked} FHIR resources received, none with an empty array"
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any server log line of it holds an NHS number."""
    leaked = nhs_numbers_in(SERVER_LOG.lines)
    if leaked:
        for number, line in leaked.items():
            print(f"\nNHS number {number} in the server log: {line}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def admin_connection(url: str) -> asyncpg.Connection:
    """A connection to the database of `url`, which is created first when the server has
    none of that name, so that `make test` needs no database made by hand."""
    try:
        return await asyncpg.connect(asyncpg_dsn(url))
    except asyncpg.InvalidCatalogNameError:
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        maintenance = await asyncpg.connect(asyncpg_dsn(with_database(url, "postgres")))
        try:
            await maintenance.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            pass  # another run made it in the meantime
        finally:
            await maintenance.close()
        return await asyncpg.connect(asyncpg_dsn(url))


async def run_admin(sql: str) -> None:
    """Run one statement on the PostgreSQL server as its administrator (creating, dropping
    databases)."""
    assert PG_ADMIN_URL is not None
    conn = await admin_connection(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A freshly migrated database of each backend, dropped at the end."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "safeguard.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        yield url
        return
    assert PG_ADMIN_URL is not None
    name = f"safeguard_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(run_admin(f'CREATE DATABASE "{name}"'))
    url = with_database(PG_ADMIN_URL, name)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def seal_interval(database_url: str) -> float:
    """How often the suite's apps seal the audit trail in the background. On SQLite, never:
    there several apps share the test database in one event loop, and a write waiting on
    another app's write lock blocks the loop that app's commit needs; tests seal with
    `seal_pending`, and the sealer's own tests run it in an app alone."""
    return 0.0 if database_url.startswith("sqlite") else 0.5


@pytest.fixture
def same_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The CLI's environment aimed at the app under test's database and base URL."""
    monkeypatch.setenv("SAFEGUARD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SAFEGUARD_BASE_URL", settings.base_url)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the app under test."""
    return Settings(
        database_url=database_url,
        base_url=BASE,
        max_body_bytes=64 * 1024,
        audit_seal_interval_seconds=seal_interval(database_url),
        export_dir=str(tmp_path_factory.mktemp("exports")),
        # Tests run the notifier's passes themselves (tests/notify): none in the background.
        notify_interval_seconds=0,
        subscription_endpoints="http://127.0.0.1:*, https://hooks.example.gov.uk/fhir",
        subscription_private_networks="127.0.0.0/8",
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The real app, started through its own lifespan."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def app_context(app: FastAPI) -> AppContext:
    """The AppContext inside an app."""
    context: AppContext = app.state.context
    return context


def database(app: FastAPI) -> Database:
    """The database under an app, for tests of the storage layer itself."""
    return app_context(app).store.db


KEPT = {"oauth_client", "signing_key"}  # registered clients and the server's keys


async def empty_database(app: FastAPI) -> None:
    """Remove every row, children before parents; clients and signing keys stay."""
    # Taking the sealer's lock first keeps a sealing pass of the running app out while rows go:
    # otherwise the pass (linking, then sealing) and this (deleting) lock audit rows in opposite
    # orders and PostgreSQL may end one of them as a deadlock. audit_link still goes last.
    tables = sorted(reversed(metadata.sorted_tables), key=lambda t: t.name == "audit_link")
    async with database(app).transaction() as conn:
        await become_sealer(conn, wait=True)
        for table in tables:
            if table.name not in KEPT:
                await conn.execute(f"DELETE FROM {table.name}")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process, on an empty database, with the access
    token of a `system` client whose scope is `system/*.cruds`."""
    await empty_database(app)
    transport = httpx.ASGITransport(app=app)
    headers = await bearer(app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
        yield http
