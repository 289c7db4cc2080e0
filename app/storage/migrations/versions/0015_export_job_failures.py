"""export jobs: why a job failed, in its row (so failing needs no file and no readable
progress), and how many times a stopped runner's job was taken over, so one that keeps
stopping its server is failed instead of resumed for ever (`app.records.exporter`)

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("export_job") as batch_op:
        batch_op.add_column(
            sa.Column("error", sa.Text(), nullable=True, comment="why it failed (diagnostics)")
        )
        batch_op.add_column(
            sa.Column(
                "resumes",
                sa.Integer(),
                nullable=False,
                server_default="0",
                comment="times taken over from a runner that went quiet",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("export_job") as batch_op:
        batch_op.drop_column("resumes")
        batch_op.drop_column("error")
