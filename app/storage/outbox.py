"""The outbox: events about a child, recorded in the transaction of the write (or read) that
caused them, one `notification` row per Organization to tell, so none is lost and none is
sent for a change that rolled back. The notifier (`app.notify`) numbers them for the
Subscriptions they reach and delivers them.

Who is told. A child's responsible Organizations are the `RESPONSIBLE` index rows of its
Patient (the responsible-local-authority extension) and of its live Flags (each active Flag's
author); those with a local-authority client are its responsible local authorities. They are
kept, one row each, in `child_authority` by the writes that change them (`_keep`), so a write
reads them in one index range however many records the child has.

- `flag-recorded-elsewhere`: a safeguarding Flag created, ended, marked entered-in-error or
  made active again tells every responsible local authority (before or after the write) but
  the Flag's author.
- `responsibility-changed`: when a write changes the set of responsible local authorities,
  every one in the old set and the new is told. On PostgreSQL such a write holds the child's
  responsibility lock (`vanishing`) and reads the set again, so of two writes that each add an
  authority, the second sees the first.
- `child-seen-elsewhere`: `plans_of` and `record_sightings` below.

Cost: a write that neither changes a safeguarding Flag's status nor its own responsible rows
runs nothing here. On PostgreSQL a health or system client's Flag that releases nothing does
all of it in CTEs of its own write statement (`rider`); other writes read the child's
authorities in one statement, keep `child_authority`, and write the rows in one more.
"""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from app.access import Caller
from app.access.visibility import CONFERRING_TYPES, LOCAL_AUTHORITY, RESPONSIBLE
from app.storage import vanishing
from app.storage.db import Connection
from app.storage.statements import every_live
from app.storage.writes import NewVersion, Rider

