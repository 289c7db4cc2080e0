"""The change feed as one caller sees it: the versions it may see and, for what a write has
hidden from it since it saw it, tombstones (`storage.vanishing`), which history shows as
deletions.

A caller's history of a resource is either its versions, while the caller sees the resource
(`repository.as_it_is_now`), or its tombstones, while it does not: a tombstone is shown only to
the audience that lost sight of the resource, and only while the resource stays hidden from it.
Once the resource is visible to it again, its versions come back and its tombstones go.

Both are ordered by (changed_at, kind, seq): `kind` 0 for a version, 1 for a tombstone, so that
the two sequences, numbered apart, merge into one order that a cursor can resume.
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

from app.access.visibility import tombstone_tests
from app.storage import budgeted
from app.storage.budgeted import Fitted
from app.storage.repository import Repository, Version, as_it_is_now
from app.storage.statements import Sql

VERSION, TOMBSTONE = 0, 1  # the kinds of change


class Mark(NamedTuple):
    """Where a history page stops: the feed's watermark when its first page was read (only
    changes before it are served), and the (changed_at, seq, kind) of the last change served."""

    watermark: int
    changed_at: int | None = None
    seq: int | None = None
    kind: int = VERSION


async def history(
    repo: Repository,
    *,
    resource_types: Sequence[str] | None,
    logical_id: str | None,
    since: int | None,
    mark: Mark,
    count: int,
    max_bytes: int,
) -> Fitted[Version]:
    """Changes the caller may see, stored before `mark.watermark`, newest first (by the
    database's `changed_at`, then kind and sequence), after `mark`'s last change; the versions'
    bodies read only while they fit in `max_bytes` (`budgeted`). An instance's history has no
    tombstones: while one could be shown, the instance is hidden (404)."""
    sql = repo.sql()
    page = _versions(sql, resource_types, logical_id, since, mark, count)
    tombstones = None if logical_id else _tombstones(sql, resource_types, since, mark, count)
    if tombstones is not None:
        page = (
            f"SELECT * FROM ({page}) pv UNION ALL SELECT * FROM ({tombstones}) pt "
            f"ORDER BY changed_at DESC, kind DESC, seq DESC LIMIT {sql.arg(count)}"
        )
    text = budgeted.fitting_sql(
        sql,
        page,
        columns=list(Version.__dataclass_fields__),
        order=[("changed_at", True), ("kind", True), ("seq", True)],
        table="resource_version",
        key="seq",
        max_bytes=max_bytes,
        live=False,
        stored_if=f"p.kind = {VERSION}",
    )
    rows = await repo.conn.fetch(text, *sql.args)
    return Fitted([Version(*row[:-1]) for row in rows if row[-1]], len(rows))


def _versions(
    sql: Sql,
    resource_types: Sequence[str] | None,
    logical_id: str | None,
    since: int | None,
    mark: Mark,
    count: int,
) -> str:
    """A page of the versions the caller may see (`body_size` in place of the body)."""
    now = as_it_is_now(sql, "v")
    where = [sql.visible("v", live=False), *_window(sql, "v", since, mark, VERSION)]
    if resource_types is not None:
        where.append(_types(sql, "v", resource_types))
    if logical_id is not None:
        where.append(f"v.logical_id = {sql.arg(logical_id)}")
    return (
        "SELECT v.logical_id, v.version_id, v.last_updated, v.method, length(v.body) AS "
        "body_size, v.resource_type, v.seq, v.patient_id, v.changed_at, 0 AS kind "
        f"FROM resource_version v {now} WHERE {' AND '.join(where)} "
        f"ORDER BY v.changed_at DESC, v.seq DESC LIMIT {sql.arg(count)}"
    )


def _tombstones(
    sql: Sql,
    resource_types: Sequence[str] | None,
    since: int | None,
    mark: Mark | None,
    count: int,
    *,
    ascending: bool = False,
) -> str | None:
    """A page of the tombstones that reach the caller, shaped as `_versions`' rows; None when
    none ever does."""
    reach = tombstone_tests(sql.caller, "t", sql.arg)
    if reach is None:
        return None
    where = [*reach, *_window(sql, "t", since, mark, TOMBSTONE, ascending=ascending)]
    if resource_types is not None:
        where.append(_types(sql, "t", resource_types))
    now = sql.alias("n")
    where.append(
        f"NOT EXISTS (SELECT 1 FROM resource {now} WHERE {now}.resource_type = t.resource_type "
        f"AND {now}.logical_id = t.logical_id AND {sql.visible(now, live=False)})"
    )
    order = "ASC" if ascending else "DESC"
    return (
        "SELECT t.logical_id, t.version_id, t.last_updated, 'DELETE' AS method, "
        "CAST(NULL AS INTEGER) AS body_size, t.resource_type, t.seq, t.patient_id, "
        "t.changed_at, 1 AS kind "
        f"FROM tombstone t WHERE {' AND '.join(where)} "
        f"ORDER BY t.changed_at {order}, t.seq {order} LIMIT {sql.arg(count)}"
    )


def _types(sql: Sql, alias: str, resource_types: Sequence[str]) -> str:
    marks = ", ".join(sql.arg(name) for name in resource_types)
    return f"{alias}.resource_type IN ({marks})"


def _window(
    sql: Sql,
    alias: str,
    since: int | None,
    mark: Mark | None,
    kind: int,
    *,
    ascending: bool = False,
) -> list[str]:
    """The tests placing a change of `kind` (`alias`) in [since, watermark) and past `mark`'s
    last change, in (changed_at, kind, seq) order (descending, or `ascending`)."""
    tests = [] if since is None else [f"{alias}.changed_at >= {sql.arg(since)}"]
    if mark is None:
        return tests
    tests.append(f"{alias}.changed_at < {sql.arg(mark.watermark)}")
    if mark.changed_at is None or mark.seq is None:
        return tests
    changed_at, past = sql.arg(mark.changed_at), ">" if ascending else "<"
    if kind == mark.kind:  # the same sequence: on past the last one served
        tests.append(
            f"({alias}.changed_at, {alias}.seq) {past} ({changed_at}, {sql.arg(mark.seq)})"
        )
    elif (kind > mark.kind) != ascending:  # this kind came first at the mark's instant
        tests.append(f"{alias}.changed_at {past} {changed_at}")
    else:  # this kind comes after the other at the mark's instant
        tests.append(f"{alias}.changed_at {past}= {changed_at}")
    return tests


async def vanished(
    repo: Repository,
    *,
    since: int,
    until: int,
    resource_types: Sequence[str] | None = None,
    after: tuple[int, int] | None = None,
    count: int = 1000,
) -> list[Version]:
    """What writes in [since, until) hid from the caller and it still may not see, oldest
    first, `count` at most after `after` (the changed_at and seq of the last one listed): for
    a Bulk Data export's `deleted` list
    (https://hl7.org/fhir/uv/bulkdata/export.html#bulk-data-output-file-request)."""
    sql = repo.sql()
    changed_at, seq = after or (None, None)
    mark = Mark(until, changed_at, seq, TOMBSTONE)
    text = _tombstones(sql, resource_types, since, mark, count, ascending=True)
    if text is None:
        return []
    rows = await repo.conn.fetch(text, *sql.args)
    return [_tombstone(row) for row in rows]


def _tombstone(row: Sequence[Any]) -> Version:
    """A deletion for a row of `_tombstones`."""
    logical_id, version_id, last_updated, method, _, resource_type, seq, patient, at, kind = row
    return Version(
        logical_id, version_id, last_updated, method, None, resource_type, seq, patient, at, kind
    )
