"""The test set-up itself: on PostgreSQL, the database `SAFEGUARD_TEST_DATABASE_URL` names is
made when the server has none of that name, so `make test` needs nothing made by hand."""

import uuid

import pytest

from tests.conftest import PG_ADMIN_URL, admin_connection, run_admin, with_database

pytestmark = pytest.mark.skipif(PG_ADMIN_URL is None, reason="needs SAFEGUARD_TEST_DATABASE_URL")


async def test_a_missing_administration_database_is_created() -> None:
    assert PG_ADMIN_URL is not None
    name = f"safeguard_admin_{uuid.uuid4().hex[:12]}"
    conn = await admin_connection(with_database(PG_ADMIN_URL, name))
    try:
        assert await conn.fetchval("SELECT current_database()") == name
    finally:
        await conn.close()
        await run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
