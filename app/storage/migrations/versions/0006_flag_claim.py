"""flag claims: at most one active flag of some kinds per child

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flag_claim",
        sa.Column("patient_id", sa.String(length=64), nullable=False, comment="the child's Patient id"),
        sa.Column("flag_type", sa.String(length=64), nullable=False, comment="a project flag-type code"),
        sa.Column("resource_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(["resource_pk"], ["resource.pk"], name=op.f("fk_flag_claim_resource_pk_resource"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("patient_id", "flag_type", name=op.f("pk_flag_claim")),
    )
    with op.batch_alter_table("flag_claim") as batch_op:
        batch_op.create_index(batch_op.f("ix_flag_claim_resource_pk"), ["resource_pk"])


def downgrade() -> None:
    with op.batch_alter_table("flag_claim") as batch_op:
        batch_op.drop_index(batch_op.f("ix_flag_claim_resource_pk"))
    op.drop_table("flag_claim")
