"""How one new version reaches the tables: resource row, version row and index rows.

PostgreSQL gets the whole write, with the check that referenced resources are live, as one
statement (data-modifying CTEs, index rows as arrays): one round trip instead of seven, and
without BEGIN/COMMIT when it is all a unit of work does. SQLite runs in-process, so plain
statements cost nothing extra there.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

from app.errors import Unavailable
from app.storage.audit import AUDIT_TABLES, StoredAudit, rider_args, rider_sql
from app.storage.db import Connection
from app.storage.indexer import IndexRows
from app.storage.statements import every_live

# On PostgreSQL `changed_at` is the database's clock as the row is stored: its default on
# insert, and set again on every update (SQLite generates it from last_updated).
TOUCHED = {"postgresql": ", changed_at = DEFAULT", "sqlite": ""}
# A version row copied from its resource row takes the same changed_at (SQLite generates it).
SAME_MOMENT = {"postgresql": ", changed_at", "sqlite": ""}


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
    author_org: str | None
    restricted: bool
    client_id: str | None  # the client that wrote it, and its organisation
    client_org: str | None
    index: IndexRows


# Index kinds: (table, columns after resource_pk and param, PostgreSQL array types).
INDEX_KINDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "token": ("idx_token", ("system", "code"), ("varchar", "varchar")),
    "reference": ("idx_reference", ("target_type", "target_id"), ("varchar", "varchar")),
    "string": ("idx_string", ("value", "exact"), ("varchar", "varchar")),
    "date": ("idx_date", ("low", "high"), ("int8", "int8")),
    "quantity": (
        "idx_quantity",
        ("low", "high", "system", "code"),
        ("float8", "float8", "varchar", "varchar"),
    ),
}
FIRST_INDEX_ARG = 13  # $1..$12 are the resource's own columns


def _index_ctes(rows_from: str, first: int) -> str:
    """CTEs inserting every index kind's rows from JSON arrays `e`, their values from element
    `first` on; `rows_from` (with `{number}`, the kind's array) gives `e` and the pk `r.pk`."""
    ctes = []
    for number, (kind, (table, columns, types)) in enumerate(INDEX_KINDS.items()):
        names = ("param", *columns)
        values = ", ".join(f"(e->>{first + i})::{t}" for i, t in enumerate(("varchar", *types)))
        ctes.append(
            f"i_{kind} AS (INSERT INTO {table} (resource_pk, {', '.join(names)}) "
            f"SELECT r.pk, {values} FROM {rows_from.format(number=number)})"
        )
    return ",\n".join(ctes)


def _pg_index_inserts() -> tuple[str, int]:
    """CTEs inserting every index kind's rows, all sent as one JSON array of arrays (one
    parameter: encoding a dozen typed arrays costs the client more than PostgreSQL's parse).
    """
    rows_from = f"r, json_array_elements(${FIRST_INDEX_ARG}::json -> {{number}}) AS e"
    return _index_ctes(rows_from, 0), FIRST_INDEX_ARG + 1


_PG_INDEX_INSERTS, _PG_NEXT_ARG = _pg_index_inserts()

# The version row takes the resource row's changed_at: one moment for both, so a bulk export
# reading the resource row as of a watermark agrees with the feed reading the version.
_PG_VERSION = """
v AS (
  INSERT INTO resource_version
    (resource_type, logical_id, version_id, last_updated, method, body, patient_id, author_org,
     restricted, client_id, client_org, changed_at)
  SELECT $1, $2, $3, $4, $8, $5, $6, $9, $10, $11, $12, r.changed_at FROM r
),"""

_PG_INSERT = """
WITH r AS (
  INSERT INTO resource (resource_type, logical_id, version_id, last_updated, deleted, body,
    patient_id, owner_org, author_org, restricted)
  SELECT $1, $2, $3, $4, false, $5, $6, $7, $9, $10 WHERE {live}
  RETURNING pk, changed_at
),"""

_PG_UPDATE = """
WITH r AS (
  UPDATE resource SET version_id = $3, last_updated = $4, changed_at = DEFAULT,
    deleted = false, body = $5, patient_id = $6, owner_org = COALESCE(owner_org, $7::varchar),
    author_org = $9, restricted = $10 WHERE pk = ${pk} AND {live} RETURNING pk, changed_at
),""" + "".join(
    f"\nd_{kind} AS (DELETE FROM {table} WHERE resource_pk IN (SELECT pk FROM r)),"
    for kind, (table, _, _) in INDEX_KINDS.items()
)

# A referenced resource must be live, whoever writes: an integrity check (`every_live`).
# `{{lock}}` is where PostgreSQL's check locks the row it finds (`_PG_LOCK`).
_LIVE = (
    "EXISTS (SELECT 1 FROM resource l WHERE l.resource_type = ${} AND l.logical_id = ${} "
    f"AND {every_live('l')}{{lock}})"
)

# The referenced rows, share-locked until the write commits. A check that only read them
# would see a resource live in the statement's snapshot while its delete commits beside it
# (READ COMMITTED), leaving the new version referencing a deleted resource. FOR SHARE
# conflicts with every UPDATE of the row (a delete is one, of non-key columns, which FOR KEY
# SHARE would let through) and with the FOR UPDATE of `read_current(lock=True)`, so a delete
# or update of the target waits for this write, or this write for it: a locking read waits
# for the row's writer, then tests `NOT deleted` again on the row's newest version and finds
# nothing if it was deleted. Bundle creates lock their targets the same way (`live_among`).
_PG_LOCK = " FOR SHARE"


@cache
def _pg_write_sql(update: bool, targets: int) -> str:
    """The one-statement write for a number of referenced resources, each a parameter pair.

    Each check is an index probe whatever the table's size, and a statement's plan costs
    the same with or without its parameters' values, so PostgreSQL settles on one generic
    plan instead of planning every execution.
    """
    first = _PG_NEXT_ARG + 1 if update else _PG_NEXT_ARG  # the updated pk comes first
    checks = [_LIVE.format(first + 2 * n, first + 2 * n + 1, lock=_PG_LOCK) for n in range(targets)]
    live = " AND ".join(checks) or "true"
    head = (_PG_UPDATE if update else _PG_INSERT).format(live=live, pk=_PG_NEXT_ARG)
    return head + _PG_VERSION + _PG_INDEX_INSERTS + "\nSELECT pk FROM r"


def _index_json(new: "NewVersion") -> str:
    index = new.index
    rows = [index.token, index.reference, index.string, index.date, index.quantity]
    return orjson.dumps(rows).decode()


Rider = Callable[[int], tuple[str, list[Any]]]  # first parameter number -> (CTEs, values)


async def write_postgres(
    conn: Connection,
    new: NewVersion,
    pk: int | None,
    must_exist: list[tuple[str, str]],
    final: bool,
    rider: StoredAudit | None = None,
    notices: Rider | None = None,
) -> int | None:
    """Insert (pk None) or update resource `pk`, in one statement, if every `must_exist`
    (type, id) is a live resource; None (nothing written) otherwise. A `rider` (the
    request's AuditEvent) is stored by the same statement, and only if it writes; so are the
    notifications `notices` makes (CTEs from a parameter number on, and their values)."""
    args = [
        new.resource_type,
        new.logical_id,
        new.version_id,
        new.last_updated,
        new.body,
        new.patient_id,
        new.owner_org,
        new.method,
        new.author_org,
        new.restricted,
        new.client_id,
        new.client_org,
        _index_json(new),
        *([] if pk is None else [pk]),
        *(part for target in must_exist for part in target),
    ]
    run = conn.fetchrow_final if final else conn.fetchrow
    text = _pg_write_sql(pk is not None, len(must_exist))
    if rider is not None:
        head, select = text.rsplit("\n", 1)
        text = f"{head}{rider_sql(len(args) + 1)}\n{select}"
        args += rider_args(rider)
    if notices is not None:
        head, select = text.rsplit("\n", 1)
        ctes, values = notices(len(args) + 1)
        text = f"{head}{ctes}\n{select}"
        args += values
    try:
        row = await run(text, *args)
    except Exception as exc:
        if rider is not None and getattr(exc, "table_name", None) in AUDIT_TABLES:
            raise Unavailable.of("the audit trail cannot be written now; try again") from exc
        raise
    return None if row is None else int(row[0])


def _pg_many_sql() -> str:
    """One statement creating many resources (arrays unnested), their version rows and their
    index rows (one JSON array per kind of [type, id, param, ...], joined back to the pks)."""
    rows_from = (
        "json_array_elements($12::json -> {number}) AS e "
        "JOIN r ON r.resource_type = e->>0 AND r.logical_id = e->>1"
    )
    ctes = _index_ctes(rows_from, 2)
    return (
        "WITH u AS (SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::int[], $4::int8[], "
        "$5::bytea[], $6::varchar[], $7::varchar[], $8::varchar[], $9::bool[], $10::varchar[], "
        "$11::varchar[]) AS u(t, i, v, l, b, p, o, a, s, c, co)),"
        "\nr AS (INSERT INTO resource (resource_type, logical_id, version_id, last_updated, "
        "deleted, body, patient_id, owner_org, author_org, restricted) "
        "SELECT t, i, v, l, false, b, p, o, a, s FROM u "
        "RETURNING pk, resource_type, logical_id, changed_at),\n"
        "v AS (INSERT INTO resource_version (resource_type, logical_id, version_id, last_updated, "
        "method, body, patient_id, author_org, restricted, client_id, client_org, changed_at) "
        "SELECT t, i, v, l, 'POST', b, p, a, s, c, co, r.changed_at FROM u "
        "JOIN r ON r.resource_type = u.t AND r.logical_id = u.i),\n"
        + ctes
        + "\nSELECT resource_type, logical_id, pk FROM r"
    )


_PG_MANY = _pg_many_sql()


async def write_postgres_many(conn: Connection, news: list[NewVersion]) -> list[int]:
    """Insert new resources, their versions and index rows in one statement; their pks, in
    order. References are not checked here."""
    index: list[list[Any]] = [[] for _ in INDEX_KINDS]
    for new in news:
        for number, kind in enumerate(INDEX_KINDS):
            index[number].extend(
                [new.resource_type, new.logical_id, *row] for row in getattr(new.index, kind)
            )
    rows = await conn.fetch(
        _PG_MANY,
        [n.resource_type for n in news],
        [n.logical_id for n in news],
        [n.version_id for n in news],
        [n.last_updated for n in news],
        [n.body for n in news],
        [n.patient_id for n in news],
        [n.owner_org for n in news],
        [n.author_org for n in news],
        [n.restricted for n in news],
        [n.client_id for n in news],
        [n.client_org for n in news],
        orjson.dumps(index).decode(),
    )
    pks = {(row[0], row[1]): int(row[2]) for row in rows}
    return [pks[(n.resource_type, n.logical_id)] for n in news]


async def clear_index(conn: Connection, pk: int) -> None:
    """Remove a resource's index rows (before a new version's, or on delete)."""
    for table, _, _ in INDEX_KINDS.values():
        await conn.execute(f"DELETE FROM {table} WHERE resource_pk = $1", pk)


_SQLITE_INSERT = (
    "INSERT INTO resource (resource_type, logical_id, version_id, last_updated, deleted, body, "
    "patient_id, owner_org, author_org, restricted) SELECT $1, $2, $3, $4, 0, $5, $6, $7, $8, $9 "
    "WHERE {live} "
    "RETURNING pk"
)
_SQLITE_UPDATE = (
    "UPDATE resource SET version_id = $2, last_updated = $3, deleted = 0, body = $4, "
    "patient_id = $5, owner_org = COALESCE(owner_org, $6), author_org = $7, restricted = $8 "
    "WHERE pk = $1 AND {live} RETURNING pk"
)
_SQLITE_VERSION = (
    "INSERT INTO resource_version (resource_type, logical_id, version_id, last_updated, method, "
    "body, patient_id, author_org, restricted, client_id, client_org) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
)


@cache
def _sqlite_write_sql(update: bool, targets: int) -> str:
    """The resource row's INSERT or UPDATE, written only if each referenced resource is live.

    Nothing is locked: SQLite has one writer at a time, and the unit of work holds it from its
    first statement to its commit, so no delete can commit between this check and the write.
    """
    first = 9 if update else 10  # parameters after the row's own
    checks = [_LIVE.format(first + 2 * n, first + 2 * n + 1, lock="") for n in range(targets)]
    return (_SQLITE_UPDATE if update else _SQLITE_INSERT).format(live=" AND ".join(checks) or "1")


async def write_sqlite(
    conn: Connection, new: NewVersion, pk: int | None, must_exist: list[tuple[str, str]]
) -> int | None:
    """Insert (pk None) or update resource `pk` with its new version, statement by statement,
    if every `must_exist` (type, id) is a live resource; None (nothing written) otherwise."""
    targets = [part for target in must_exist for part in target]
    sql = _sqlite_write_sql(pk is not None, len(must_exist))
    owned = (new.patient_id, new.owner_org, new.author_org, new.restricted)
    if pk is None:
        first = (new.resource_type, new.logical_id, new.version_id, new.last_updated, new.body)
        row = await conn.fetchrow(sql, *first, *owned, *targets)
    else:
        row = await conn.fetchrow(
            sql, pk, new.version_id, new.last_updated, new.body, *owned, *targets
        )
    if row is None:
        return None
    if pk is not None:
        await clear_index(conn, pk)
    pk = int(row[0])
    await insert_index_rows(conn, pk, new.index)
    await conn.execute(
        _SQLITE_VERSION,
        new.resource_type,
        new.logical_id,
        new.version_id,
        new.last_updated,
        new.method,
        new.body,
        new.patient_id,
        new.author_org,
        new.restricted,
        new.client_id,
        new.client_org,
    )
    return pk


def _index_insert(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 3))
    return f"INSERT INTO {table} (resource_pk, param, {', '.join(columns)}) VALUES ({marks})"