FLAG_RECORDED, CHILD_SEEN, RESPONSIBILITY = (
    "flag-recorded-elsewhere",
    "child-seen-elsewhere",
    "responsibility-changed",
)
TOPICS = (FLAG_RECORDED, CHILD_SEEN, RESPONSIBILITY)
_INSERT = (
    "INSERT INTO notification (topic, recipient_org, occurred_at, detail) VALUES ($1, $2, $3, $4)"
)
_IS_AUTHORITY = (
    "EXISTS (SELECT 1 FROM oauth_client c WHERE c.organisation = o.org AND c.role = "
    f"'{LOCAL_AUTHORITY}')"
)
# The child's responsible local authorities through resources other than the one written
# ($1 the child, $2 the resource's pk), each as (org, 0); `{own}`: the written one's own, as
# (org, 1), and whether each is a local authority. A Flag makes its author responsible while
# active: the distinct authors of the child's Flags are found by skipping through the
# (type, child, author) index (one probe per author, however many Flags the child has), and
# only those that are local authorities are checked for a live responsible row.
# The child's responsible Organizations as `child_authority` holds them (kept by the writes
# that change them, below), each with whether it is a local authority; `{own}`: the written
# resource's own, appended as (org, 1) rows.
_HELD = (
    f"SELECT o.org, o.own, {_IS_AUTHORITY} AS is_la FROM (SELECT ca.organisation AS org, 0 AS "
    "own FROM child_authority ca WHERE ca.patient_id = {child}{own}) o"
)
# An Organization stops being responsible for the child once no live resource about it makes
# it so (after the write: its own rows are already replaced): a Flag it authored, by the
# (type, child, author) index, or the child's Patient.
_RELEASE = (
    "DELETE FROM child_authority WHERE patient_id = $1 AND organisation = $2 AND NOT EXISTS "
    "(SELECT 1 FROM resource g JOIN idx_reference x ON x.resource_pk = g.pk WHERE "
    f"g.resource_type = 'Flag' AND g.patient_id = $1 AND g.author_org = $2 AND {every_live('g')} "
    f"AND x.param || '' = '{RESPONSIBLE}' AND x.target_id = $2) AND NOT EXISTS (SELECT 1 FROM "
    "resource p JOIN idx_reference y ON y.resource_pk = p.pk WHERE p.resource_type = 'Patient' "
    f"AND p.logical_id = $1 AND {every_live('p')} AND y.param || '' = '{RESPONSIBLE}' AND "
    "y.target_id = $2) RETURNING organisation"
)
_HOLD = (
    "INSERT INTO child_authority (patient_id, organisation) VALUES ($1, $2) ON CONFLICT DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class Change:
    """A write of a Flag or Patient about child `patient_id`: what it was, and the
    Organizations its own rows made responsible before and after."""

    resource_type: str
    logical_id: str
    version_id: int
    patient_id: str = ""
    occurred_at: int = 0
    own_before: frozenset[str] = frozenset()
    own_after: frozenset[str] = frozenset()
    flag_action: str | None = None  # created, ended, entered-in-error, reactivated
    author_org: str | None = None


def change_of(
    new: NewVersion,
    own_before: frozenset[str],
    own_after: frozenset[str],
    flag_action: str | None,
) -> Change | None:
    """What the outbox is to hear of a new version: None when it neither acts on a
    safeguarding Flag nor changes whom its child's records make responsible."""
    if new.resource_type not in CONFERRING_TYPES or new.patient_id is None:
        return None
    if flag_action is None and own_after == own_before:
        return None
    return Change(
        new.resource_type,
        new.logical_id,
        new.version_id,
        new.patient_id,
        new.last_updated,
        own_before,
        own_after,
        flag_action,
        new.author_org,
    )


async def after_write(conn: Connection, caller: Caller, change: Change) -> None:
    """Record the notifications `change` gives rise to, and keep `child_authority`, in its
    transaction."""
    moved = change.own_before != change.own_after
    if change.flag_action is None and not moved:
        return
    held, authorities = await _held(conn, change)
    if conn.dialect == "postgresql" and _may_change(change, held, authorities):
        await vanishing.lock_children(conn, [change.patient_id])
        held, authorities = await _held(conn, change)  # read again under the lock
    released = await _keep(conn, change, held)
    before = frozenset(held & authorities)
    after = (before | (change.own_after & authorities)) - released
    await _tell(conn, caller, change, before, after)


async def _tell(
    conn: Connection,
    caller: Caller,
    change: Change,
    before: frozenset[str],
    after: frozenset[str],
) -> None:
    """The notification rows of `change`, given the authorities before and after it."""
    rows = []
    told = sorted((before | after) - {change.author_org})
    if change.flag_action is not None and told:
        detail = _detail(caller, change, action=change.flag_action)
        rows += [(FLAG_RECORDED, org, change.occurred_at, detail) for org in told]
    if before != after:
        detail = _detail(caller, change, before=sorted(before), after=sorted(after))
        told = sorted(before | after)
        rows += [(RESPONSIBILITY, org, change.occurred_at, detail) for org in told]
    if rows:
        await conn.executemany(_INSERT, rows)


async def _held(conn: Connection, change: Change) -> tuple[set[str], set[str]]:
    """The Organizations `child_authority` holds for the child (before this write's part is
    kept), and which of those and of the write's own are local authorities."""
    own = sorted(change.own_before | change.own_after)
    rows = await conn.fetch(_held_sql(len(own)), change.patient_id, *own)
    return {row[0] for row in rows if not row[1]}, {row[0] for row in rows if row[2]}


def _may_change(change: Change, held: set[str], authorities: set[str]) -> bool:
    """Whether the write may change the child's authorities (an authority of its own added
    that is not held yet, or one it held that may go)."""
    added = (change.own_after - change.own_before) & authorities
    return bool(added - held or (change.own_before - change.own_after) & authorities)


async def _keep(conn: Connection, change: Change, held: set[str]) -> frozenset[str]:
    """Keep `child_authority` in step with the write (`held`: what it holds for the child);
    the Organizations it released."""
    for organisation in sorted(change.own_after - change.own_before - held):
        await conn.execute(_HOLD, change.patient_id, organisation)
    released = set()
    for organisation in sorted(change.own_before - change.own_after):
        if await conn.fetchrow(_RELEASE, change.patient_id, organisation) is not None:
            released.add(organisation)
    return frozenset(released)


# PostgreSQL: the notifications of a write recorded by the write's own statement (its written
# rows are CTE `r`), so a create stays one round trip. A write that `rides` releases nothing,
# so the authorities after are those before (`nh`, of what `child_authority` holds: `h`) and
# the write's own not held yet (`nn`): the responsibility changed if there are any. Only an
# Organization not held yet is offered to `child_authority` (a conflict check costs more than
# the scan of `h`). {n[0]} child,
# {n[1]} own Organizations added, {n[2]} when, {n[3]} the flag-recorded detail (null: no
# flag action), {n[4]} the author, {n[5]} the responsibility-changed detail (before and after
# are added).
_AUTHORITY_TEST = _IS_AUTHORITY.replace("o.org", "{org}")
_RIDER = (
    ",\nh AS (SELECT ca.organisation AS org, "
    f"{_AUTHORITY_TEST.format(org='ca.organisation')} AS is_la FROM child_authority ca WHERE "
    "ca.patient_id = {n[0]}::varchar),\nnh AS (SELECT org FROM h WHERE is_la),\nnn AS "
    f"(SELECT o AS org FROM unnest({{n[1]}}::varchar[]) o WHERE {_AUTHORITY_TEST.format(org='o')}"
    " AND o NOT IN (SELECT org FROM h)),\nnu AS (SELECT org FROM nh UNION ALL SELECT org FROM "
    "nn),\nni AS (INSERT INTO child_authority (patient_id, organisation) SELECT {n[0]}::varchar,"
    " o FROM unnest({n[1]}::varchar[]) o CROSS JOIN r WHERE o NOT IN (SELECT org FROM h) ON "
    "CONFLICT DO NOTHING),\nnt AS (INSERT "
    f"INTO notification (topic, recipient_org, occurred_at, detail) SELECT '{FLAG_RECORDED}', "
    "nu.org, {n[2]}::int8, {n[3]}::text FROM nu CROSS JOIN r WHERE {n[3]}::text IS NOT NULL "
    f"AND nu.org IS DISTINCT FROM {{n[4]}}::varchar UNION ALL SELECT '{RESPONSIBILITY}', "
    "nu.org, {n[2]}::int8, ({n[5]}::jsonb || jsonb_build_object('before', (SELECT "
    "coalesce(jsonb_agg(org ORDER BY org), '[]'::jsonb) FROM nh), 'after', (SELECT "
    "coalesce(jsonb_agg(org ORDER BY org), '[]'::jsonb) FROM nu)))::text FROM nu CROSS JOIN r "
    "WHERE EXISTS (SELECT 1 FROM nn))"
)


def rides(caller: Caller, change: Change | None) -> bool:
    """Whether `change`'s notifications are recorded by the write's own statement: a Flag
    written by a client that is no local authority (health, system), releasing no
    Organization. A local authority's Flag can make it responsible for the child, a Patient's
    write can change who is, and a release needs the check that nothing else holds it: those
    take the child's lock and statements of their own, so of two such writes the second sees
    the first (a system client writing for an authority is not locked against them: its
    notice may miss a concurrent change by another authority)."""
    return (
        change is not None
        and change.resource_type == "Flag"
        and caller.role != LOCAL_AUTHORITY
        and not change.own_before - change.own_after
    )


def notices(caller: Caller, change: Change | None) -> Rider | None:
    """The CTEs recording `change`'s notifications in a PostgreSQL write's own statement, when
    it `rides`; None when there are none, or they take statements of their own."""
    if change is None or not rides(caller, change):
        return None
    return lambda first: rider(caller, change, first)


def rider(caller: Caller, change: Change, first: int) -> tuple[str, list[object]]:
    """The CTEs recording `change`'s notifications in the write's statement, and their
    parameters from number `first` on (PostgreSQL)."""
    flag = _detail(caller, change, action=change.flag_action) if change.flag_action else None
    args: list[object] = [
        change.patient_id,
        sorted(change.own_after - change.own_before),
        change.occurred_at,
        flag,
        change.author_org,
        _detail(caller, change),
    ]
    return _rider_sql(first), args


@functools.cache
def _rider_sql(first: int) -> str:
    """`_RIDER` with its parameters numbered from `first` on."""
    return _RIDER.format(n=[f"${first + k}" for k in range(6)])


@functools.cache
def _held_sql(own: int) -> str:
    """`_HELD` for the child ($1) and `own` Organizations of the write's own (from $2 on)."""
    if not own:
        return _HELD.format(child="$1", own="")
    values = ", ".join(f"(CAST(${2 + n} AS VARCHAR(64)))" for n in range(own))
    return _HELD.format(child="$1", own=f" UNION ALL SELECT column1, 1 FROM (VALUES {values}) v")


def _detail(caller: Caller, change: Change, **more: object) -> str:
    """The JSON of a notification: the child, the resource written, who wrote it."""
    return orjson.dumps(
        {
            "child": change.patient_id,
            "focus": f"{change.resource_type}/{change.logical_id}/_history/{change.version_id}",
            "organization": caller.organisation,
            "client": caller.subject,
            **more,
        }
    ).decode()


@dataclass(frozen=True, slots=True)
class Sighting:
    """An active plan Flag about a child, authored by a local authority: who to tell when a
    health client looks at the child."""

    child: str
    flag_id: str
    authority: str


# Active Flags about the children (`{children}`) coded as one of the plans (`{codes}`: pairs
# of system and code), authored by an Organization with a local-authority client.
_PLANS = (
    "SELECT f.patient_id, f.logical_id, f.author_org FROM resource f WHERE f.resource_type = "
    f"'Flag' AND f.patient_id IN ({{children}}) AND {every_live('f')} AND EXISTS (SELECT 1 "
    "FROM idx_token s "
    "WHERE s.resource_pk = f.pk AND s.param || '' = 'status' AND s.code = 'active') AND EXISTS "
    "(SELECT 1 FROM idx_token k WHERE k.resource_pk = f.pk AND k.param = 'code' AND ({codes})) "
    "AND EXISTS (SELECT 1 FROM oauth_client c WHERE c.organisation = f.author_org AND "
    f"c.role = '{LOCAL_AUTHORITY}')"
)


async def plans_of(
    conn: Connection, children: Sequence[str], codes: Sequence[tuple[str, str]]
) -> list[Sighting]:
    """The active plan Flags, authored by local authorities, about any of `children`."""
    if not children or not codes:
        return []
    marks = ", ".join(f"${n + 1}" for n in range(len(children)))
    start = len(children) + 1
    tests = " OR ".join(
        f"(k.system = ${start + 2 * n} AND k.code = ${start + 2 * n + 1})"
        for n in range(len(codes))
    )
    sql = _PLANS.format(children=marks, codes=tests)
    rows = await conn.fetch(sql, *children, *(value for pair in codes for value in pair))
    return [Sighting(row[0], row[1], row[2]) for row in rows]


async def record_sightings(
    conn: Connection, caller: Caller, sightings: Iterable[Sighting], occurred_at: int
) -> int:
    """One `child-seen-elsewhere` notification per child and authority: the caller's
    organisation looked at the child; how many were recorded."""
    plans: dict[tuple[str, str], list[str]] = {}
    for seen in sightings:
        plans.setdefault((seen.child, seen.authority), []).append(f"Flag/{seen.flag_id}")
    rows = [
        (CHILD_SEEN, authority, occurred_at, _seen_detail(caller, child, sorted(flags)))
        for (child, authority), flags in sorted(plans.items())
    ]
    if rows:
        await conn.executemany(_INSERT, rows)
    return len(rows)


def _seen_detail(caller: Caller, child: str, flags: list[str]) -> str:
    return orjson.dumps(
        {
            "child": child,
            "focus": f"Patient/{child}",
            "organization": caller.organisation,
            "client": caller.subject,
            "plans": flags,
        }
    ).decode()
