"""Resources to include beside search matches: what they reference, and what references them,
each only if the caller may see it.

Spec: http://hl7.org/fhir/R4/search.html#include
"""

from collections.abc import Sequence
from typing import NamedTuple

from app.storage.repository import Repository


class Included(NamedTuple):
    """One resource to include: its pk, type, id and stored bytes."""

    pk: int
    resource_type: str
    logical_id: str
    body: bytes
    patient_id: str | None = None  # the Patient compartment it is in


async def referenced(
    repo: Repository,
    source_pks: Sequence[int],
    params: Sequence[str] | None,
    target_type: str | None,
    limit: int,
) -> list[Included]:
    """Live resources referenced from `source_pks` through `params` (any, if None)."""
    if not source_pks:
        return []
    sql = repo.sql()
    where = [f"c.resource_pk IN ({', '.join(sql.arg(pk) for pk in source_pks)})"]
    if params is not None:
        where.append(f"c.param IN ({', '.join(sql.arg(param) for param in params)})")
    if target_type is not None:
        where.append(f"c.target_type = {sql.arg(target_type)}")
    where.append(sql.visible("r"))
    rows = await repo.conn.fetch(
        "SELECT DISTINCT r.pk, r.resource_type, r.logical_id, r.body, r.patient_id "
        "FROM idx_reference c "
        "JOIN resource r ON r.resource_type = c.target_type AND r.logical_id = c.target_id "
        f"WHERE {' AND '.join(where)} ORDER BY r.pk LIMIT {sql.arg(limit)}",
        *sql.args,
    )
    return [Included(*row) for row in rows]


async def referencing(
    repo: Repository,
    targets: Sequence[tuple[str, str]],
    source_type: str,
    param: str,
    limit: int,
) -> list[Included]:
    """Live `source_type` resources whose `param` references one of `targets` (type, id)."""
    by_type: dict[str, list[str]] = {}
    for target_type, target_id in targets:
        by_type.setdefault(target_type, []).append(target_id)
    found: list[Included] = []
    for target_type, ids in by_type.items():
        sql = repo.sql()
        where = (
            f"c.param = {sql.arg(param)} AND c.target_type = {sql.arg(target_type)} "
            f"AND r.resource_type = {sql.arg(source_type)} "
            f"AND c.target_id IN ({', '.join(sql.arg(i) for i in ids)}) AND {sql.visible('r')}"
        )
        rows = await repo.conn.fetch(
            "SELECT DISTINCT r.pk, r.resource_type, r.logical_id, r.body, r.patient_id "
            "FROM idx_reference c "
            f"JOIN resource r ON r.pk = c.resource_pk WHERE {where} ORDER BY r.pk "
            f"LIMIT {sql.arg(limit)}",
            *sql.args,
        )
        found.extend(Included(*row) for row in rows)
    return found
