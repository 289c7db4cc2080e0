"""The stored resources as one caller sees them: `Repository` binds a connection to the caller,
and every storage function takes one, so no statement can be run for nobody in particular.

Reads (this module: a resource, a version; `changes`: history; `query` and `includes`:
searches) filter every row through `Sql.visible`. Writes stamp and store a new version with its
index rows; only the current version of a resource is indexed. A write that may hide the
resource from callers who saw it records who lost sight (`vanishing`), in its transaction.
"""

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, NamedTuple

import orjson

from app.access import Caller
from app.access.trail import Trail
from app.access.visibility import RESPONSIBLE, Sight
from app.clock import instant, now_micros
from app.storage import outbox, vanishing
from app.storage.db import Connection
from app.storage.indexer import Derived
from app.storage.statements import Sql, every_live, sees_everything
from app.storage.writes import (
    SAME_MOMENT,
    TOUCHED,
    NewVersion,
    clear_index,
    write_postgres,
    write_postgres_many,
    write_sqlite,
    write_sqlite_many,
)

CLAIM_TABLES = ("nhs_number_claim", "flag_claim")  # rows held by a live resource, by its pk
EVERYONE = Caller(subject="integrity checks of writes")  # sees every resource


class Repository(NamedTuple):
    """One connection bound to the caller it serves: what every storage function works on."""

    conn: Connection
    caller: Caller
    trail: Trail | None = None  # what the request wrote, for its AuditEvent

    def sql(self) -> Sql:
        """A statement builder for this caller."""
        return Sql(self.caller)

    def expect_more(self) -> None:
        """Several writes follow in this unit of work (a transaction Bundle): none of them may
        commit on its own."""
        self.conn.expect_more()


class Current(NamedTuple):
    """The current state of one logical resource."""

    pk: int
    version_id: int
    last_updated: int
    deleted: bool
    body: bytes | None
    author_org: str | None = None  # the Organization that authored it (access.writing)
    patient_id: str | None = None  # the Patient compartment it is in
    restricted: bool = False  # labelled restricted (access.visibility)

    def sight(self) -> Sight:
        """What decides who sees it, but the Organizations responsible for its child."""
        return Sight(self.patient_id, self.author_org, self.restricted)


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
    patient_id: str | None = None  # the Patient compartment it is in
    changed_at: int = 0  # when the database stored it (`feed`)
    kind: int = 0  # in history: 0 a stored version, 1 a tombstone (`storage.vanishing`)


@lru_cache(maxsize=256)
def _read_sql(caller: Caller, dialect: str, lock: bool) -> tuple[str, tuple[Any, ...]]:
    """The read of a resource by type and id ($1, $2), and the caller's own arguments."""
    sql = Sql(caller, ["type", "id"])
    suffix = " FOR UPDATE" if lock and dialect == "postgresql" else ""
    text = (
        "SELECT r.pk, r.version_id, r.last_updated, r.deleted, r.body, r.author_org, "
        "r.patient_id, r.restricted "
        "FROM resource r "
        f"WHERE r.resource_type = $1 AND r.logical_id = $2 AND {sql.visible('r', live=False)}"
    )
    return text + suffix, tuple(sql.args[2:])


async def read_current(
    repo: Repository, resource_type: str, logical_id: str, *, lock: bool = False
) -> Current | None:
    """The current row of a resource, deleted or not (locked for update on PostgreSQL when
    `lock`); None if there is none the caller may see."""
    text, own = _read_sql(repo.caller, repo.conn.dialect, lock)
    row = await repo.conn.fetchrow(text, resource_type, logical_id, *own)
    if row is None:
        return None
    pk, version_id, last_updated, deleted, body, author_org, patient_id, restricted = row
    return Current(
        pk, version_id, last_updated, bool(deleted), body, author_org, patient_id, bool(restricted)
    )


async def hidden(repo: Repository, resource_type: str, logical_id: str) -> bool:
    """Whether a resource with that id exists (deleted or not) that the caller may not see:
    a write must neither treat it as absent nor say that it exists."""
    if sees_everything(repo.caller):
        return False
    sql = repo.sql()
    row = await repo.conn.fetchrow(
        f"SELECT 1 FROM resource r WHERE r.resource_type = {sql.arg(resource_type)} AND "
        f"r.logical_id = {sql.arg(logical_id)} AND NOT ({sql.visible('r', live=False)})",
        *sql.args,
    )
    return row is not None


def seeing_everything(repo: Repository) -> Repository:
    """The same connection as a caller who sees every resource: for the integrity checks of
    writes only (does anything at all match a condition), never to answer a caller."""
    return Repository(repo.conn, EVERYONE)


