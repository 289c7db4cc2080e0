"""string, date and quantity search indexes; resources by last update

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SURROGATE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NORMALISED = sa.String(collation="C").with_variant(sa.String(), "sqlite")


def _index_table(name: str, *columns: sa.Column, indexes: list[list[str]]) -> None:
    op.create_table(
        name,
        sa.Column("resource_pk", SURROGATE, nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        *columns,
    )
    with op.batch_alter_table(name) as batch_op:
        for columns_ in [["resource_pk"], *indexes]:
            batch_op.create_index(batch_op.f(f"ix_{name}_{'_'.join(columns_)}"), columns_)


def upgrade() -> None:
    with op.batch_alter_table("resource") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_resource_resource_type_last_updated"), ["resource_type", "last_updated"]
        )
    _index_table(
        "idx_string",
        sa.Column("value", NORMALISED, nullable=False, comment="accents removed, case folded"),
        sa.Column("exact", sa.String(), nullable=False, comment="as written (long values hashed)"),
        indexes=[["param", "value"]],
    )
    _index_table(
        "idx_date",
        sa.Column("low", sa.BigInteger(), nullable=False, comment="first microsecond of the range"),
        sa.Column(
            "high", sa.BigInteger(), nullable=False, comment="first microsecond after the range"
        ),
        indexes=[["param", "low", "high"], ["param", "high", "low"]],
    )
    _index_table(
        "idx_quantity",
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("system", sa.String(), nullable=True),
        sa.Column("code", sa.String(), nullable=True),
        indexes=[["param", "low", "high"]],
    )


def downgrade() -> None:
    for name in ("idx_quantity", "idx_date", "idx_string"):
        op.drop_table(name)
    with op.batch_alter_table("resource") as batch_op:
        batch_op.drop_index(batch_op.f("ix_resource_resource_type_last_updated"))
