"""The request log: the first successful answer to each (client, X-Request-ID), kept a while.

Its primary key makes concurrent first attempts race-free: a request id is claimed before its
write runs, and a second claim fails (`WriteConflict`, so that unit of work is retried and
then finds the first answer) once the first commits.
"""

from dataclasses import dataclass

from app.access import Caller
from app.clock import now_micros
from app.storage.repository import Repository


@dataclass(frozen=True, slots=True)
class Record:
    """A stored answer: the request's fingerprint, and the status, headers and body sent."""

    fingerprint: str
    status: int
    headers: str
    body: bytes
    created_at: int = 0


def client_key(caller: Caller) -> str:
    """Whose request ids these are: ids are only unique per client."""
    return f"{caller.subject}|{caller.organisation or ''}"


async def find(repo: Repository, request_id: str) -> Record | None:
    """The record of a request id, expired or not."""
    row = await repo.conn.fetchrow(
        "SELECT fingerprint, status, headers, body, created_at FROM request_log "
        "WHERE client = $1 AND request_id = $2",
        client_key(repo.caller),
        request_id,
    )
    return None if row is None else Record(row[0], row[1], row[2], bytes(row[3]), row[4])


async def forget(repo: Repository, request_id: str) -> None:
    """Remove the record of a request id: expired, or claimed by a write that did not succeed."""
    await repo.conn.execute(
        "DELETE FROM request_log WHERE client = $1 AND request_id = $2",
        client_key(repo.caller),
        request_id,
    )


_INSERT = (
    "INSERT INTO request_log "
    "(client, request_id, fingerprint, status, headers, body, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


async def claim(repo: Repository, request_id: str, fingerprint: str) -> None:
    """Take a request id before its write runs; `complete` fills in the answer.

    A concurrent claim of the same id waits for this transaction, then fails (WriteConflict)
    if it commits, so the first attempt's write alone runs.
    """
    await repo.conn.execute(
        _INSERT, client_key(repo.caller), request_id, fingerprint, 0, "[]", b"", now_micros()
    )


async def complete(repo: Repository, request_id: str, record: Record) -> None:
    """Store the answer to a request id claimed in this transaction."""
    await repo.conn.execute(
        "UPDATE request_log SET status = $3, headers = $4, body = $5 "
        "WHERE client = $1 AND request_id = $2",
        client_key(repo.caller),
        request_id,
        record.status,
        record.headers,
        record.body,
    )


_PURGE = (
    "DELETE FROM request_log WHERE (client, request_id) IN ("
    "SELECT client, request_id FROM request_log WHERE created_at < $1 "
    "ORDER BY created_at LIMIT $2) RETURNING 1"
)
# PostgreSQL leaves rows another transaction holds to the next purge instead of waiting.
_PURGE_PG = _PURGE.replace("LIMIT $2)", "LIMIT $2 FOR UPDATE SKIP LOCKED)")


async def purge(repo: Repository, before: int, limit: int) -> int:
    """Remove at most `limit` records created before `before` (microseconds), oldest first;
    how many were removed."""
    statement = _PURGE_PG if repo.conn.dialect == "postgresql" else _PURGE
    return len(await repo.conn.fetch(statement, before, limit))
