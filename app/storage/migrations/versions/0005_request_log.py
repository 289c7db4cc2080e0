"""request log: the first answer to each X-Request-ID, replayed to retries

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "request_log",
        sa.Column("client", sa.String(), nullable=False, comment="subject|organisation of the caller"),
        sa.Column("request_id", sa.String(length=36), nullable=False, comment="X-Request-ID, a lower-case UUID"),
        sa.Column("fingerprint", sa.String(length=64), nullable=False, comment="sha256 of method, URL and body"),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False, comment="JSON list of [name, value] pairs"),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False, comment="microseconds since epoch, UTC"),
        sa.PrimaryKeyConstraint("client", "request_id", name=op.f("pk_request_log")),
    )
    with op.batch_alter_table("request_log") as batch_op:
        batch_op.create_index(batch_op.f("ix_request_log_created_at"), ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("request_log") as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_log_created_at"))
    op.drop_table("request_log")
