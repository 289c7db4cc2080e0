"""The audit trail's hash chain in SQL: the head, the records waiting to be sealed, their seals
(`app.audit.chain`).
"""

from collections.abc import Sequence

from app.storage.db import Connection

# The PostgreSQL advisory lock that makes one transaction at a time the sealer, across every
# server process sharing the database ("audseal" in ASCII).
SEALER_LOCK = 0x61756473_65616C


async def become_sealer(conn: Connection, *, wait: bool) -> bool:
    """Whether this transaction is now the one sealer: on PostgreSQL it takes the advisory lock
    (waiting for it, or giving up if another holds it); SQLite's one writer already is."""
    if conn.dialect != "postgresql":
        return True
    if wait:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SEALER_LOCK)
        return True
    row = await conn.fetchrow("SELECT pg_try_advisory_xact_lock($1)", SEALER_LOCK)
    return row is not None and bool(row[0])


async def head(conn: Connection) -> tuple[int, str] | None:
    """(seq, hash) of the last sealed record; None while nothing is sealed."""
    row = await conn.fetchrow(
        "SELECT seal_seq, seal_hash FROM audit_event "
        "WHERE seal_seq = (SELECT max(seal_seq) FROM audit_event)"
    )
    return None if row is None else (int(row[0]), str(row[1]))


async def any_unsealed(conn: Connection) -> bool:
    """Whether some record is waiting to be sealed."""
    row = await conn.fetchrow("SELECT 1 FROM audit_event WHERE seal_seq IS NULL LIMIT 1")
    return row is not None


async def unsealed(conn: Connection, limit: int) -> list[tuple[int, bytes]]:
    """(pk, body) of the first `limit` records not yet sealed, in the order they were stored."""
    rows = await conn.fetch(
        "SELECT pk, body FROM audit_event WHERE seal_seq IS NULL ORDER BY pk LIMIT $1", limit
    )
    return [(int(row[0]), bytes(row[1])) for row in rows]


async def seal(conn: Connection, seals: Sequence[tuple[int, int, str]]) -> None:
    """Give each record (pk) its place in the chain (seq) and its hash: one statement."""
    if conn.dialect == "postgresql":
        pks, seqs, hashes = zip(*seals, strict=True)
        await conn.execute(
            "UPDATE audit_event SET seal_seq = v.seq, seal_hash = v.hash "
            "FROM (SELECT unnest($1::bigint[]) AS pk, unnest($2::bigint[]) AS seq, "
            "unnest($3::text[]) AS hash) AS v WHERE audit_event.pk = v.pk",
            list(pks),
            list(seqs),
            list(hashes),
        )
        return
    await conn.executemany(
        "UPDATE audit_event SET seal_seq = $2, seal_hash = $3 WHERE pk = $1", seals
    )
