"""Auditors' reads of the audit trail: AuditEvents by what they name (`audit_link`), by their
columns and by when they were recorded, ordered by (recorded, pk) and paged on that keyset.

Spec: http://hl7.org/fhir/R4/auditevent.html#search, http://hl7.org/fhir/R4/search.html
"""

from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from app.access import Caller
from app.criteria import RangeValue
from app.storage.clauses import range_test
from app.storage.db import Connection
from app.storage.statements import Sql

COLUMNS = frozenset({"action", "outcome", "subtype"})
# Every stored version of a Patient whose JSON holds a text; the caller checks the JSON.
# Deliberately unfiltered: an auditor asks after a child by an identifier and sees no Patient,
# and a deleted or since-corrected record must still find the events about it.
PATIENT_VERSIONS_HOLDING = {
    "postgresql": "SELECT v.logical_id, v.body FROM resource_version v "
    "WHERE v.resource_type = 'Patient' AND position($1 in v.body) > 0",
    "sqlite": "SELECT v.logical_id, v.body FROM resource_version v "
    "WHERE v.resource_type = 'Patient' AND instr(v.body, $1) > 0",
}


@dataclass(frozen=True, slots=True)
class LinkTest:
    """An `audit_link` of `kind` whose value is `value` (any value if None); with `suffix`,
    whose value ends with `/value` (a bare id, of whatever type)."""

    kind: str
    value: str | None
    suffix: bool = False


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """A search of the trail: every group of tests must hold (a group holds when one of its
    tests does; an empty group never holds). `after` is the (recorded, pk) a page starts
    after; `backwards` reads the page before it instead."""

    links: tuple[tuple[LinkTest, ...], ...] = ()
    columns: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (column, values)
    dates: tuple[tuple[RangeValue, ...], ...] = ()
    count: int = 20
    descending: bool = True
    after: tuple[int, int] | None = None
    backwards: bool = False


class AuditMatch(NamedTuple):
    """One stored AuditEvent: its keys (recorded, pk), id and canonical bytes."""

    pk: int
    id: str
    body: bytes
    recorded: int


def _ends_with(sql: Sql, dialect: str, column: str, text: str) -> str:
    """`column` ends with `text` (LIKE would fold case on SQLite)."""
    if dialect == "postgresql":
        return f"right({column}, {len(text)}) = {sql.arg(text)}"
    return f"substr({column}, -{len(text)}) = {sql.arg(text)}"


def _column_test(sql: Sql, test: LinkTest) -> str:
    """A test of what the record keeps as columns: its client (`client`) and the client's
    Organization (`agent`, as `Organization/<id>` or a bare id)."""
    column = "e.client_id" if test.kind == "client" else "e.client_org"
    if test.value is None:
        return f"{column} IS NOT NULL"
    value = test.value
    if test.kind == "agent" and not test.suffix:
        kind, _, value = value.partition("/")
        if kind != "Organization" or "/" in value:
            return "1 = 0"
    return f"{column} = {sql.arg(value)}"


def _normalised(test: LinkTest) -> LinkTest:
    """Patient links are always `Patient/<id>`: a bare id is an exact value."""
    if test.kind == "patient" and test.suffix and test.value is not None:
        return LinkTest("patient", f"Patient/{test.value}")
    return test


def _link_group(sql: Sql, dialect: str, tests: tuple[LinkTest, ...]) -> str:
    """One of the tests holds. A Patient is an entity too (`entity=` also reads the
    `patient` links)."""
    if not tests:
        return "1 = 0"
    alias = sql.alias("l")
    columns = [_column_test(sql, t) for t in tests if t.kind in ("client", "agent")]
    alternatives, exact = [], dict[str, list[str]]()
    for test in (_normalised(t) for t in tests if t.kind not in ("client", "agent")):
        kinds = ("entity", "patient") if test.kind == "entity" else (test.kind,)
        kind = f"{alias}.kind IN ({', '.join(sql.arg(k) for k in kinds)})"
        if test.value is not None and not test.suffix:
            exact.setdefault(kind, []).append(test.value)
        elif test.value is None:
            alternatives.append(f"({kind})")
        else:
            ending = _ends_with(sql, dialect, f"{alias}.value", f"/{test.value}")
            alternatives.append(f"({kind} AND {ending})")
    for kind, values in exact.items():
        marks = ", ".join(sql.arg(value) for value in values)
        alternatives.append(f"({kind} AND {alias}.value IN ({marks}))")
    if alternatives:
        columns.append(
            f"e.id IN (SELECT {alias}.audit_id FROM audit_link {alias} "
            f"WHERE {' OR '.join(alternatives)})"
        )
    return "(" + " OR ".join(columns) + ")"


