"""The audit trail's tables: AuditEvents stored with a write or in batches, never changed
through the API (`app.audit`).

A request stores its record alone, one row, with what it names as a JSON column: the sealer
turns that into `audit_link` rows (for search), many records in one statement, in the pass
that seals them (`app.audit.chain`); an auditor's search seals first, so it finds every
committed record.
On PostgreSQL every way in is one statement: a batch unnests arrays (so it commits on its
own, one round trip), and a single write's record rides in the write's own statement
(`rider_sql`), stored only if the write was.
"""

from collections.abc import Iterable, Sequence
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
    def names(self) -> str: ...


AUDIT_TABLES = ("audit_event", "audit_link")
INSERT_EVENT = (
    "INSERT INTO audit_event (id, recorded, client_id, client_org, subtype, action, outcome, "
    "body, names) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
INSERT_LINK = "INSERT INTO audit_link (audit_id, kind, value) VALUES ($1, $2, $3)"
PG_INSERT = (
    "INSERT INTO audit_event (id, recorded, client_id, client_org, subtype, action, "
    "outcome, body, names) SELECT * FROM unnest($1::varchar[], $2::int8[], $3::varchar[], "
    "$4::varchar[], $5::varchar[], $6::varchar[], $7::varchar[], $8::bytea[], $9::text[])"
)
# Only for records still there: a record deleted while its pass ran (nothing in the service
# deletes one, but an operator's hand or a test's clean-up may) leaves no stray link.
PG_INSERT_LINKS = (
    "INSERT INTO audit_link (audit_id, kind, value) SELECT u.a, u.k, u.v "
    "FROM unnest($1::varchar[], $2::varchar[], $3::varchar[]) AS u(a, k, v) "
    "WHERE EXISTS (SELECT 1 FROM audit_event e WHERE e.id = u.a)"
)


def _values(row: StoredAudit) -> tuple[Any, ...]:
    return (
        *(row.id, row.recorded, row.client_id, row.client_org),
        *(row.subtype, row.action, row.outcome, row.body, row.names),
    )


def rider_sql(first: int) -> str:
    """A CTE storing one AuditEvent beside a write statement whose written rows are CTE `r`,
    its values from parameter `first` on (`rider_args`): nothing is stored if nothing was."""
    n = [f"${first + k}" for k in range(9)]
    return (
        ",\nae AS (INSERT INTO audit_event (id, recorded, client_id, client_org, subtype, action, "
        f"outcome, body, names) SELECT {n[0]}::varchar, {n[1]}::int8, {n[2]}::varchar, "
        f"{n[3]}::varchar, {n[4]}::varchar, {n[5]}::varchar, {n[6]}::varchar, {n[7]}::bytea, "
        f"{n[8]}::text FROM r)"
    )


def rider_args(row: StoredAudit) -> list[Any]:
    """The parameters of `rider_sql`."""
    return list(_values(row))


async def insert(conn: Connection, rows: Sequence[StoredAudit], *, last: bool = False) -> None:
    """Store AuditEvents, unsealed: one statement however many rows. `last`: nothing follows
    in this unit of work, so on PostgreSQL the statement may commit on its own (one round
    trip) if nothing came before it."""
    if not rows:
        return
    if conn.dialect == "sqlite":
        await conn.executemany(INSERT_EVENT, [_values(row) for row in rows])
        return
    columns = [list(column) for column in zip(*map(_values, rows), strict=True)]
    run = conn.fetchrow_final if last else conn.fetchrow
    await run(PG_INSERT, *columns)


async def insert_links(conn: Connection, links: Iterable[tuple[str, str, str]]) -> None:
    """Store what records name, as (audit id, kind, value) rows: one statement."""
    rows = list(links)
    if not rows:
        return
    if conn.dialect == "sqlite":
        await conn.executemany(INSERT_LINK, rows)
        return
    await conn.execute(PG_INSERT_LINKS, *([row[n] for row in rows] for n in range(3)))