async def read_by_pk(repo: Repository, pk: int) -> Version | None:
    """The current version of the live resource with surrogate key `pk`, if the caller sees it."""
    sql = repo.sql()
    row = await repo.conn.fetchrow(
        "SELECT r.logical_id, r.version_id, r.last_updated, r.body, r.resource_type "
        f"FROM resource r WHERE r.pk = {sql.arg(pk)} AND {sql.visible('r')}",
        *sql.args,
    )
    return None if row is None else Version(row[0], row[1], row[2], "GET", row[3], row[4])


async def read_version(
    repo: Repository, resource_type: str, logical_id: str, version_id: int
) -> Version | None:
    """One past or current version, if the caller may see it."""
    sql = repo.sql()
    row = await repo.conn.fetchrow(
        "SELECT v.version_id, v.last_updated, v.method, v.body, v.patient_id "
        "FROM resource_version v "
        f"{as_it_is_now(sql, 'v')} WHERE v.resource_type = {sql.arg(resource_type)} AND "
        f"v.logical_id = {sql.arg(logical_id)} AND v.version_id = {sql.arg(version_id)} "
        f"AND {sql.visible('v', live=False)}",
        *sql.args,
    )
    if row is None:
        return None
    return Version(logical_id, row[0], row[1], row[2], row[3], patient_id=row[4])


def as_it_is_now(sql: Sql, version: str) -> str:
    """A join of each version row to its resource's current row, as the caller may see it: a
    past version is seen only while the resource itself is (one since restricted, or moved
    to a child the caller is not responsible for, hides its earlier versions too). Nothing
    for a caller who sees every row."""
    if sees_everything(sql.caller):
        return ""
    now = sql.alias("n")
    return (
        f"JOIN resource {now} ON {now}.resource_type = {version}.resource_type AND "
        f"{now}.logical_id = {version}.logical_id AND {sql.visible(now, live=False)}"
    )


def stamp(resource: dict[str, Any], logical_id: str, version_id: int, micros: int) -> bytes:
    """The stored JSON of a version: id and meta.versionId/lastUpdated set, resourceType first."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = instant(micros)
    rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
    stamped = {"resourceType": resource["resourceType"], "id": logical_id, "meta": meta, **rest}
    return orjson.dumps(stamped)


async def save(
    repo: Repository,
    resource: dict[str, Any],
    logical_id: str,
    current: Current | None,
    method: str,
    derived: Derived,
    must_exist: list[tuple[str, str]],
    final: bool = False,
    flag_action: str | None = None,
) -> tuple[int, Version] | None:
    """Write a new version (1 when `current` is None) if every `must_exist` (type, id) is live.

    Returns (pk, version), or None when a referenced resource is missing (nothing written).
    `final` says nothing follows in this unit of work, so on PostgreSQL the write may run
    as its own implicit transaction when no statement came before it. `flag_action`: what
    the write does to a safeguarding Flag, for the notifications it gives rise to (`outbox`).
    """
    new = _new_version(repo.caller, resource, logical_id, current, method, derived)
    current_pk = None if current is None else current.pk
    seen, own_before, after = None, frozenset[str](), _sight(new)
    if current is not None and not current.deleted:  # who saw it may lose sight of it
        own_before = await vanishing.own_responsible(repo.conn, new.resource_type, current.pk)
        before = replace(current.sight(), responsible=own_before)
        seen = vanishing.watch(new.resource_type, logical_id, current.pk, before, after)
    change = outbox.change_of(new, own_before, after.responsible, flag_action)
    if repo.conn.dialect == "postgresql":
        notices = outbox.notices(repo.caller, change)
        final = final and seen is None and (change is None or notices is not None)
        rider = _rider(repo, new) if final else None
        pk = await write_postgres(repo.conn, new, current_pk, must_exist, final, rider, notices)
        if rider is not None and repo.trail is not None:
            repo.trail.rides = pk is not None
        change = None if notices is not None else change
    else:
        pk = await write_sqlite(repo.conn, new, current_pk, must_exist)
    if pk is None:
        return None
    if seen is not None:
        await vanishing.record(repo.conn, seen, new.version_id, new.last_updated)
    if change is not None:
        await outbox.after_write(repo.conn, repo.caller, change)
    _wrote(repo, new)
    return pk, _version(new)


def _sight(new: NewVersion) -> Sight:
    """What decides who sees a new version: its child, author and label, and the
    Organizations it makes responsible for its child."""
    responsible = frozenset(
        target for param, kind, target in new.index.reference if param == RESPONSIBLE
    )
    return Sight(new.patient_id, new.author_org, new.restricted, responsible)


def _rider(repo: Repository, new: NewVersion) -> Any:
    """The request's AuditEvent, to store in the statement of its last write (one round trip
    instead of two), naming that write; None when it is stored otherwise."""
    trail = repo.trail
    if trail is None or trail.success_row is None or trail.recorded:
        return None
    mark = trail.mark()
    _wrote(repo, new)
    row = trail.success_row()
    trail.undo_to(mark)  # noted again once written
    return row


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
        author_org=derived.author_org or _creator(caller, current),
        restricted=derived.restricted,
        client_id=caller.subject,
        client_org=caller.organisation,
        index=derived.index,
    )


def _creator(caller: Caller, current: Current | None) -> str | None:
    """Who authored a resource that names no author: the organisation that created it."""
    return caller.organisation if current is None else current.author_org


def _wrote(repo: Repository, new: NewVersion) -> None:
    """Note a version written in the request's trail (its AuditEvent names it)."""
    if repo.trail is not None:
        repo.trail.saw(new.resource_type, new.logical_id, new.patient_id, new.version_id)


