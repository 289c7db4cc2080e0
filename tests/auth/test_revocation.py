"""The revocation check each request makes (app.auth.revocation): answered from memory while
the database says nothing changed, never missing a revocation when it cannot be sure."""

import asyncpg
from fastapi import FastAPI

from app.auth.clients import revoke
from app.auth.revocation import PostgresNotifications, SqliteDataVersion
from app.storage.db import asyncpg_dsn
from tests.tokens import authority, token_for


async def test_a_revocation_is_seen_even_while_the_listener_is_down(app: FastAPI) -> None:
    token = await token_for(app, "revoked-unheard", role="health", scope="system/Patient.rs")
    issuer = authority(app)
    assert (await issuer.caller(token)).subject == "revoked-unheard"
    checks = issuer.revocations
    if isinstance(checks, PostgresNotifications):
        # the listening connection dies: until it listens again every request is probed
        pid = checks._conn.get_server_pid() if checks._conn is not None else None
        admin = await asyncpg.connect(asyncpg_dsn(issuer.settings.database_url))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        checks._drop()  # as its termination callback does, without waiting for it
    else:
        assert isinstance(checks, SqliteDataVersion)
    assert await revoke(issuer.db, "revoked-unheard")
    assert not await checks.live("revoked-unheard")  # at once: no notification awaited


async def test_a_client_registered_after_the_start_is_live_at_once(app: FastAPI) -> None:
    checks = authority(app).revocations
    await checks.live("test-system")  # the live ids are known before the next client exists
    await token_for(app, "registered-late", role="health", scope="system/Patient.rs")
    assert await checks.live("registered-late")
    assert not await checks.live("never-registered")