def _where(sql: Sql, dialect: str, query: AuditQuery) -> str:
    where = [_link_group(sql, dialect, tests) for tests in query.links]
    for column, values in query.columns:
        assert column in COLUMNS
        marks = ", ".join(sql.arg(value) for value in values)
        where.append(f"e.{column} IN ({marks})" if marks else "1 = 0")
    for ranges in query.dates:
        tests = [range_test(sql, "e.recorded", "(e.recorded + 1)", value) for value in ranges]
        where.append("(" + " OR ".join(tests) + ")")
    return " AND ".join(where) or "1 = 1"


def search_sql(query: AuditQuery, caller: Caller, dialect: str) -> tuple[str, list[Any]]:
    """The SELECT of one page of `query` (newest first unless ascending), one row over."""
    sql = Sql(caller)
    where = _where(sql, dialect, query)
    descending = query.descending != query.backwards
    if query.after is not None:
        recorded, pk = sql.arg(query.after[0]), sql.arg(query.after[1])
        beyond = "<" if descending else ">"
        where += (
            f" AND (e.recorded {beyond} {recorded} OR "
            f"(e.recorded = {recorded} AND e.pk {beyond} {pk}))"
        )
    order = "DESC" if descending else "ASC"
    return (
        f"SELECT e.pk, e.id, e.body, e.recorded FROM audit_event e WHERE {where} "
        f"ORDER BY e.recorded {order}, e.pk {order} LIMIT {sql.arg(query.count)}",
        sql.args,
    )


async def search(conn: Connection, caller: Caller, query: AuditQuery) -> list[AuditMatch]:
    """The AuditEvents of a page of `query`, in the order asked for."""
    text, args = search_sql(query, caller, conn.dialect)
    rows = await conn.fetch(text, *args)
    if query.backwards:
        rows.reverse()
    return [AuditMatch(int(r[0]), r[1], bytes(r[2]), int(r[3])) for r in rows]


async def count(conn: Connection, caller: Caller, query: AuditQuery) -> int:
    """How many AuditEvents match (a searchset's `total`)."""
    sql = Sql(caller)
    where = _where(sql, conn.dialect, query)
    row = await conn.fetchrow(f"SELECT count(*) FROM audit_event e WHERE {where}", *sql.args)
    return int(row[0]) if row else 0


async def estimate(conn: Connection, caller: Caller, query: AuditQuery) -> int:
    """The planner's estimate of the matches on PostgreSQL (`_total=estimate`); exact on SQLite."""
    if conn.dialect != "postgresql":
        return await count(conn, caller, query)
    sql = Sql(caller)
    where = _where(sql, conn.dialect, query)
    text = f"EXPLAIN (FORMAT JSON) SELECT e.pk FROM audit_event e WHERE {where}"
    row = await conn.fetchrow(text, *sql.args)
    plan = row[0] if row else "[]"
    document = plan if isinstance(plan, list) else orjson.loads(plan)
    return int(document[0]["Plan"]["Plan Rows"])


async def read(conn: Connection, audit_id: str) -> AuditMatch | None:
    """One AuditEvent by its id."""
    row = await conn.fetchrow(
        "SELECT e.pk, e.id, e.body, e.recorded FROM audit_event e WHERE e.id = $1", audit_id
    )
    return None if row is None else AuditMatch(int(row[0]), row[1], bytes(row[2]), int(row[3]))


async def patient_versions_holding(conn: Connection, text: str) -> list[tuple[str, bytes]]:
    """(id, body) of every stored Patient version, live, past or deleted, whose JSON holds
    `text` as a string: a superset, for the caller to check each body."""
    needle = orjson.dumps(text)[1:-1]  # as the JSON holds it
    rows = await conn.fetch(PATIENT_VERSIONS_HOLDING[conn.dialect], needle)
    return [(row[0], bytes(row[1])) for row in rows]
