"""audit trail: one AuditEvent per request, sealed into a hash chain after commit, and what
each names (patients, entities, agents, the client) for auditors' searches

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SurrogateKey = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("pk", SurrogateKey, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False, comment="the AuditEvent's logical id"),
        sa.Column("recorded", sa.BigInteger(), nullable=False, comment="microseconds since epoch, UTC"),
        sa.Column("client_id", sa.String(length=128), nullable=True, comment="the client that asked, if known"),
        sa.Column("client_org", sa.String(length=64), nullable=True, comment="that client's Organization"),
        sa.Column("subtype", sa.String(length=32), nullable=False, comment="the interaction (restful-interaction)"),
        sa.Column("action", sa.String(length=1), nullable=False, comment="C R U D E"),
        sa.Column("outcome", sa.String(length=2), nullable=False, comment="0 success, 4 minor, 8 serious failure"),
        sa.Column("body", sa.LargeBinary(), nullable=False, comment="the AuditEvent JSON, canonical form"),
        sa.Column("seal_seq", sa.BigInteger(), nullable=True, comment="place in the chain; null until sealed"),
        sa.Column("seal_hash", sa.String(length=64), nullable=True, comment="sha256 hex over previous hash + row"),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_audit_event")),
        sa.UniqueConstraint("id", name=op.f("uq_audit_event_id")),
    )
    op.create_index(op.f("ix_audit_event_recorded"), "audit_event", ["recorded"])
    sealed = sa.text("seal_seq IS NOT NULL")
    op.create_index(
        "uq_audit_event_seal_seq",
        "audit_event",
        ["seal_seq"],
        unique=True,
        postgresql_where=sealed,
        sqlite_where=sealed,
    )
    op.create_table(
        "audit_link",
        sa.Column("audit_id", sa.String(length=64), nullable=False, comment="audit_event.id"),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="patient or entity"),
        sa.Column("value", sa.String(length=256), nullable=False, comment="a relative reference"),
        sa.PrimaryKeyConstraint("kind", "value", "audit_id", name=op.f("pk_audit_link")),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_audit_link_audit_id"), "audit_link", ["audit_id"])


def downgrade() -> None:
    op.drop_table("audit_link")
    op.drop_table("audit_event")
