"""what access rules filter on: a resource's authoring organisation, and on every version its
subject Patient and authoring organisation (history is filtered like reads)

Revision ID: 0007
Revises: 0006
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORDING_ORGANIZATION = "/StructureDefinition/recording-organization"


def upgrade() -> None:
    comment = "the Organization that authored it (Flag.author, a Condition's recorder)"
    with op.batch_alter_table("resource") as batch_op:
        batch_op.add_column(sa.Column("author_org", sa.String(length=64), nullable=True, comment=comment))
    with op.batch_alter_table("resource_version") as batch_op:
        batch_op.add_column(sa.Column("patient_id", sa.String(length=64), nullable=True, comment="Patient compartment"))
        batch_op.add_column(sa.Column("author_org", sa.String(length=64), nullable=True, comment=comment))
    _backfill()


def _backfill() -> None:
    """Authors as far as they can be known without the app: a Flag's author from its index
    rows, a Condition's recorder from its extension; versions take their resource's."""
    bind = op.get_bind()
    bind.execute(sa.text(
        "UPDATE resource SET author_org = (SELECT i.target_id FROM idx_reference i "
        "WHERE i.resource_pk = resource.pk AND i.param = 'author' "
        "AND i.target_type = 'Organization' ORDER BY i.target_id LIMIT 1) "
        "WHERE resource_type = 'Flag' AND NOT deleted"
    ))
    rows = bind.execute(sa.text(
        "SELECT pk, body FROM resource WHERE resource_type = 'Condition' AND NOT deleted"
    )).fetchall()
    for pk, body in rows:
        author = _recorder(json.loads(bytes(body)))
        if author is not None:
            bind.execute(sa.text("UPDATE resource SET author_org = :a WHERE pk = :pk"), {"a": author, "pk": pk})
    bind.execute(sa.text(
        "UPDATE resource_version SET patient_id = r.patient_id, author_org = r.author_org "
        "FROM resource r WHERE r.resource_type = resource_version.resource_type "
        "AND r.logical_id = resource_version.logical_id"
    ))


def _recorder(condition: dict) -> str | None:
    for extension in condition.get("extension") or []:
        if isinstance(extension, dict) and str(extension.get("url", "")).endswith(RECORDING_ORGANIZATION):
            reference = (extension.get("valueReference") or {}).get("reference")
            if isinstance(reference, str) and reference.startswith("Organization/"):
                return reference.removeprefix("Organization/")[:64]
    return None


def downgrade() -> None:
    with op.batch_alter_table("resource_version") as batch_op:
        batch_op.drop_column("author_org")
        batch_op.drop_column("patient_id")
    with op.batch_alter_table("resource") as batch_op:
        batch_op.drop_column("author_org")
