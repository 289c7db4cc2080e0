"""Create, read, vread, update, delete and history SQL over the resource tables.

Every function takes the caller's access context first, so that access rules can be enforced
here in one place later. Only the current version of a resource is indexed.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from app.access import Caller
from app.errors import WriteConflict
from app.storage import person_links
from app.storage.db import Connection, Row
from app.storage.indexer import Derived
from app.storage.writes import (
    NewVersion,
    clear_index,
    write_postgres,
    write_postgres_many,
    write_sqlite,
    write_sqlite_many,
)

_READ = (
    "SELECT pk, version_id, last_updated, deleted, body FROM resource "
    "WHERE resource_type = $1 AND logical_id = $2"
)


@dataclass(frozen=True, slots=True)
class Current:
    """The current state of one logical resource."""

    pk: int
    version_id: int
    last_updated: int
    deleted: bool
    body: bytes | None


@dataclass(frozen=True, slots=True)
class Version:
    """One stored version (body None for a delete)."""

    logical_id: str
    version_id: int
    last_updated: int
    method: str
    body: bytes | None
    resource_type: str = ""
    seq: int = 0


def now_micros() -> int:
    """Microseconds since the epoch, UTC."""
    return time.time_ns() // 1000


def instant(micros: int) -> str:
    """A FHIR instant with microseconds: `2026-11-26T22:00:00.123456+00:00`."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{_instant_second(seconds)}.{fraction:06d}+00:00"


@lru_cache(maxsize=64)
def _instant_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()[:19]


def _current(row: Row | None) -> Current | None:
    if row is None:
        return None
    return Current(row[0], row[1], row[2], bool(row[3]), row[4])


async def read_current(
    conn: Connection, caller: Caller, resource_type: str, logical_id: str, *, lock: bool = False
) -> Current | None:
    """The current row of a resource (locked for update on PostgreSQL when `lock`)."""
    suffix = " FOR UPDATE" if lock and conn.dialect == "postgresql" else ""
    return _current(await conn.fetchrow(_READ + suffix, resource_type, logical_id))


async def read_by_pk(conn: Connection, caller: Caller, pk: int) -> Version:
    """The current version of the resource with surrogate key `pk` (which must exist)."""
    row = await conn.fetchrow(
        "SELECT logical_id, version_id, last_updated, body, resource_type FROM resource "
        "WHERE pk = $1",
        pk,
    )
    assert row is not None, "read_by_pk of a key that was just found"
    return Version(row[0], row[1], row[2], "GET", row[3], row[4])


async def read_version(
    conn: Connection, caller: Caller, resource_type: str, logical_id: str, version_id: int
) -> Version | None:
    """One past or current version."""
    row = await conn.fetchrow(
        "SELECT version_id, last_updated, method, body FROM resource_version "
        "WHERE resource_type = $1 AND logical_id = $2 AND version_id = $3",
        resource_type,
        logical_id,
        version_id,
    )
    return None if row is None else Version(logical_id, row[0], row[1], row[2], row[3])


