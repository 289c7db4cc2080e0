"""A PostgreSQL URL's libpq parameters (sslmode, sslrootcert, application_name) mean the same
to the migrations as to the server's pool: operators put TLS settings there."""

import asyncio
import uuid

import pytest
from alembic.script import ScriptDirectory

from app.storage.db import make_database
from app.storage.migrate import alembic_config, upgrade
from tests.conftest import PG_ADMIN_URL, run_admin, with_database

pytestmark = pytest.mark.skipif(PG_ADMIN_URL is None, reason="needs SAFEGUARD_TEST_DATABASE_URL")


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
