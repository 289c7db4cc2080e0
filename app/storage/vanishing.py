"""Tombstones: a write that hides a resource from callers who could see it just before records,
in its own transaction, who lost sight of it, so that their change feed shows them a deletion
(`storage.changes`) and their copies do not keep what they may no longer see.

Who loses sight follows from what decides sight of the resource's row before and after the write
(`access.visibility.losses`): its restricted label, its author, its child, and the Organizations
responsible for that child. A write that ends a Flag or changes a Patient's responsible authority
narrows an authority's sight of every resource about the child: each gets a tombstone for it
(but those it authored, which it still sees), if the Organization has a local-authority client.

Cost: creates record nothing (nobody saw the resource before). An update or delete of a Flag or
Patient probes its own responsible-Organization index rows once; anything else costs nothing
more unless its label, author or child changes. Only then are the children concerned locked
(PostgreSQL: an advisory lock per child to commit, so two writes each ending one of an
authority's two Flags about a child see each other's outcome and one of them records the loss),
the other responsible Organizations read, and the tombstones written.
"""

from dataclasses import dataclass, replace

from app.access.visibility import (
    CONFERRING_TYPES,
    LOCAL_AUTHORITY,
    RESPONSIBLE,
    Audience,
    Sight,
    losses,
)
from app.registry import RESOURCE_TYPES
from app.storage.db import Connection
from app.storage.statements import every_live

_LOCK_CLASS = 0x5AFE  # advisory locks (class, hash of a child's id): who is responsible for it
_LOCK = "SELECT pg_advisory_xact_lock($1::int, hashtext($2))"
# The types with a Patient compartment: those a change of a child's authorities can hide.
ABOUT_A_CHILD = tuple(
    sorted(name for name, kind in RESOURCE_TYPES.items() if kind.compartment_path is not None)
)
_COLUMNS = (
    "resource_type, logical_id, version_id, last_updated, patient_id, audience_role, "
    "audience_org, except_org"
)
_ONE = f"INSERT INTO tombstone ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
_ABOUT = ", ".join(f"'{name}'" for name in ABOUT_A_CHILD)
# Every resource about a child but the one written, for an authority that no longer sees it.
# Only for an organisation with a local-authority client: a GP practice ending its Flag about a
# child makes it no longer "responsible", but none of its clients reads as an authority (a
# client registered later never held a copy to correct).
_CASCADE = (
    "INSERT INTO tombstone (resource_type, logical_id, version_id, last_updated, patient_id, "
    "audience_role, audience_org, except_org) SELECT r.resource_type, r.logical_id, "
    "r.version_id, CAST($1 AS BIGINT), r.patient_id, CAST($5 AS VARCHAR(32)), "
    "CAST($2 AS VARCHAR(64)), NULL FROM resource r WHERE r.patient_id = $3 AND r.pk <> $4 "
    "AND (r.author_org IS NULL OR r.author_org <> $2) AND EXISTS (SELECT 1 FROM oauth_client c "
    f"WHERE c.organisation = $2 AND c.role = $5) AND r.resource_type IN ({_ABOUT})"
)


# A resource's reference rows, found by the resource alone (`watch`).
OWN_REFERENCES = "SELECT param, target_type, target_id FROM idx_reference WHERE resource_pk = $1"


@dataclass(frozen=True, slots=True)
class Watch:
    """A write about to change what decides who sees resource `pk`: its sight before and after
    (`responsible`: the Organizations its own rows make responsible, before the others')."""

    pk: int
    resource_type: str
    logical_id: str
    before: Sight
    after: Sight


async def own_responsible(conn: Connection, resource_type: str, pk: int) -> frozenset[str]:
    """The Organizations the stored rows of resource `pk` make responsible for its child
    (none for a type that confers no responsibility)."""
    if resource_type not in CONFERRING_TYPES:
        return frozenset()
    # Every reference row of the resource (a handful), sorted out here: with `param` in the
    # query, SQLite probes the (param, target) index instead, reading every
    # responsible-Organization row there is, one update after another.
    rows = await conn.fetch(OWN_REFERENCES, pk)
    return frozenset(row[2] for row in rows if row[0] == RESPONSIBLE and row[1] == "Organization")


