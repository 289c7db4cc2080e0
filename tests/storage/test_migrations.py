"""The schema is built by the migrations alone, and they agree with the table definitions."""

import json
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.settings import get_settings
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


def _version(kind: str, logical_id: str, version_id: int, body: dict[str, Any] | None) -> dict:
    method = "DELETE" if body is None else "PUT"
    text = (
        None
        if body is None
        else json.dumps({"resourceType": kind, "id": logical_id, **body}).encode()
    )
    return {"t": kind, "i": logical_id, "v": version_id, "m": method, "b": text}


def test_0007_finds_each_versions_patient_and_author_in_its_own_body(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'backfill.db'}"
    upgrade(url, "0006")
    base = get_settings().canonical_base
    recorded = {
        "url": f"{base}/StructureDefinition/recording-organization",
        "valueReference": {"reference": "Organization/gp"},
    }
    foreign = {
        "url": "https://elsewhere.example/StructureDefinition/recording-organization",
        "valueReference": {"reference": "Organization/other"},
    }
    versions = [
        _version(
            "Flag",
            "f",
            1,
            {"subject": {"reference": "Patient/p1"}, "author": {"reference": "Organization/o1"}},
        ),
        _version(
            "Flag",
            "f",
            2,
            {
                "subject": {"reference": f"{base}/Patient/p2"},
                "author": {"reference": "Organization/o2/_history/3"},
            },
        ),
        _version("Flag", "f", 3, None),
        _version(
            "Condition",
            "c",
            1,
            {"subject": {"reference": "Patient/p1"}, "extension": [foreign, recorded]},
        ),
        _version("Patient", "p1", 1, {}),
    ]
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO resource_version (resource_type, logical_id, version_id, "
                "last_updated, method, body) VALUES (:t, :i, :v, 0, :m, :b)"
            ),
            versions,
        )
        for kind, logical_id, version_id, deleted in (
            ("Flag", "f", 3, True),
            ("Condition", "c", 1, False),
        ):
            connection.execute(
                text(
                    "INSERT INTO resource (resource_type, logical_id, version_id, last_updated, "
                    "deleted) VALUES (:t, :i, :v, 0, :d)"
                ),
                {"t": kind, "i": logical_id, "v": version_id, "d": deleted},
            )
    upgrade(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT logical_id, version_id, patient_id, author_org FROM resource_version "
                "ORDER BY seq"
            )
        ).fetchall()
        found = connection.execute(text("SELECT logical_id, author_org FROM resource"))
        authors = {row[0]: row[1] for row in found}
    engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("f", 1, "p1", "o1"),
        ("f", 2, "p2", "o2"),
        ("f", 3, "p2", "o2"),
        ("c", 1, "p1", "gp"),
        ("p1", 1, "p1", None),
    ]
    assert authors == {"f": "o2", "c": "gp"}
