"""Alembic environment: SQLite through the stdlib driver, PostgreSQL through asyncpg."""

import asyncio
from pathlib import Path

import asyncpg
from alembic import context
from sqlalchemy import Connection, create_engine, pool
from sqlalchemy.ext.asyncio import create_async_engine

from app.settings import get_settings
from app.storage.db import asyncpg_dsn
from app.storage.tables import metadata

config = context.config
MIGRATION_LOCK = 0x5AFE6D  # the pg_advisory_lock key all safeguard-fhir migrators share


def database_url() -> str:
    """The URL to migrate: set on the Alembic config by callers, else from settings."""
    return config.attributes.get("database_url") or get_settings().database_url


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_postgres(url: str) -> None:
    """Through a connection asyncpg opens from the DSN itself, as the server's pool does, so
    libpq parameters in the URL (sslmode, sslrootcert, application_name) mean the same here."""
    dsn = asyncpg_dsn(url)
    engine = create_async_engine(
        "postgresql+asyncpg://",
        async_creator=lambda: asyncpg.connect(dsn),
        poolclass=pool.NullPool,
    )
    async with engine.connect() as connection:
        # One migrator at a time: replicas started together each run `safeguard serve`, which
        # migrates first; the others wait here, then find the schema at head.
        await connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
        await connection.commit()
        await connection.run_sync(_configure_and_run)
    await engine.dispose()


def run_migrations_online() -> None:
    """Apply migrations to the configured database."""
    url = database_url()
    if url.startswith("postgres"):
        asyncio.run(_run_postgres(url))
        return
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure_and_run(connection)
    engine.dispose()


run_migrations_online()
