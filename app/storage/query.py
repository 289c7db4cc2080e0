"""The SQL a search (`criteria.Query`) becomes: index tables, keyset paging.

A Query selects live resources of one type by ANDed criteria, ordered by sort keys with the
primary key last, so that a page boundary is a keyset (the last row's keys), never an offset.
"""

from dataclasses import replace
from typing import Any, NamedTuple

import orjson

from app.access import Caller
from app.criteria import Criterion, Query
from app.storage import budgeted
from app.storage.budgeted import Fitted
from app.storage.clauses import criterion_sql, sort_expression
from app.storage.repository import Repository, seeing_everything
from app.storage.statements import Sql, sees_everything


class Match(NamedTuple):
    """One resource a search found: its pk, id and stored bytes, and its page keys (the sort
    values, then the pk) that a cursor resumes after."""

    pk: int
    logical_id: str
    body: bytes
    keys: tuple[Any, ...]
    patient_id: str | None = None  # the Patient compartment it is in


def _where(sql: Sql, query: Query) -> list[str]:
    where = [f"r.resource_type = {sql.arg(query.resource_type)}", sql.visible("r")]
    if query.compartment is not None:
        where.append(f"r.patient_id = {sql.arg(query.compartment)}")
    ordered = _driving_first(query)
    bound = _pk_bound(query)
    where.extend(
        criterion_sql(sql, c, "r", driving=i == 0, bound=bound) for i, c in enumerate(ordered)
    )
    if query.exclude_pk is not None:
        where.append(f"r.pk <> {sql.arg(query.exclude_pk)}")
    return where


def _pk_bound(query: Query) -> tuple[str, int] | None:
    """In pk order, the cursor bounds the driving index scan too (its entries are pk-ordered)."""
    if query.sort or query.after is None or not isinstance(query.after[-1], int):
        return None
    return ("<" if query.backwards else ">", query.after[-1])


def _driving_first(query: Query) -> tuple[Criterion, ...]:
    """Criteria with the likely most selective first (SQLite drives the search by it)."""
    return tuple(sorted(query.criteria, key=lambda c: c.selectivity_rank))


def _keyset(sql: Sql, columns: list[tuple[str, bool]], after: tuple[Any, ...]) -> str:
    """Rows strictly after `after` in the order of `columns` ((expression, descending))."""
    clause = ""
    for (expression, descending), value in reversed(list(zip(columns, after, strict=True))):
        mark = sql.arg(value)
        beyond = f"{expression} {'<' if descending else '>'} {mark}"
        clause = beyond if not clause else f"({beyond} OR ({expression} = {mark} AND {clause}))"
    return clause


def search_sql(query: Query, caller: Caller, max_bytes: int | None = None) -> tuple[str, list[Any]]:
    """The SELECT for a page of `query`: pk, logical_id, body, patient_id, then the sort
    values; with `max_bytes`, bodies only while they fit in it, and a last column saying
    which rows fit (`budgeted`)."""
    sql = Sql(caller)
    flip = query.backwards
    columns = [
        (sort_expression(sql, key.param, key.kind, key.descending), key.descending != flip)
        for key in query.sort
    ]
    columns.append(("r.pk", flip))
    select = ", ".join(f"{expression} AS s{i}" for i, (expression, _) in enumerate(columns))
    body = "r.body" if max_bytes is None else "length(r.body) AS body_size"
    inner = (
        f"SELECT r.pk, r.logical_id, {body}, r.patient_id, {select} FROM resource r WHERE "
        + " AND ".join(_where(sql, query))
    )
    outer = f"SELECT * FROM ({inner}) q"
    aliases = [(f"q.s{i}", descending) for i, (_, descending) in enumerate(columns)]
    if query.after is not None:
        outer += " WHERE " + _keyset(sql, aliases, query.after)
    order = ", ".join(f"{a} {'DESC' if d else 'ASC'}" for a, d in aliases)
    page = f"{outer} ORDER BY {order} LIMIT {sql.arg(query.count)}"
    if max_bytes is None:
        return page, sql.args
    keys = [(f"s{i}", descending) for i, (_, descending) in enumerate(columns)]
    names = ["pk", "logical_id", "body", "patient_id", *(name for name, _ in keys)]
    fitting = budgeted.fitting_sql(
        sql,
        page,
        columns=names,
        order=keys,
        table="resource",
        key="pk",
        max_bytes=max_bytes,
        live=True,
    )
    return fitting, sql.args


def matching_pks_sql(sql: Sql, query: Query) -> str:
    """A subquery of the pks of the live resources matching `query`'s criteria that `sql`'s
    caller may see (its own alias `r` shadows any outer one): a bulk export's type filter."""
    return "SELECT r.pk FROM resource r WHERE " + " AND ".join(_where(sql, query))


async def search(repo: Repository, query: Query) -> list[Match]:
    """Matching live resources the caller may see, in page order."""
    text, args = search_sql(query, repo.caller)
    rows = await repo.conn.fetch(text, *args)
    if query.backwards:
        rows.reverse()
    return [Match(row[0], row[1], row[2], tuple(row[4:]), row[3]) for row in rows]


async def search_within(repo: Repository, query: Query, max_bytes: int) -> Fitted[Match]:
    """A page of `search`, its bodies within `max_bytes` together (the first always read)."""
    text, args = search_sql(query, repo.caller, max_bytes)
    rows = await repo.conn.fetch(text, *args)
    fitting = [Match(row[0], row[1], row[2], tuple(row[4:-1]), row[3]) for row in rows if row[-1]]
    if query.backwards:
        fitting.reverse()
    return Fitted(fitting, len(rows))


async def hidden_match(repo: Repository, query: Query) -> bool:
    """Whether a live resource the caller may not see matches: a conditional write must not
    write a duplicate of it (an integrity check, answered without saying which)."""
    if sees_everything(repo.caller):
        return False
    return bool(await search(seeing_everything(repo), replace(query, count=1)))


async def count(repo: Repository, query: Query) -> int:
    """How many live resources the caller may see match (the Bundle's `total`)."""
    sql = repo.sql()
    text = "SELECT count(*) FROM resource r WHERE " + " AND ".join(_where(sql, query))
    row = await repo.conn.fetchrow(text, *sql.args)
    return int(row[0]) if row else 0


async def estimate(repo: Repository, query: Query) -> int:
    """The planner's estimate of the matches on PostgreSQL (`_total=estimate`); exact on SQLite."""
    if repo.conn.dialect != "postgresql":
        return await count(repo, query)
    sql = repo.sql()
    text = "SELECT r.pk FROM resource r WHERE " + " AND ".join(_where(sql, query))
    row = await repo.conn.fetchrow("EXPLAIN (FORMAT JSON) " + text, *sql.args)
    plan = row[0] if row else "[]"
    document = plan if isinstance(plan, list) else orjson.loads(plan)
    return int(document[0]["Plan"]["Plan Rows"])
