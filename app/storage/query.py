"""The storage-level search model and the SQL it becomes (search over index tables, keyset)."""

from dataclasses import dataclass, field
from typing import Any

from app.access import Caller
from app.storage.db import Connection, Row
from app.storage.indexer import indexed_text


@dataclass(frozen=True, slots=True)
class TokenValue:
    """One token to match: `code`, `system|code`, `|code` (no system) or `system|`."""

    system: str | None
    code: str | None
    system_given: bool


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    """One reference to match: a target id, with the target type if known."""

    target_type: str | None
    target_id: str


@dataclass(frozen=True, slots=True)
class Criterion:
    """One search parameter; its values are ORed, criteria are ANDed."""

    param: str
    kind: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed search of one resource type."""

    resource_type: str
    criteria: tuple[Criterion, ...]
    count: int
    after_pk: int | None = None
    exclude_pk: int | None = None


@dataclass(slots=True)
class _Sql:
    args: list[Any] = field(default_factory=list)

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def _token_clause(sql: _Sql, values: tuple[TokenValue, ...]) -> str:
    ors = []
    for value in values:
        parts = []
        if value.code is not None:
            parts.append(f"t.code = {sql.arg(indexed_text(value.code))}")
        if value.system_given:
            parts.append(
                f"t.system = {sql.arg(indexed_text(value.system))}"
                if value.system
                else "t.system IS NULL"
            )
        ors.append("(" + " AND ".join(parts or ["1=1"]) + ")")
    return " OR ".join(ors)


def _reference_clause(sql: _Sql, values: tuple[ReferenceValue, ...]) -> str:
    ors = []
    for value in values:
        clause = f"t.target_id = {sql.arg(indexed_text(value.target_id))}"
        if value.target_type is not None:
            clause += f" AND t.target_type = {sql.arg(value.target_type)}"
        ors.append(f"({clause})")
    return " OR ".join(ors)


def _criterion_sql(sql: _Sql, criterion: Criterion) -> str:
    if criterion.kind == "id":
        marks = ", ".join(sql.arg(v) for v in criterion.values)
        return f"r.logical_id IN ({marks})"
    table, clause = (
        ("idx_token", _token_clause(sql, criterion.values))
        if criterion.kind == "token"
        else ("idx_reference", _reference_clause(sql, criterion.values))
    )
    param = sql.arg(criterion.param)
    return (
        f"EXISTS (SELECT 1 FROM {table} t WHERE t.resource_pk = r.pk "
        f"AND t.param = {param} AND ({clause}))"
    )


async def search(conn: Connection, caller: Caller, query: Query) -> list[Row]:
    """Matching live resources as (pk, logical_id, body), in pk order after the cursor."""
    sql = _Sql()
    where = [f"r.resource_type = {sql.arg(query.resource_type)}", "NOT r.deleted"]
    where.extend(_criterion_sql(sql, c) for c in query.criteria)
    if query.after_pk is not None:
        where.append(f"r.pk > {sql.arg(query.after_pk)}")
    if query.exclude_pk is not None:
        where.append(f"r.pk <> {sql.arg(query.exclude_pk)}")
    limit = sql.arg(query.count)
    text = (
        "SELECT r.pk, r.logical_id, r.body FROM resource r WHERE "
        + " AND ".join(where)
        + f" ORDER BY r.pk LIMIT {limit}"
    )
    return await conn.fetch(text, *sql.args)
