"""Pages read within a byte budget: a page's rows come with their bodies only while the bodies
so far fit in the budget, so a page of 500 resources of 5 MB each is never read whole.

One statement reads the page's keys and each body's length (cheap: neither database reads a
large value to know its length), sums the lengths in page order (a window function), and joins
back to the table for the bodies of the rows that fit; the first row's body is always read.
The rows past the budget come back without a body, so the caller knows the page was cut short
and where the next one starts. One statement, so the page is one consistent snapshot.
"""

from dataclasses import dataclass
from typing import Generic, TypeVar

from app.storage.statements import Sql

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Fitted(Generic[T]):
    """The rows of a page whose bodies fit in the budget, in page order, and how many rows were
    read in all (those past the budget were read without their bodies)."""

    rows: list[T]
    read: int


def _order(alias: str, order: list[tuple[str, bool]]) -> str:
    return ", ".join(
        f"{alias}.{name} {'DESC' if descending else 'ASC'}" for name, descending in order
    )


def fitting_sql(
    sql: Sql,
    limited: str,
    *,
    columns: list[str],
    order: list[tuple[str, bool]],
    table: str,
    key: str,
    max_bytes: int,
    live: bool,
    stored_if: str = "",
) -> str:
    """Wrap `limited` (a page of `table`: `columns` but `body`, `body_size` (its length) in its
    place, in `order`) so that `body` is read only for the rows within `max_bytes`; a last
    column says which rows fit (1) and which did not (0). `stored_if`: a test of the page's
    row `p` saying it is a row of `table` (a page may hold others, which have no body)."""
    budget = sql.arg(max_bytes)
    spent = (
        f"COALESCE(SUM(q.body_size) OVER (ORDER BY {_order('q', order)} "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)"
    )
    fits = f"(p.spent = 0 OR p.spent + COALESCE(p.body_size, 0) <= {budget})"
    body = sql.alias("b")
    selected = ", ".join(f"{body}.body" if name == "body" else f"p.{name}" for name in columns)
    return (
        f"SELECT {selected}, CASE WHEN {fits} THEN 1 ELSE 0 END AS fits "
        f"FROM (SELECT q.*, {spent} AS spent FROM ({limited}) q) p "
        f"LEFT JOIN {table} {body} ON {body}.{key} = p.{key} AND {fits} AND "
        f"{stored_if + ' AND ' if stored_if else ''}"
        f"{sql.visible(body, live=live)} ORDER BY {_order('p', order)}"
    )
