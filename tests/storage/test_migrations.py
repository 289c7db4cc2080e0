"""The schema is built by the migrations alone, and they agree with the table definitions."""

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from app.storage.migrate import alembic_config, upgrade
from app.storage.tables import metadata


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url)
        with engine.connect() as connection:
            assert _differences(connection) == []
        engine.dispose()
        return
    async_engine = create_async_engine(
        database_url.replace("postgresql://", "postgresql+asyncpg://")
    )
    async with async_engine.connect() as connection:
        assert await connection.run_sync(_differences) == []
    await async_engine.dispose()


def test_migrations_go_down_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    engine = create_engine(url)
    assert inspect(engine).get_table_names() == ["alembic_version"]
    upgrade(url)
    assert set(inspect(engine).get_table_names()) == {t.name for t in metadata.sorted_tables} | {
        "alembic_version"
    }
    engine.dispose()