_INDEX_INSERTS = [
    (kind, _index_insert(table, columns)) for kind, (table, columns, _) in INDEX_KINDS.items()
]


# A many-resource SQLite write: each table's rows as one JSON array (json_each), bodies as
# byte ranges of one BLOB, so each table takes one statement that runs wholly inside SQLite.
_SQLITE_MANY_RESOURCES = (
    "INSERT INTO resource (pk, resource_type, logical_id, version_id, last_updated, deleted, "
    "body, patient_id, owner_org, author_org, restricted) SELECT value->>0, value->>1, "
    "value->>2, value->>3, value->>4, 0, substr($2, value->>5, value->>6), value->>7, "
    "value->>8, value->>9, value->>10 FROM json_each($1)"
)
_SQLITE_MANY_VERSIONS = (
    "INSERT INTO resource_version (resource_type, logical_id, version_id, last_updated, "
    "method, body, patient_id, author_org, restricted, client_id, client_org) SELECT "
    "value->>1, value->>2, value->>3, value->>4, 'POST', substr($2, value->>5, value->>6), "
    "value->>7, value->>9, value->>10, value->>11, value->>12 FROM json_each($1)"
)
_SQLITE_MANY_INDEX = [
    (
        kind,
        f"INSERT INTO {table} (resource_pk, param, {', '.join(columns)}) SELECT "
        + ", ".join(f"value->>{i}" for i in range(len(columns) + 2))
        + " FROM json_each($1)",
    )
    for kind, (table, columns, _) in INDEX_KINDS.items()
]


