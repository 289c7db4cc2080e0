"""tombstones: a write that hides a resource from callers who could see it just before records
who lost sight of it, so the change feed shows them a deletion (`app.storage.vanishing`)

One row per resource and audience: a role, and the organisation that lost sight of it, or
(audience_org null) every organisation of the role but `except_org`. `changed_at` works as on
`resource_version` (migration 0012): the database's clock as the row is stored on PostgreSQL,
the hiding write's lastUpdated (generated) on SQLite. History pages merge these rows with the
versions on (changed_at, seq).

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DATABASE_CLOCK = "(extract(epoch from clock_timestamp()) * 1000000)::bigint"
CHANGED_AT = "microseconds since epoch, UTC: when the database stored this row (app.storage.feed)"


def _changed_at() -> sa.Column[int]:
    if op.get_bind().dialect.name == "sqlite":
        generated = sa.Computed("last_updated", persisted=False)
        return sa.Column("changed_at", sa.BigInteger(), generated, nullable=False, comment=CHANGED_AT)
    return sa.Column(
        "changed_at",
        sa.BigInteger(),
        nullable=False,
        server_default=sa.text(DATABASE_CLOCK),
        comment=CHANGED_AT,
    )


def upgrade() -> None:
    op.create_table(
        "tombstone",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("logical_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False, comment="its version when it was hidden"),
        sa.Column("last_updated", sa.BigInteger(), nullable=False, comment="the hiding write's lastUpdated"),
        sa.Column("patient_id", sa.String(length=64), nullable=True, comment="Patient compartment, as last seen"),
        sa.Column("audience_role", sa.String(length=32), nullable=False, comment="health or local-authority"),
        sa.Column("audience_org", sa.String(length=64), nullable=True, comment="who lost sight; null: every organisation of the role"),
        sa.Column("except_org", sa.String(length=64), nullable=True, comment="with audience_org null: the one that did not"),
        _changed_at(),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_tombstone")),
    )
    op.create_index("ix_tombstone_changed_at_seq", "tombstone", ["changed_at", "seq"])
    op.create_index(
        "ix_tombstone_resource_type_changed_at_seq",
        "tombstone",
        ["resource_type", "changed_at", "seq"],
    )


def downgrade() -> None:
    op.drop_index("ix_tombstone_resource_type_changed_at_seq", table_name="tombstone")
    op.drop_index("ix_tombstone_changed_at_seq", table_name="tombstone")
    op.drop_table("tombstone")
