"""The audit trail's hash chain in SQL: the head, the records waiting to be sealed, their seals,
and, for `verify`, the sealed records in chain order with their links (`app.audit.chain`).
"""

from collections.abc import Sequence

import orjson

from app.storage.db import Connection, Row

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
        "SELECT seal_seq, seal_hash FROM audit_event WHERE seal_seq IS NOT NULL "
        "ORDER BY seal_seq DESC LIMIT 1"
    )
    return None if row is None else (int(row[0]), str(row[1]))


async def any_unsealed(conn: Connection) -> bool:
    """Whether some record is waiting to be sealed."""
    row = await conn.fetchrow("SELECT 1 FROM audit_event WHERE seal_seq IS NULL LIMIT 1")
    return row is not None


async def unsealed(conn: Connection, limit: int) -> list[tuple[int, bytes, bool]]:
    """(pk, body, whether it says what it names) of the first `limit` records not yet sealed,
    in the order they were stored."""
    rows = await conn.fetch(
        "SELECT pk, body, names IS NOT NULL FROM audit_event WHERE seal_seq IS NULL "
        "ORDER BY pk LIMIT $1",
        limit,
    )
    return [(int(row[0]), bytes(row[1]), bool(row[2])) for row in rows]


# Each record's `names` ([[kind, value], ...]) as audit_link rows, unpacked by the database.
_LINK_NAMED = {
    "sqlite": "INSERT INTO audit_link (audit_id, kind, value) "
    "SELECT e.id, n.value ->> 0, n.value ->> 1 FROM audit_event e, json_each(e.names) n "
    "WHERE e.pk IN (SELECT value FROM json_each($1))",
    "postgresql": "INSERT INTO audit_link (audit_id, kind, value) "
    "SELECT e.id, n ->> 0, n ->> 1 FROM audit_event e "
    "CROSS JOIN LATERAL jsonb_array_elements(e.names::jsonb) n WHERE e.pk = ANY($1::bigint[])",
}


async def link_named(conn: Connection, pks: Sequence[int]) -> None:
    """Store what records `pks` name (their `names`) as audit_link rows: one statement."""
    if not pks:
        return
    if conn.dialect == "sqlite":
        await conn.execute(_LINK_NAMED["sqlite"], orjson.dumps(pks).decode())
        return
    await conn.execute(_LINK_NAMED["postgresql"], list(pks))


async def seal(conn: Connection, seals: Sequence[tuple[int, int, str]]) -> None:
    """Give each record (pk) its place in the chain (seq) and its hash, and clear what it
    names (linked by now: `link_named`): one statement."""
    if conn.dialect == "postgresql":
        pks, seqs, hashes = zip(*seals, strict=True)
        await conn.execute(
            "UPDATE audit_event SET seal_seq = v.seq, seal_hash = v.hash, names = NULL "
            "FROM (SELECT unnest($1::bigint[]) AS pk, unnest($2::bigint[]) AS seq, "
            "unnest($3::text[]) AS hash) AS v WHERE audit_event.pk = v.pk",
            list(pks),
            list(seqs),
            list(hashes),
        )
        return
    await conn.execute(
        "UPDATE audit_event SET seal_seq = s.value ->> 1, seal_hash = s.value ->> 2, "
        "names = NULL FROM json_each($1) s WHERE audit_event.pk = s.value ->> 0",
        orjson.dumps(seals).decode(),
    )


async def sealed_from(conn: Connection, first: int, limit: int) -> list[Row]:
    """The sealed records from seq `first` on, in chain order, `limit` at most: seq, hash, id,
    recorded, the search columns, then the body."""
    return await conn.fetch(
        "SELECT seal_seq, seal_hash, id, recorded, client_id, client_org, subtype, action, "
        "outcome, body FROM audit_event WHERE seal_seq >= $1 ORDER BY seal_seq LIMIT $2",
        first,
        limit,
    )


async def links_between(conn: Connection, first: int, last: int, ids: list[str]) -> list[Row]:
    """(audit id, kind, value) of every audit_link row of the records sealed `first`..`last`,
    whose ids are `ids`."""
    if conn.dialect == "postgresql":  # a join there may be planned as a scan of every link
        return await conn.fetch(
            "SELECT audit_id, kind, value FROM audit_link WHERE audit_id = ANY($1::text[])", ids
        )
    return await conn.fetch(
        "SELECT l.audit_id, l.kind, l.value FROM audit_link l "
        "JOIN audit_event e ON e.id = l.audit_id WHERE e.seal_seq BETWEEN $1 AND $2",
        first,
        last,
    )


async def unsealed_before(conn: Connection, recorded: int) -> tuple[int, str | None, int | None]:
    """How many records recorded before `recorded` are not sealed; the oldest's id and time."""
    count = await conn.fetchrow(
        "SELECT count(*) FROM audit_event WHERE seal_seq IS NULL AND recorded < $1", recorded
    )
    oldest = await conn.fetchrow(
        "SELECT id, recorded FROM audit_event WHERE seal_seq IS NULL AND recorded < $1 "
        "ORDER BY recorded, pk LIMIT 1",
        recorded,
    )
    assert count is not None
    if oldest is None:
        return int(count[0]), None, None
    return int(count[0]), str(oldest[0]), int(oldest[1])


async def orphan_links(conn: Connection) -> int:
    """audit_link rows that name no stored record (left by a removed one, or inserted)."""
    row = await conn.fetchrow(
        "SELECT count(*) FROM audit_link l "
        "WHERE NOT EXISTS (SELECT 1 FROM audit_event e WHERE e.id = l.audit_id)"
    )
    return 0 if row is None else int(row[0])