def watch(
    resource_type: str, logical_id: str, pk: int, before: Sight, after: Sight
) -> Watch | None:
    """Before a write of resource `pk`: what it changes of who sees it (`before` with its
    own responsible Organizations, `own_responsible`), or None when nothing that decides
    sight changes."""
    if before == after:
        return None
    return Watch(pk, resource_type, logical_id, before, after)


async def record(conn: Connection, seen: Watch, version_id: int, micros: int) -> None:
    """After the write (version `version_id`, stamped `micros`), in its transaction: a tombstone
    for every audience that saw the resource before and does not now, and for every resource
    about its child that an authority no longer responsible for the child saw."""
    before, after = seen.before, seen.after
    children = sorted({p for p in (before.patient_id, after.patient_id) if p is not None})
    others: dict[str, frozenset[str]] = {}
    if _authorities_concerned(seen) and children:
        await lock_children(conn, children)
        others = await _responsible_besides(conn, seen.pk, children)
    whole_before = replace(before, responsible=before.responsible | _of(others, before))
    whole_after = replace(after, responsible=after.responsible | _of(others, after))
    lost = losses(seen.resource_type, whole_before, whole_after)
    if lost:
        await conn.executemany(_ONE, [_row(seen, version_id, micros, who) for who in lost])
    if before.responsible == after.responsible:
        return
    for child in children:
        had = others.get(child, frozenset()) | _own(before, child)
        has = others.get(child, frozenset()) | _own(after, child)
        for organisation in sorted(had - has):
            await conn.execute(_CASCADE, micros, organisation, child, seen.pk, LOCAL_AUTHORITY)


def _authorities_concerned(seen: Watch) -> bool:
    """Whether the write may narrow a local authority's sight (one sees what it authored and
    everything about the children it is responsible for; every Organization, always)."""
    if seen.resource_type == "Organization":
        return False
    before, after = seen.before, seen.after
    decisive = (before.patient_id, before.author_org, before.responsible)
    return decisive != (after.patient_id, after.author_org, after.responsible)


def _of(others: dict[str, frozenset[str]], sight: Sight) -> frozenset[str]:
    return others.get(sight.patient_id or "", frozenset())


def _own(sight: Sight, child: str) -> frozenset[str]:
    return sight.responsible if sight.patient_id == child else frozenset()


def _row(seen: Watch, version_id: int, micros: int, who: Audience) -> tuple[object, ...]:
    return (
        seen.resource_type,
        seen.logical_id,
        version_id,
        micros,
        seen.before.patient_id,
        who.role,
        who.organisation,
        who.but,
    )


async def lock_children(conn: Connection, children: list[str]) -> None:
    """Hold, to commit, the lock on who is responsible for each child (PostgreSQL; SQLite has
    one writer), in a fixed order: writes that change it for one child run one after another,
    each seeing what the one before committed."""
    if conn.dialect != "postgresql":
        return
    for child in children:
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1::int, hashtext($2))", _LOCK_CLASS, child
        )


async def _responsible_besides(
    conn: Connection, pk: int, children: list[str]
) -> dict[str, frozenset[str]]:
    """The Organizations responsible for each child through resources other than `pk`."""
    marks = ", ".join(f"${n + 2}" for n in range(len(children)))
    types = ", ".join(f"'{name}'" for name in CONFERRING_TYPES)
    rows = await conn.fetch(
        "SELECT g.patient_id, x.target_id FROM resource g JOIN idx_reference x ON "
        f"x.resource_pk = g.pk WHERE g.resource_type IN ({types}) AND g.patient_id IN ({marks}) "
        f"AND g.pk <> $1 AND x.param = '{RESPONSIBLE}' AND x.target_type = 'Organization' "
        f"AND {every_live('g')}",
        pk,
        *children,
    )
    found: dict[str, set[str]] = {}
    for child, organisation in rows:
        found.setdefault(child, set()).add(organisation)
    return {child: frozenset(organisations) for child, organisations in found.items()}
