"""The audit trail's tables: AuditEvents stored with a write or in batches, never changed
through the API (`app.audit`).
"""

from collections.abc import Sequence
from typing import Protocol

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


INSERT_EVENT = (
    "INSERT INTO audit_event (id, recorded, client_id, client_org, subtype, action, outcome, "
    "body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
INSERT_LINK = "INSERT INTO audit_link (audit_id, kind, value) VALUES ($1, $2, $3)"


async def insert(conn: Connection, rows: Sequence[StoredAudit]) -> None:
    """Store AuditEvents, unsealed, with their links: two statements however many rows."""
    if not rows:
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
