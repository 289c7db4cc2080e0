"""The change feed's safe point: a time before which no change can still become visible.

Every resource and version row carries `changed_at`, the moment the database stored it
(migration 0012). A history answer serves only changes before its watermark and names the
watermark as its `Bundle.meta.lastUpdated`, so a client polling `_since=<that value>` next
time gets every change once, however writers interleave.

PostgreSQL (any number of server processes): a change not yet visible belongs to a
transaction still running. If that transaction had written when the watermark was taken, it
showed a transaction id, and its rows' `changed_at` come after its start; if its statement
was running without one yet, the rows come after that statement's start; otherwise its rows
are stored later still, after the watermark was taken. So the watermark is the earliest of
those starts and the reader's own statement start. The audit sealer is left out: it holds
its advisory lock and writes no resource.

SQLite (one server process, one writer): units of work share a group transaction, stamped
while holding the writer; the watermark is the moment the open group began, or now.
"""

from app.clock import LAST_MICROS
from app.storage.audit_chain import SEALER_LOCK
from app.storage.db import Connection

_SEALER_CLASSID, _SEALER_OBJID = SEALER_LOCK >> 32, SEALER_LOCK & 0xFFFFFFFF

POSTGRES_WATERMARK = """
SELECT (extract(epoch FROM least(statement_timestamp(), min(
    CASE WHEN a.backend_xid IS NOT NULL THEN a.xact_start ELSE a.query_start END
  ))) * 1000000)::bigint
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend'
  AND (a.backend_xid IS NOT NULL OR a.state = 'active')
  AND NOT EXISTS (
    SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted
    AND l.classid = $1::oid AND l.objid = $2::oid AND l.objsubid = 1
  )
"""


async def watermark(conn: Connection) -> int:
    """Microseconds since the epoch before which every change that will ever be visible
    already is: take it before reading the changes it bounds."""
    local = conn.local_watermark()
    if local is not None:
        return local
    row = await conn.fetchrow(POSTGRES_WATERMARK, _SEALER_CLASSID, _SEALER_OBJID)
    assert row is not None  # an aggregate: always one row
    return int(row[0])


async def poll_point(conn: Connection, since: int | None) -> int:
    """The point a poll from `since` (a history answer, an export) is cut at: the watermark,
    but never before `since` (a later watermark can be earlier than one already given, when a
    transaction not yet writing then starts to), nor past the last instant FHIR can write."""
    return min(max(await watermark(conn), since or 0), LAST_MICROS)