def stamp(resource: dict[str, Any], logical_id: str, version_id: int, micros: int) -> bytes:
    """The stored JSON of a version: id and meta.versionId/lastUpdated set, resourceType first."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = instant(micros)
    rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
    stamped = {"resourceType": resource["resourceType"], "id": logical_id, "meta": meta, **rest}
    return orjson.dumps(stamped)


async def _append_version(conn: Connection, resource_type: str, version: Version) -> None:
    await conn.execute(
        "INSERT INTO resource_version "
        "(resource_type, logical_id, version_id, last_updated, method, body) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        resource_type,
        version.logical_id,
        version.version_id,
        version.last_updated,
        version.method,
        version.body,
    )


async def save(
    conn: Connection,
    caller: Caller,
    resource: dict[str, Any],
    logical_id: str,
    current: Current | None,
    method: str,
    derived: Derived,
    must_exist: list[tuple[str, str]],
    final: bool = False,
) -> tuple[int, Version] | None:
    """Write a new version (1 when `current` is None) if every `must_exist` (type, id) is live.

    Returns (pk, version), or None when a referenced resource is missing (nothing written).
    `final` says nothing follows in this unit of work, so on PostgreSQL the write may run
    as its own implicit transaction when no statement came before it.
    """
    new = _new_version(caller, resource, logical_id, current, method, derived)
    current_pk = None if current is None else current.pk
    if conn.dialect == "postgresql":
        pk = await write_postgres(conn, new, current_pk, must_exist, final)
    else:
        pk = await write_sqlite(conn, new, current_pk, must_exist)
    if pk is None:
        return None
    return pk, _version(new)


def _new_version(
    caller: Caller,
    resource: dict[str, Any],
    logical_id: str,
    current: Current | None,
    method: str,
    derived: Derived,
) -> NewVersion:
    """The rows of the version after `current` (version 1 when None), stamped and serialised."""
    micros = max(now_micros(), current.last_updated + 1 if current else 0)
    version_id = 1 if current is None else current.version_id + 1
    return NewVersion(
        resource_type=resource["resourceType"],
        logical_id=logical_id,
        version_id=version_id,
        last_updated=micros,
        method=method,
        body=stamp(resource, logical_id, version_id, micros),
        patient_id=derived.patient_id,
        owner_org=caller.organisation,
        index=derived.index,
    )


def _version(new: NewVersion) -> Version:
    return Version(new.logical_id, new.version_id, new.last_updated, new.method, new.body,
                   new.resource_type)  # fmt: skip


async def create_all(
    conn: Connection, caller: Caller, resources: list[tuple[dict[str, Any], str, Derived]]
) -> list[Version]:
    """Version 1 of each (resource, id, derived rows), written together, without checking
    references: the caller has checked (and on PostgreSQL locked) them with `live_among`."""
    news = [_new_version(caller, r, logical_id, None, "POST", d) for r, logical_id, d in resources]
    if conn.dialect == "postgresql":
        await write_postgres_many(conn, news)
    else:
        await write_sqlite_many(conn, news)
    return [_version(new) for new in news]


async def delete(
    conn: Connection, caller: Caller, resource_type: str, logical_id: str, current: Current
) -> Version:
    """Mark a live resource deleted as a new version; history keeps every earlier version."""
    micros = max(now_micros(), current.last_updated + 1)
    version = Version(logical_id, current.version_id + 1, micros, "DELETE", None, resource_type)
    await conn.execute(
        "UPDATE resource SET version_id = $2, last_updated = $3, deleted = $4, body = NULL "
        "WHERE pk = $1",
        current.pk,
        version.version_id,
        micros,
        True,
    )
    await clear_index(conn, current.pk)
    await conn.execute("DELETE FROM nhs_number_claim WHERE resource_pk = $1", current.pk)
    if resource_type == "Flag":
        await conn.execute("DELETE FROM flag_claim WHERE resource_pk = $1", current.pk)
    elif resource_type == "Patient":
        await person_links.unlink_patient(conn, caller, logical_id)
    await _append_version(conn, resource_type, version)
    return version


async def history(
    conn: Connection,
    caller: Caller,
    *,
    resource_type: str | None,
    logical_id: str | None,
    since: int | None,
    before_seq: int | None,
    count: int,
) -> list[Version]:
    """Versions newest first, paged on the change sequence (`before_seq` is the cursor)."""
    where, args = ["1=1"], []
    for column, value, op in (
        ("resource_type", resource_type, "="),
        ("logical_id", logical_id, "="),
        ("last_updated", since, ">="),
        ("seq", before_seq, "<"),
    ):
        if value is not None:
            args.append(value)
            where.append(f"{column} {op} ${len(args)}")
    args.append(count)
    rows = await conn.fetch(
        "SELECT logical_id, version_id, last_updated, method, body, resource_type, seq "
        f"FROM resource_version WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ${len(args)}",
        *args,
    )
    return [Version(*row) for row in rows]


def live_sql(pairs: int, lock: bool, dialect: str) -> str:
    """The query of `live_among` for a number of (type, id) pairs.

    The pairs are joined as a VALUES list: SQLite scans the whole table for a row-value IN
    list of more than one pair, but probes the (type, id) index once per joined row.
    """
    values = ", ".join(f"(${2 * n + 1}, ${2 * n + 2})" for n in range(pairs))
    suffix = " FOR SHARE OF r" if lock and dialect == "postgresql" else ""
    return (
        f"WITH t (resource_type, logical_id) AS (VALUES {values}) "
        "SELECT r.resource_type, r.logical_id FROM t JOIN resource r "
        "ON r.resource_type = t.resource_type AND r.logical_id = t.logical_id "
        f"WHERE NOT r.deleted{suffix}"
    )


async def live_among(
    conn: Connection, caller: Caller, targets: list[tuple[str, str]], *, lock: bool = False
) -> set[tuple[str, str]]:
    """Those of the (type, id) pairs that name a live resource, a few hundred per query;
    with `lock`, on PostgreSQL, none of them can be deleted or changed until commit."""
    live: set[tuple[str, str]] = set()
    for start in range(0, len(targets), 500):
        chunk = targets[start : start + 500]
        rows = await conn.fetch(
            live_sql(len(chunk), lock, conn.dialect),
            *(value for target in chunk for value in target),
        )
        live.update((row[0], row[1]) for row in rows)
    return live


async def claim_conditional_key(
    conn: Connection, caller: Caller, resource_type: str, match_key: str, pk: int
) -> int | None:
    """Claim a conditional-create key for `pk`; returns the holder's pk if another holds it.

    The key's primary key makes concurrent claims race-free: on PostgreSQL a second claimer
    waits for the first to commit, then sees the conflict.
    """
    row = await conn.fetchrow(
        "INSERT INTO conditional_key (resource_type, match_key, resource_pk) VALUES ($1, $2, $3) "
        "ON CONFLICT (resource_type, match_key) DO NOTHING RETURNING resource_pk",
        resource_type,
        match_key,
        pk,
    )
    if row is not None:
        return None
    holder = await conn.fetchrow(
        "SELECT resource_pk FROM conditional_key WHERE resource_type = $1 AND match_key = $2",
        resource_type,
        match_key,
    )
    if holder is None:
        raise WriteConflict("conditional create key vanished while claiming it")
    return int(holder[0])


async def take_over_conditional_key(
    conn: Connection, caller: Caller, resource_type: str, match_key: str, pk: int, holder_pk: int
) -> None:
    """Move a stale key (its holder no longer matches) to `pk`; losing a race raises."""
    taken = await conn.fetchrow(
        "UPDATE conditional_key SET resource_pk = $3 "
        "WHERE resource_type = $1 AND match_key = $2 AND resource_pk = $4 RETURNING resource_pk",
        resource_type,
        match_key,
        pk,
        holder_pk,
    )
    if taken is None:
        raise WriteConflict("conditional create raced with another writer")


async def claim_nhs_numbers(
    conn: Connection, caller: Caller, pk: int, nhs_numbers: set[str]
) -> dict[str, str]:
    """Claim NHS numbers for a Patient; returns those already held by another live Patient."""
    held = await conn.fetch("SELECT nhs_number FROM nhs_number_claim WHERE resource_pk = $1", pk)
    for (number,) in held:
        if number not in nhs_numbers:
            await conn.execute("DELETE FROM nhs_number_claim WHERE nhs_number = $1", number)
    clashes: dict[str, str] = {}
    for number in sorted(nhs_numbers):
        await conn.execute(
            "INSERT INTO nhs_number_claim (nhs_number, resource_pk) VALUES ($1, $2) "
            "ON CONFLICT (nhs_number) DO NOTHING",
            number,
            pk,
        )
        row = await conn.fetchrow(
            "SELECT c.resource_pk, r.logical_id FROM nhs_number_claim c "
            "JOIN resource r ON r.pk = c.resource_pk WHERE c.nhs_number = $1",
            number,
        )
        if row is not None and row[0] != pk:
            clashes[number] = row[1]
    return clashes
