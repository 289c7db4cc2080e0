"""change feed: every resource row and version row carries `changed_at`, the moment it was
written as the database saw it, and history pages on (changed_at, seq)

A version's meta.lastUpdated is stamped by the server before the row reaches the database, so
on PostgreSQL a transaction holding an earlier stamp can commit after a reader has passed it.
`changed_at` is taken by the database itself as the row is inserted (PostgreSQL: the column's
default, `clock_timestamp()`), so a reader can tell, from the transactions still running,
a time before which no change can still appear (`app.storage.feed`). SQLite has one writer
and stamps versions while holding it: there the column is lastUpdated itself (generated).

Rows already stored get their lastUpdated.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("resource", "resource_version")
DATABASE_CLOCK = "(extract(epoch from clock_timestamp()) * 1000000)::bigint"
COMMENT = "microseconds since epoch, UTC: when the database stored this row (app.storage.feed)"


def upgrade() -> None:
    for table in TABLES:
        _add_changed_at(table)
    op.drop_index("ix_resource_version_resource_type_seq", table_name="resource_version")
    op.drop_index("ix_resource_version_last_updated", table_name="resource_version")
    op.create_index(
        "ix_resource_version_changed_at_seq", "resource_version", ["changed_at", "seq"]
    )
    op.create_index(
        "ix_resource_version_resource_type_changed_at_seq",
        "resource_version",
        ["resource_type", "changed_at", "seq"],
    )


def _add_changed_at(table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        generated = sa.Computed("last_updated", persisted=False)
        column = sa.Column("changed_at", sa.BigInteger(), generated, nullable=False, comment=COMMENT)
        op.add_column(table, column)
        return
    op.add_column(table, sa.Column("changed_at", sa.BigInteger(), nullable=True, comment=COMMENT))
    op.execute(f"UPDATE {table} SET changed_at = last_updated")
    op.alter_column(table, "changed_at", nullable=False, server_default=sa.text(DATABASE_CLOCK))


def downgrade() -> None:
    op.drop_index("ix_resource_version_resource_type_changed_at_seq", table_name="resource_version")
    op.drop_index("ix_resource_version_changed_at_seq", table_name="resource_version")
    op.create_index("ix_resource_version_last_updated", "resource_version", ["last_updated"])
    op.create_index(
        "ix_resource_version_resource_type_seq", "resource_version", ["resource_type", "seq"]
    )
    for table in TABLES:
        op.drop_column(table, "changed_at")