async def write_sqlite_many(conn: Connection, news: list[NewVersion]) -> list[int]:
    """Insert new resources, their versions and index rows: one statement a table for all
    (cheaper than binding each row from Python); their pks, in order.

    The unit of work holds SQLite's only write lock, so the next pks are known in advance.
    References are not checked here.
    """
    row = await conn.fetchrow("SELECT COALESCE(MAX(pk), 0) FROM resource")
    first = int(row[0]) + 1 if row is not None else 1
    pks = range(first, first + len(news))
    bodies, rows, start = b"".join(n.body for n in news), [], 1
    for pk, n in zip(pks, news, strict=True):
        rows.append(
            (
                pk,
                n.resource_type,
                n.logical_id,
                n.version_id,
                n.last_updated,
                start,
                len(n.body),
                n.patient_id,
                n.owner_org,
                n.author_org,
                n.restricted,
                n.client_id,
                n.client_org,
            )
        )
        start += len(n.body)
    resources = orjson.dumps(rows)
    await conn.execute(_SQLITE_MANY_RESOURCES, resources, bodies)
    await conn.execute(_SQLITE_MANY_VERSIONS, resources, bodies)
    for kind, sql in _SQLITE_MANY_INDEX:
        index = [(pk, *r) for pk, n in zip(pks, news, strict=True) for r in getattr(n.index, kind)]
        if index:
            await conn.execute(sql, orjson.dumps(index))
    return list(pks)


async def insert_index_rows(conn: Connection, pk: int, index: IndexRows) -> None:
    """Insert a resource's index rows, one statement per kind that has any."""
    for kind, sql in _INDEX_INSERTS:
        rows = getattr(index, kind)
        if rows:
            await conn.executemany(sql, [(pk, *row) for row in rows])
