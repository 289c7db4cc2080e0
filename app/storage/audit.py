"""The audit trail's tables: AuditEvents stored with a write or in batches, never changed
through the API (`app.audit`).

On PostgreSQL every way in is one statement: a batch unnests arrays (so it commits on its
own, one round trip), and a single write's record rides in the write's own statement
(`rider_sql`), stored only if the write was.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from app.storage.db import Connection


class StoredAudit(Protocol):
    """What storing an AuditEvent needs (`app.audit.events.AuditRow`)."""

    @property
    def id(self) -> str: ...
    @property
    def recorded(self) -> int: ...
    @property
    def client_id(self) -> str | None: ...
    @property
    def client_org(self) -> str | None: ...
    @property
    def subtype(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def links(self) -> tuple[tuple[str, str], ...]: ...


AUDIT_TABLES = ("audit_event", "audit_link")
INSERT_EVENT = (
    "INSERT INTO audit_event (id, recorded, client_id, client_org, subtype, action, outcome, "
    "body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
INSERT_LINK = "INSERT INTO audit_link (audit_id, kind, value) VALUES ($1, $2, $3)"


PG_INSERT = (
    "WITH e AS (INSERT INTO audit_event (id, recorded, client_id, client_org, subtype, action, "
    "outcome, body) SELECT * FROM unnest($1::varchar[], $2::int8[], $3::varchar[], "
    "$4::varchar[], $5::varchar[], $6::varchar[], $7::varchar[], $8::bytea[])) "
    "INSERT INTO audit_link (audit_id, kind, value) "
    "SELECT * FROM unnest($9::varchar[], $10::varchar[], $11::varchar[])"
)


def _columns(rows: Sequence[StoredAudit]) -> list[list[Any]]:
    """The rows' values column by column, then their links' (audit id, kind, value)."""
    events = [
        (r.id, r.recorded, r.client_id, r.client_org, r.subtype, r.action, r.outcome, r.body)
        for r in rows
    ]
    links = [(r.id, kind, value) for r in rows for kind, value in r.links]
    return [list(column) for column in zip(*events, strict=True)] + [
        [link[n] for link in links] for n in range(3)
    ]


def rider_sql(first: int) -> str:
    """CTEs storing one AuditEvent beside a write statement whose written rows are CTE `r`,
    its values from parameter `first` on (`rider_args`): nothing is stored if nothing was."""
    n = [f"${first + k}" for k in range(10)]
    return (
        ",\nae AS (INSERT INTO audit_event (id, recorded, client_id, client_org, subtype, action, "
        f"outcome, body) SELECT {n[0]}::varchar, {n[1]}::int8, {n[2]}::varchar, "
        f"{n[3]}::varchar, {n[4]}::varchar, {n[5]}::varchar, {n[6]}::varchar, {n[7]}::bytea "
        "FROM r),\nal AS (INSERT INTO audit_link (audit_id, kind, value) "
        f"SELECT {n[0]}::varchar, k, v FROM r, unnest({n[8]}::varchar[], {n[9]}::varchar[]) "
        "AS x(k, v))"
    )


def rider_args(row: StoredAudit) -> list[Any]:
    """The parameters of `rider_sql`."""
    kinds = [kind for kind, _ in row.links]
    values = [value for _, value in row.links]
    return [
        *(row.id, row.recorded, row.client_id, row.client_org, row.subtype, row.action),
        *(row.outcome, row.body, kinds, values),
    ]


async def insert(conn: Connection, rows: Sequence[StoredAudit], *, last: bool = False) -> None:
    """Store AuditEvents, unsealed, with their links: on PostgreSQL one statement, on SQLite
    two, however many rows. `last`: nothing follows in this unit of work, so on PostgreSQL
    the statement may commit on its own (one round trip) if nothing came before it."""
    if not rows:
        return
    if conn.dialect == "postgresql":
        run = conn.fetchrow_final if last else conn.fetchrow
        await run(PG_INSERT, *_columns(rows))
        return
    await conn.executemany(
        INSERT_EVENT,
        [
            (r.id, r.recorded, r.client_id, r.client_org, r.subtype, r.action, r.outcome, r.body)
            for r in rows
        ],
    )
    links = [(r.id, kind, value) for r in rows for kind, value in r.links]
    if links:
        await conn.executemany(INSERT_LINK, links)
