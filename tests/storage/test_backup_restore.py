"""A backup of a seeded database, restored into a fresh one, answers as the original did: the
same `$safeguarding-summary` for children and an adult, the original's tokens (the signing keys
and clients are in the database), and an audit chain that verifies up to the original's head.
PostgreSQL: `pg_dump -Fc` then `pg_restore`, as docs/operations.md says; SQLite: its online
backup API into a fresh file."""

import asyncio
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.audit.commands import seal_trail, verify_trail
from app.demo.population import population
from app.demo.seeding import seed_database
from app.flags.codes import vocabulary
from app.main import create_app
from app.settings import Settings
from app.storage.db import asyncpg_dsn, sqlite_path
from app.storage.migrate import upgrade
from tests.conftest import BACKENDS, PG_ADMIN_URL, run_admin, with_database

BASE = "http://test/fhir"
FAMILIES = 6  # each of the demo's five family shapes, and one more
TODAY = date(2026, 6, 1)
VOLATILE = ("id", "meta", "timestamp")


def _settings(url: str, tmp_path: Path) -> Settings:
    """An app on `url` that seals and notifies only when the test says (no background task)."""
    return Settings(
        database_url=url,
        base_url=BASE,
        audit_seal_interval_seconds=0,
        notify_interval_seconds=0,
        export_dir=str(tmp_path / "exports"),
    )


def _run(*command: str) -> None:
    """Run a PostgreSQL client program; its error output is the failure's message."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command[0]}: {done.stderr}"


def _tool(name: str) -> str:
    """The path of a PostgreSQL client program, which the PostgreSQL run needs."""
    found = shutil.which(name)
    assert found is not None, f"{name} is not on PATH: install the PostgreSQL client programs"
    return found


async def _backed_up_postgres(original: str, copy: str, dump: Path) -> None:
    """`pg_dump -Fc` of the original, restored with `pg_restore` into the empty copy."""
    await asyncio.to_thread(
        _run, _tool("pg_dump"), "-Fc", f"--file={dump}", f"--dbname={asyncpg_dsn(original)}"
    )
    await run_admin(f'CREATE DATABASE "{copy.rsplit("/", 1)[1]}"')
    await asyncio.to_thread(
        _run,
        _tool("pg_restore"),
        "--no-owner",
        "--exit-on-error",
        f"--dbname={asyncpg_dsn(copy)}",
        str(dump),
    )


def _backed_up_sqlite(original: str, copy: str) -> None:
    """SQLite's online backup of the original into a new file."""
    source, target = sqlite3.connect(sqlite_path(original)), sqlite3.connect(sqlite_path(copy))
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


@asynccontextmanager
async def _original_and_copy(backend: str, tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """A migrated, empty original and where its copy goes (on PostgreSQL, both dropped after)."""
    if backend == "sqlite":
        original = f"sqlite:///{tmp_path / 'original.db'}"
        upgrade(original)
        yield original, f"sqlite:///{tmp_path / 'restored.db'}"
        return
    assert PG_ADMIN_URL is not None
    names = [f"safeguard_test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    await run_admin(f'CREATE DATABASE "{names[0]}"')
    try:
        original, copy = (with_database(PG_ADMIN_URL, name) for name in names)
        await asyncio.to_thread(upgrade, original)
        yield original, copy
    finally:
        for name in names:
            await run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _demo_patients() -> tuple[list[str], list[str]]:
    """The demo population's children (whom RelatedPersons are about) and adults: Patient/id."""
    families = list(population(FAMILIES, 1, vocabulary(BASE), TODAY))[1:]
    resources = [resource for family in families for resource in family]
    children = sorted(
        {r["patient"]["reference"] for r in resources if r["resourceType"] == "RelatedPerson"}
    )
    patients = [f"Patient/{r['id']}" for r in resources if r["resourceType"] == "Patient"]
    return children, [p for p in patients if p not in children]


def _steady(bundle: dict[str, Any]) -> dict[str, Any]:
    """A summary less what differs between two answers of the same data (ids made per answer)."""
    entries = [
        {k: v for k, v in entry.items() if not (k == "fullUrl" and v.startswith("urn:uuid:"))}
        for entry in bundle.get("entry", [])
    ]
    return {k: v for k, v in bundle.items() if k not in VOLATILE} | {"entry": entries}


async def _summaries(settings: Settings, token: str, patients: list[str]) -> list[dict[str, Any]]:
    """Each patient's summary, asked of the real app on `settings` with `token`."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
            answers = [await http.get(f"/{patient}/$safeguarding-summary") for patient in patients]
    for patient, answer in zip(patients, answers, strict=True):
        assert answer.status_code == 200, f"{patient}: {answer.text}"
    return [_steady(answer.json()) for answer in answers]


async def _demo_gp_token(settings: Settings) -> str:
    """An access token of the demo GP practice, issued by the app on `settings`."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        return str(await app.state.authority.local_token("demo-gp"))


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_restored_backup_answers_the_same_summaries_and_its_audit_chain_verifies(
    backend: str, tmp_path: Path
) -> None:
    async with _original_and_copy(backend, tmp_path) as (original_url, copy_url):
        original, copy = _settings(original_url, tmp_path), _settings(copy_url, tmp_path)
        await seed_database(original, FAMILIES, 1, TODAY)
        assert await asyncio.to_thread(seal_trail, original) > 0
        before = await asyncio.to_thread(verify_trail, original, None, 60)
        assert before.intact and before.head is not None
        if backend == "sqlite":
            await asyncio.to_thread(_backed_up_sqlite, original_url, copy_url)
        else:
            await _backed_up_postgres(original_url, copy_url, tmp_path / "backup.dump")

        restored = await asyncio.to_thread(verify_trail, copy, before.head, 60)
        assert restored.intact, restored.lines(60)
        assert (restored.verified, restored.head) == (before.verified, before.head)

        children, adults = _demo_patients()
        patients = [*children[:: len(children) // 4][:4], adults[0]]
        token = await _demo_gp_token(original)  # the copy holds the key that signed it
        answers = await _summaries(original, token, patients)
        assert answers == await _summaries(copy, token, patients)
        kinds = {e["resource"]["resourceType"] for a in answers for e in a.get("entry", [])}
        assert {"Patient", "Flag", "RelatedPerson", "OperationOutcome"} <= kinds

        await asyncio.to_thread(seal_trail, copy)  # the copy's own requests carry the chain on
        after = await asyncio.to_thread(verify_trail, copy, before.head, 60)
        assert after.intact and after.verified > before.verified
