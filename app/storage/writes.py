"""How one new version reaches the tables: resource row, version row and index rows.

PostgreSQL gets the whole write, with the check that referenced resources are live, as one
statement (data-modifying CTEs, index rows as arrays): one round trip instead of seven, and
without BEGIN/COMMIT when it is all a unit of work does. SQLite runs in-process, so plain
statements cost nothing extra there.
"""

from dataclasses import dataclass
from functools import cache

from app.storage.db import Connection
from app.storage.indexer import IndexRows


@dataclass(frozen=True, slots=True)
class NewVersion:
    """Everything a write of one version puts in the tables."""

    resource_type: str
    logical_id: str
    version_id: int
    last_updated: int
    method: str
    body: bytes
    patient_id: str | None
    owner_org: str | None
    index: IndexRows


_PG_INDEX_AND_VERSION = """
v AS (
  INSERT INTO resource_version
    (resource_type, logical_id, version_id, last_updated, method, body)
  SELECT $1, $2, $3, $4, $8, $5 FROM r
), t AS (
  INSERT INTO idx_token (resource_pk, param, system, code)
  SELECT r.pk, u.param, u.system, u.code FROM r,
    unnest($9::varchar[], $10::varchar[], $11::varchar[]) AS u(param, system, code)
), f AS (
  INSERT INTO idx_reference (resource_pk, param, target_type, target_id)
  SELECT r.pk, u.param, u.target_type, u.target_id FROM r,
    unnest($12::varchar[], $13::varchar[], $14::varchar[]) AS u(param, target_type, target_id)
)
SELECT pk FROM r
"""

_PG_INSERT = """
WITH r AS (
  INSERT INTO resource
    (resource_type, logical_id, version_id, last_updated, deleted, body, patient_id, owner_org)
  SELECT $1, $2, $3, $4, false, $5, $6, $7 WHERE {live}
  RETURNING pk
),"""

_PG_UPDATE = """
WITH r AS (
  UPDATE resource SET version_id = $3, last_updated = $4, deleted = false, body = $5,
    patient_id = $6, owner_org = COALESCE(owner_org, $7::varchar)
  WHERE pk = $15 AND {live} RETURNING pk
), dt AS (
  DELETE FROM idx_token WHERE resource_pk IN (SELECT pk FROM r)
), dr AS (
  DELETE FROM idx_reference WHERE resource_pk IN (SELECT pk FROM r)
),"""

_PG_LIVE = (
    "EXISTS (SELECT FROM resource WHERE resource_type = ${} AND logical_id = ${} AND NOT deleted)"
)


@cache
def _pg_write_sql(update: bool, targets: int) -> str:
    """The one-statement write for a number of referenced resources, each a parameter pair.

    Each check is an index probe whatever the table's size, and a statement's plan costs
    the same with or without its parameters' values, so PostgreSQL settles on one generic
    plan instead of planning every execution.
    """
    first = 16 if update else 15  # $15 is the pk of the resource updated
    checks = [_PG_LIVE.format(first + 2 * n, first + 2 * n + 1) for n in range(targets)]
    live = " AND ".join(checks) or "true"
    return (_PG_UPDATE if update else _PG_INSERT).format(live=live) + _PG_INDEX_AND_VERSION


async def write_postgres(
    conn: Connection,
    new: NewVersion,
    pk: int | None,
    must_exist: list[tuple[str, str]],
    final: bool,
) -> int | None:
    """Insert (pk None) or update resource `pk`, in one statement, if every `must_exist`
    (type, id) is a live resource; None (nothing written) otherwise."""
    tokens, references = new.index.token, new.index.reference
    args = [
        new.resource_type, new.logical_id, new.version_id, new.last_updated, new.body,
        new.patient_id, new.owner_org, new.method,
        [t[0] for t in tokens], [t[1] for t in tokens], [t[2] for t in tokens],
        [r[0] for r in references], [r[1] for r in references], [r[2] for r in references],
        *([] if pk is None else [pk]), *(part for target in must_exist for part in target),
    ]  # fmt: skip
    run = conn.fetchrow_final if final else conn.fetchrow
    row = await run(_pg_write_sql(pk is not None, len(must_exist)), *args)
    return None if row is None else int(row[0])


async def clear_index(conn: Connection, pk: int) -> None:
    """Remove a resource's index rows (before a new version's, or on delete)."""
    await conn.execute("DELETE FROM idx_token WHERE resource_pk = $1", pk)
    await conn.execute("DELETE FROM idx_reference WHERE resource_pk = $1", pk)


async def write_sqlite(conn: Connection, new: NewVersion, pk: int | None) -> int:
    """Insert (pk None) or update resource `pk` with its new version, statement by statement."""
    if pk is None:
        row = await conn.fetchrow(
            "INSERT INTO resource (resource_type, logical_id, version_id, last_updated, "
            "deleted, body, patient_id, owner_org) VALUES ($1, $2, $3, $4, 0, $5, $6, $7) "
            "RETURNING pk",
            new.resource_type, new.logical_id, new.version_id, new.last_updated, new.body,
            new.patient_id, new.owner_org,
        )  # fmt: skip
        assert row is not None
        pk = int(row[0])
    else:
        await conn.execute(
            "UPDATE resource SET version_id = $2, last_updated = $3, deleted = 0, body = $4, "
            "patient_id = $5, owner_org = COALESCE(owner_org, $6) WHERE pk = $1",
            pk, new.version_id, new.last_updated, new.body, new.patient_id, new.owner_org,
        )  # fmt: skip
        await clear_index(conn, pk)
    await conn.executemany(
        "INSERT INTO idx_token (resource_pk, param, system, code) VALUES ($1, $2, $3, $4)",
        [(pk, *row) for row in new.index.token],
    )
    await conn.executemany(
        "INSERT INTO idx_reference (resource_pk, param, target_type, target_id) "
        "VALUES ($1, $2, $3, $4)",
        [(pk, *row) for row in new.index.reference],
    )
    await conn.execute(
        "INSERT INTO resource_version "
        "(resource_type, logical_id, version_id, last_updated, method, body) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        new.resource_type, new.logical_id, new.version_id, new.last_updated, new.method,
        new.body,
    )  # fmt: skip
    return pk