def _version(new: NewVersion) -> Version:
    return Version(
        new.logical_id, new.version_id, new.last_updated, new.method, new.body, new.resource_type
    )


async def create_all(
    repo: Repository,
    resources: list[tuple[dict[str, Any], str, Derived]],
    flag_actions: list[str | None] | None = None,
) -> list[tuple[int, Version]]:
    """Version 1 of each (resource, id, derived rows), written together, without checking
    references (checked, and on PostgreSQL locked, with `live_among` first); (pk, version)
    of each, in order. `flag_actions`: as for `save`, one per resource."""
    news = [_new_version(repo.caller, r, i, None, "POST", d) for r, i, d in resources]
    if repo.conn.dialect == "postgresql":
        pks = await write_postgres_many(repo.conn, news)
    else:
        pks = await write_sqlite_many(repo.conn, news)
    for new, action in zip(news, flag_actions or [None] * len(news), strict=True):
        change = outbox.change_of(new, frozenset(), _sight(new).responsible, action)
        if change is not None:
            await outbox.after_write(repo.conn, repo.caller, change)
        _wrote(repo, new)
    return [(pk, _version(new)) for pk, new in zip(pks, news, strict=True)]


# The version a delete writes, copied from the resource row (`{same}`: its changed_at too).
_DELETION = (
    "INSERT INTO resource_version (resource_type, logical_id, version_id, last_updated, "
    "method, body, patient_id, author_org, restricted, client_id, client_org{same}) "
    "SELECT resource_type, logical_id, $2, $3, 'DELETE', NULL, patient_id, author_org, "
    "restricted, $4, $5{same} FROM resource WHERE pk = $1"
)


async def delete(
    repo: Repository, resource_type: str, logical_id: str, current: Current
) -> Version:
    """Mark a live resource deleted as a new version, releasing its index rows and claims;
    history keeps every earlier version."""
    micros = max(now_micros(), current.last_updated + 1)
    version = Version(logical_id, current.version_id + 1, micros, "DELETE", None, resource_type)
    conn = repo.conn
    own_before = await vanishing.own_responsible(conn, resource_type, current.pk)
    before = replace(current.sight(), responsible=own_before)
    seen = vanishing.watch(resource_type, logical_id, current.pk, before, current.sight())
    await conn.execute(
        "UPDATE resource SET version_id = $2, last_updated = $3, deleted = $4, body = NULL"
        f"{TOUCHED[conn.dialect]} WHERE pk = $1",
        current.pk,
        version.version_id,
        micros,
        True,
    )
    await clear_index(conn, current.pk)
    for table in CLAIM_TABLES:
        await conn.execute(f"DELETE FROM {table} WHERE resource_pk = $1", current.pk)
    await conn.execute(
        _DELETION.format(same=SAME_MOMENT[conn.dialect]),
        current.pk,
        version.version_id,
        micros,
        repo.caller.subject,
        repo.caller.organisation,
    )
    if seen is not None:  # the Organizations it made responsible for its child are gone
        await vanishing.record(conn, seen, version.version_id, micros)
    if own_before and current.patient_id is not None:
        gone = outbox.Change(
            resource_type,
            logical_id,
            version.version_id,
            current.patient_id,
            micros,
            own_before=own_before,
        )
        await outbox.after_write(conn, repo.caller, gone)
    if repo.trail is not None:
        repo.trail.saw(resource_type, logical_id, current.patient_id, version.version_id)
    return version


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
        f"WHERE {every_live('r')}{suffix}"
    )


async def live_among(
    repo: Repository, targets: list[tuple[str, str]], *, lock: bool = False
) -> set[tuple[str, str]]:
    """Those of the (type, id) pairs that name a live resource, a few hundred per query;
    with `lock`, on PostgreSQL, none of them can be deleted or changed until commit.

    The one read that ignores who asks (`every_live`): a write's references must name
    resources that exist, whether or not the writer may read them; the answer reveals no more
    than the existence of ids the writer already holds.
    """
    live: set[tuple[str, str]] = set()
    for start in range(0, len(targets), 500):
        chunk = targets[start : start + 500]
        rows = await repo.conn.fetch(
            live_sql(len(chunk), lock, repo.conn.dialect),
            *(value for target in chunk for value in target),
        )
        live.update((row[0], row[1]) for row in rows)
    return live
