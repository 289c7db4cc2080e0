"""Whether a client is still live, checked on every authenticated request so that
`safeguard clients remove ID` (another process) stops its tokens at the next request.

- SQLite: a connection of its own asks `PRAGMA data_version`, which changes whenever another
  connection (this server's writer, or another process) has committed; only then are the live
  client ids read again. Measured in-process (a read by id through the whole app, ~650 µs on a
  busy machine): the whole token check, cache hit plus pragma, costs ~7 µs, about 1%.
- PostgreSQL: one primary-key probe of `oauth_client` per request, on a pooled connection.
  Measured the same way it costs ~240 µs against a ~1 ms read: not cheap. LISTEN/NOTIFY would
  save it, but a notification arrives asynchronously, so a request could be served between
  the revoking commit and its delivery and "at once" would not hold; a listener with this
  probe as its fallback while unsure is the next step if the cost matters.
Spec: https://www.sqlite.org/pragma.html#pragma_data_version
"""

import sqlite3
from typing import Protocol

from app.storage.db import Database, connect_sqlite, sqlite_path

LIVE = "SELECT client_id FROM oauth_client WHERE revoked_at IS NULL"


class Revocations(Protocol):
    """Answers whether a client may still use its tokens."""

    async def live(self, client_id: str) -> bool: ...
    def close(self) -> None: ...


class ProbeEachRequest:
    """One indexed lookup per request (PostgreSQL, and SQLite in memory)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def live(self, client_id: str) -> bool:
        """Whether the client is registered and not revoked."""
        async with self.db.reader() as conn:
            row = await conn.fetchrow(LIVE + " AND client_id = $1", client_id)
        return row is not None

    def close(self) -> None:
        """Nothing held."""


class SqliteDataVersion:
    """The live client ids, read again only after some connection has committed."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._version = -1
        self._live: frozenset[str] = frozenset()

    async def live(self, client_id: str) -> bool:
        """Whether the client is registered and not revoked."""
        if self._conn is None:
            self._conn = connect_sqlite(self.path)
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._live = frozenset(row[0] for row in self._conn.execute(LIVE))
            self._version = version
        return client_id in self._live

    def close(self) -> None:
        """Close its connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def revocations(database_url: str, db: Database) -> Revocations:
    """The cheapest exact check for the database of `database_url`."""
    if db.dialect == "sqlite" and sqlite_path(database_url) != ":memory:":
        return SqliteDataVersion(sqlite_path(database_url))
    return ProbeEachRequest(db)
