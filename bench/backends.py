"""Fresh, migrated databases to benchmark on: a SQLite file, or a PostgreSQL database of our own."""

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from app.storage.db import asyncpg_dsn
from app.storage.migrate import upgrade

PG_ENV = "SAFEGUARD_BENCH_PG_URL"
PG_DEFAULT = "postgresql://root@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


class UnavailableError(Exception):
    """The backend cannot be benchmarked here (e.g. no PostgreSQL server)."""


def pg_admin_url() -> str:
    """The PostgreSQL URL used only to create and drop the bench database."""
    return os.environ.get(PG_ENV, PG_DEFAULT)


@contextmanager
def database(backend: str, workdir: Path, migrate: bool = True) -> Iterator[str]:
    """A database URL for `backend` (migrated unless told not to), removed afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
        if migrate:
            upgrade(url)
        yield url
        return
    with postgres_database(pg_admin_url(), migrate) as url:
        yield url


async def _admin(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def postgres_database(admin_url: str, migrate: bool = True) -> Iterator[str]:
    """CREATE a database `safeguard_bench_<hex>`, migrate it (unless told not to), DROP it
    when done."""
    name = f"safeguard_bench_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise UnavailableError(f"PostgreSQL unreachable at {admin_url}: {exc}") from exc
    try:
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        if migrate:
            upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
