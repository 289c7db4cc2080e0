"""A PostgreSQL URL's libpq parameters (sslmode, sslrootcert, application_name) mean the same
to the migrations as to the server's pool: operators put TLS settings there."""

import asyncio
import os
import sys
import uuid
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from app.storage.db import make_database
from app.storage.migrate import alembic_config, upgrade
from tests.conftest import PG_ADMIN_URL, run_admin, with_database

pytestmark = pytest.mark.skipif(PG_ADMIN_URL is None, reason="needs SAFEGUARD_TEST_DATABASE_URL")


async def _migrate_in_own_process(url: str) -> int:
    """`safeguard migrate` as a replica runs it: its exit status."""
    command = str(Path(sys.executable).with_name("safeguard"))
    environment = os.environ | {"SAFEGUARD_DATABASE_URL": url}
    process = await asyncio.create_subprocess_exec(command, "migrate", env=environment)
    return await process.wait()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def test_a_url_with_libpq_parameters_migrates_and_serves_alike() -> None:
    """sslmode and other libpq parameters in SAFEGUARD_DATABASE_URL mean the same to the
    migrations as to the server's pool (the migrations once passed them to asyncpg as
    keyword arguments, and `sslmode` failed)."""
    assert PG_ADMIN_URL is not None
    name = f"safeguard_test_{uuid.uuid4().hex[:12]}"
    await run_admin(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(PG_ADMIN_URL, name) + "?sslmode=prefer&application_name=migrating"
        await asyncio.to_thread(upgrade, url)
        database = make_database(url, 1, 2)
        await database.open()
        try:
            async with database.reader() as conn:
                row = await conn.fetchrow("SELECT version_num FROM alembic_version")
            assert row is not None and row[0] == head_revision()
        finally:
            await database.close()
    finally:
        await run_admin(f'DROP DATABASE "{name}" WITH (FORCE)')


async def test_migrators_started_together_on_an_empty_database_both_succeed() -> None:
    """Replicas started at once each migrate first: one waits for the other, neither fails."""
    assert PG_ADMIN_URL is not None
    name = f"safeguard_test_{uuid.uuid4().hex[:12]}"
    await run_admin(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(PG_ADMIN_URL, name)
        codes = await asyncio.gather(*(_migrate_in_own_process(url) for _ in range(3)))
        assert codes == [0, 0, 0]
        database = make_database(url, 1, 2)
        await database.open()
        try:
            async with database.reader() as conn:
                rows = await conn.fetch("SELECT version_num FROM alembic_version")
            assert [row[0] for row in rows] == [head_revision()]
        finally:
            await database.close()
    finally:
        await run_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
