"""audit chain: each record carries what it names (its audit_link rows, as JSON) until it is
sealed, so the sealer links many records in one statement instead of parsing each body

Worked out when the record is built, from the event it describes; the sealer copies it into
audit_link and clears it in the same pass that seals the record. Records stored before this
column (NULL here, unsealed) are still linked from their bodies.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    names = sa.Column(
        "names",
        sa.Text(),
        nullable=True,
        comment="JSON [[kind, value], ...]: its audit_link rows, until sealed",
    )
    op.add_column("audit_event", names)  # ALTER TABLE ADD COLUMN on both databases


def downgrade() -> None:
    op.drop_column("audit_event", "names")
