"""What a bulk export reads: one type's resources as they stood at a watermark W, and the
resources deleted between `_since` and W, each in short keyset-paged chunks.

Every change stored before W is final (`feed.watermark`), so each chunk is its own query and
no long transaction is held: a resource whose row changed before W is exported as its row
holds it; one changed since is exported as its last version stored before W (none: created
after W, or deleted by then, and left out). Every row passes the job's caller's `Sql.visible`.
"""

from collections.abc import Sequence
from typing import NamedTuple

from app.criteria import Query
from app.storage.query import matching_pks_sql
from app.storage.repository import Repository
from app.storage.statements import sees_everything


class Snapshot(NamedTuple):
    """Which rows of one type an export wants: as of `watermark`, changed since `since`
    (None: all), only those in a Patient compartment (`Patient/$export`), and matching at
    least one of `filters` (`_typeFilter`, on current index values; empty: no filter)."""

    resource_type: str
    watermark: int
    since: int | None = None
    compartments_only: bool = False
    filters: Sequence[Query] = ()


class ExportRow(NamedTuple):
    """One row read: its key (the page goes on after it), compartment and bytes (None: not
    in the snapshot, skipped)."""

    key: int
    patient_id: str | None
    body: bytes | None


async def snapshot_chunk(
    repo: Repository, wanted: Snapshot, after: int, limit: int
) -> list[ExportRow]:
    """The next `limit` resource rows after pk `after`, with their bytes as of the watermark."""
    sql = repo.sql()
    w = sql.arg(wanted.watermark)
    # The version a resource changed since W had at W, read only if the caller may see that
    # version itself (an earlier one may have been restricted, or about another child).
    last_before = (
        "(SELECT v.seq FROM resource_version v WHERE v.resource_type = r.resource_type "
        f"AND v.logical_id = r.logical_id AND v.changed_at < {w} ORDER BY v.version_id DESC "
        "LIMIT 1)"
    )
    seen = sql.alias("s")
    as_of = (
        f"(SELECT {seen}.{{column}} FROM resource_version {seen} WHERE {seen}.seq = "
        f"{last_before} AND {sql.visible(seen, live=False)})"
    )
    body = f"CASE WHEN r.changed_at < {w} THEN r.body ELSE {as_of.format(column='body')} END"
    where = [
        f"r.resource_type = {sql.arg(wanted.resource_type)}",
        f"r.pk > {sql.arg(after)}",
        f"(r.changed_at >= {w} OR NOT r.deleted)",
        sql.visible("r", live=False),
    ]
    if wanted.compartments_only:
        where.append("r.patient_id IS NOT NULL")
    if wanted.since is not None:
        since = sql.arg(wanted.since)
        stamped = f"CASE WHEN r.changed_at < {w} THEN r.changed_at ELSE "
        where.append(f"r.changed_at >= {since}")
        where.append(f"{stamped}{as_of.format(column='changed_at')} END >= {since}")
    if wanted.filters:
        where.append(
            "(" + " OR ".join(f"r.pk IN ({matching_pks_sql(sql, q)})" for q in wanted.filters) + ")"
        )
    text = (
        f"SELECT r.pk, r.patient_id, {body} FROM resource r WHERE {' AND '.join(where)} "
        f"ORDER BY r.pk LIMIT {sql.arg(limit)}"
    )
    rows = await repo.conn.fetch(text, *sql.args)
    return [ExportRow(row[0], row[1], row[2]) for row in rows]


async def deleted_chunk(
    repo: Repository, wanted: Snapshot, after: int, limit: int
) -> list[tuple[int, str]]:
    """(change sequence, id) of the next `limit` resources after `after` whose last change
    before the watermark is a deletion stored since `wanted.since`, as the caller may see
    them (a version is seen while its resource is, as history has it)."""
    assert wanted.since is not None
    sql = repo.sql()
    w = sql.arg(wanted.watermark)
    now = ""
    if not sees_everything(repo.caller):
        now = (
            "JOIN resource n ON n.resource_type = v.resource_type AND n.logical_id = "
            f"v.logical_id AND {sql.visible('n', live=False)}"
        )
    where = [
        f"v.resource_type = {sql.arg(wanted.resource_type)}",
        "v.method = 'DELETE'",
        f"v.changed_at >= {sql.arg(wanted.since)}",
        f"v.changed_at < {w}",
        f"v.seq > {sql.arg(after)}",
        sql.visible("v", live=False),
        "NOT EXISTS (SELECT 1 FROM resource_version l WHERE l.resource_type = v.resource_type "
        f"AND l.logical_id = v.logical_id AND l.version_id > v.version_id AND l.changed_at < {w})",
    ]
    if wanted.compartments_only:
        where.append("v.patient_id IS NOT NULL")
    text = (
        f"SELECT v.seq, v.logical_id FROM resource_version v {now} WHERE {' AND '.join(where)} "
        f"ORDER BY v.seq LIMIT {sql.arg(limit)}"
    )
    rows = await repo.conn.fetch(text, *sql.args)
    return [(row[0], row[1]) for row in rows]
