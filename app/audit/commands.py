"""What the `safeguard audit` commands do, against the database of the settings given (the
server's, when run with the same environment)."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from app.audit.chain import seal_pending
from app.audit.verify import Verdict, verify
from app.clock import now_micros
from app.settings import Settings
from app.storage.db import Database, make_database, sqlite_path

T = TypeVar("T")


class Unreadable(RuntimeError):
    """The audit trail cannot be read (the message says why)."""


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """Run `work` on the database; any failure to reach or read it is `Unreadable`."""
    url = settings.database_url
    if url.startswith("sqlite") and not Path(sqlite_path(url)).exists():
        raise Unreadable(f"no database at {sqlite_path(url)}")

    async def run() -> T:
        db = make_database(url, 1, 2)
        await db.open()
        try:
            return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except Exception as exc:  # unreachable, refused, or not migrated: all say the same here
        raise Unreadable(f"{type(exc).__name__}: {exc}") from exc


def verify_trail(settings: Settings, anchor: tuple[int, str] | None, stale_seconds: int) -> Verdict:
    """Walk the chain (reading only)."""
    return _run(
        settings,
        lambda db: verify(db, now=now_micros(), stale_seconds=stale_seconds, anchor=anchor),
    )


def seal_trail(settings: Settings) -> int:
    """Seal what is committed and not yet sealed; how many records were."""
    return _run(settings, seal_pending)
