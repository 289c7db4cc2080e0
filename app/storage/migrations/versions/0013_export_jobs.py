"""bulk export jobs: one row per $export kick-off, holding who asked, what was asked, the
snapshot's watermark and each part's last committed position, so a job outlives the server
process that started it (`app.records.export_jobs`)

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MICROS = "microseconds since epoch, UTC"


def upgrade() -> None:
    op.create_table(
        "export_job",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False, comment="the client that asked"),
        sa.Column("caller", sa.Text(), nullable=False, comment="JSON: the Caller the job reads as"),
        sa.Column("request", sa.Text(), nullable=False, comment="the kick-off URL"),
        sa.Column("params", sa.Text(), nullable=False, comment="JSON: the parsed parameters"),
        sa.Column("watermark", sa.BigInteger(), nullable=False, comment="transactionTime, " + MICROS),
        sa.Column("status", sa.String(length=16), nullable=False, comment="in-progress, completed, failed"),
        sa.Column("progress", sa.Text(), nullable=False, comment="JSON: each part's committed position"),
        sa.Column("runner", sa.String(length=64), nullable=True, comment="the process running it"),
        sa.Column("heartbeat", sa.BigInteger(), nullable=False, comment="its runner's last commit, " + MICROS),
        sa.Column("created_at", sa.BigInteger(), nullable=False, comment=MICROS),
        sa.Column("finished_at", sa.BigInteger(), nullable=True, comment=MICROS),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_export_job")),
    )
    with op.batch_alter_table("export_job") as batch_op:
        batch_op.create_index(batch_op.f("ix_export_job_status_heartbeat"), ["status", "heartbeat"])
        batch_op.create_index(batch_op.f("ix_export_job_client_id_status"), ["client_id", "status"])


def downgrade() -> None:
    with op.batch_alter_table("export_job") as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_job_client_id_status"))
        batch_op.drop_index(batch_op.f("ix_export_job_status_heartbeat"))
    op.drop_table("export_job")
