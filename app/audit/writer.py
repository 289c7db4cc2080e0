"""The audit records of requests that write nothing (reads, searches, refusals), stored in
batches: every record that arrives while one batch is being committed goes into the next,
so under load one commit carries many requests' records instead of one commit per read.
A request waits for its own record's commit before it answers.
"""

import asyncio
import logging

from app.audit.events import AuditRow
from app.errors import Unavailable
from app.storage import audit as audit_storage
from app.storage.db import Database

log = logging.getLogger("safeguard.audit")
MAX_BATCH = 500  # records in one commit at most


class AuditWriter:
    """Stores AuditRows, many per commit; `write` returns once its row is committed."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[tuple[AuditRow, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.commits = 0  # batches committed, for measuring records per commit
        self.records = 0

    async def write(self, row: AuditRow) -> None:
        """Store `row`; raise `Unavailable` (503) if it could not be committed."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((row, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)

    async def _flush(self) -> None:
        """Commit what is pending, batch after batch, until nothing is."""
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                async with self._db.transaction() as conn:
                    await audit_storage.insert(conn, [row for row, _ in batch], last=True)
            except Exception as exc:  # the database is gone or refused: no answer goes out
                log.error("audit records not stored: %s", type(exc).__name__)
                _settle(batch, failed=True)
                continue
            self.commits += 1
            self.records += len(batch)
            _settle(batch, failed=False)

    async def close(self) -> None:
        """Let the batch being committed finish."""
        if self._flusher is not None:
            await self._flusher


def _settle(batch: list[tuple[AuditRow, "asyncio.Future[None]"]], *, failed: bool) -> None:
    """Tell each waiting request how its record's commit ended."""
    for _, done in batch:
        if done.done():
            continue
        if not failed:
            done.set_result(None)
            continue
        done.set_exception(Unavailable.of("the audit trail cannot be written now; try again"))
        done.exception()  # a waiter that went away does not leave it unretrieved
