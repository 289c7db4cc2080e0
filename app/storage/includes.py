"""Resources to include beside search matches: what they reference, and what references them.

Spec: http://hl7.org/fhir/R4/search.html#include
"""

from collections.abc import Sequence

from app.access import Caller
from app.storage.db import Connection, Row

IncludedRow = tuple[int, str, str, bytes]  # pk, resource_type, logical_id, body


async def referenced(
    conn: Connection,
    caller: Caller,
    source_pks: Sequence[int],
    params: Sequence[str] | None,
    target_type: str | None,
    limit: int,
) -> list[Row]:
    """Live resources referenced from `source_pks` through `params` (any, if None)."""
    if not source_pks:
        return []
    args: list[object] = list(source_pks)
    marks = ", ".join(f"${i}" for i in range(1, len(args) + 1))
    where = [f"c.resource_pk IN ({marks})", "NOT r.deleted"]
    if params is not None:
        args.extend(params)
        first = len(args) - len(params) + 1
        where.append("c.param IN (" + ", ".join(f"${i}" for i in range(first, len(args) + 1)) + ")")
    if target_type is not None:
        args.append(target_type)
        where.append(f"c.target_type = ${len(args)}")
    args.append(limit)
    return await conn.fetch(
        "SELECT DISTINCT r.pk, r.resource_type, r.logical_id, r.body FROM idx_reference c "
        "JOIN resource r ON r.resource_type = c.target_type AND r.logical_id = c.target_id "
        f"WHERE {' AND '.join(where)} ORDER BY r.pk LIMIT ${len(args)}",
        *args,
    )


async def referencing(
    conn: Connection,
    caller: Caller,
    targets: Sequence[tuple[str, str]],
    source_type: str,
    param: str,
    limit: int,
) -> list[Row]:
    """Live `source_type` resources whose `param` references one of `targets` (type, id)."""
    by_type: dict[str, list[str]] = {}
    for target_type, target_id in targets:
        by_type.setdefault(target_type, []).append(target_id)
    rows: list[Row] = []
    for target_type, ids in by_type.items():
        args: list[object] = [param, target_type, source_type, *ids, limit]
        marks = ", ".join(f"${i}" for i in range(4, 4 + len(ids)))
        rows.extend(
            await conn.fetch(
                "SELECT DISTINCT r.pk, r.resource_type, r.logical_id, r.body FROM idx_reference c "
                "JOIN resource r ON r.pk = c.resource_pk WHERE c.param = $1 "
                f"AND c.target_type = $2 AND r.resource_type = $3 AND c.target_id IN ({marks}) "
                f"AND NOT r.deleted ORDER BY r.pk LIMIT ${len(args)}",
                *args,
            )
        )
    return rows
