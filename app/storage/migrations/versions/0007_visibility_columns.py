"""what access rules filter on: a resource's authoring organisation, and on every version its
subject Patient and authoring organisation (history is filtered like reads)

Revision ID: 0007
Revises: 0006
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.settings import get_settings

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000  # versions read and written at a time


def upgrade() -> None:
    comment = "the Organization that authored it (Flag.author, a Condition's recorder)"
    with op.batch_alter_table("resource") as batch_op:
        batch_op.add_column(sa.Column("author_org", sa.String(length=64), nullable=True, comment=comment))
    with op.batch_alter_table("resource_version") as batch_op:
        batch_op.add_column(sa.Column("patient_id", sa.String(length=64), nullable=True, comment="Patient compartment"))
        batch_op.add_column(sa.Column("author_org", sa.String(length=64), nullable=True, comment=comment))
    _backfill()


def _backfill() -> None:
    """What each version says of its subject Patient and authoring organisation, found as the
    app finds them (`indexer.compartment_patient`, `flags.writes.author_of`) from the version's
    own body, in batches; a deletion takes its previous version's; a resource its current."""
    bind = op.get_bind()
    settings = get_settings()
    base = settings.base_url.rstrip("/")
    recorder = f"{settings.canonical_base}/StructureDefinition/recording-organization"
    after = -1
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT seq, resource_type, logical_id, body FROM resource_version "
                "WHERE seq > :after AND body IS NOT NULL ORDER BY seq LIMIT :size"
            ),
            {"after": after, "size": BATCH},
        ).fetchall()
        if not rows:
            break
        after = rows[-1][0]
        found = [_owned(seq, kind, logical_id, body, base, recorder) for seq, kind, logical_id, body in rows]
        bind.execute(
            sa.text("UPDATE resource_version SET patient_id = :p, author_org = :a WHERE seq = :s"),
            found,
        )
    previous = (
        "(SELECT p.{column} FROM resource_version p WHERE p.resource_type = "
        "resource_version.resource_type AND p.logical_id = resource_version.logical_id "
        "AND p.version_id = resource_version.version_id - 1)"
    )
    bind.execute(sa.text(
        f"UPDATE resource_version SET patient_id = {previous.format(column='patient_id')}, "
        f"author_org = {previous.format(column='author_org')} WHERE body IS NULL"
    ))
    bind.execute(sa.text(
        "UPDATE resource SET author_org = (SELECT v.author_org FROM resource_version v "
        "WHERE v.resource_type = resource.resource_type AND v.logical_id = resource.logical_id "
        "AND v.version_id = resource.version_id)"
    ))


COMPARTMENT = {"Flag": "subject", "Condition": "subject", "RelatedPerson": "patient"}


def _owned(seq: int, kind: str, logical_id: str, body: object, base: str, recorder: str) -> dict:
    resource = json.loads(body if isinstance(body, str | bytes) else bytes(body))
    if kind == "Patient":
        patient = logical_id
    else:
        patient = _target(resource.get(COMPARTMENT.get(kind, "")), "Patient", base)
    author = None
    if kind == "Flag":
        author = _target(resource.get("author"), "Organization", base)
    elif kind == "Condition":
        for extension in resource.get("extension") or []:
            if isinstance(extension, dict) and extension.get("url") == recorder:
                author = _target(extension.get("valueReference"), "Organization", base)
                break
    return {"s": seq, "p": patient, "a": author}


def _target(reference: object, kind: str, base: str) -> str | None:
    """The id a Reference names if it is a `kind` here (relative, or absolute on our base)."""
    found = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(found, str):
        return None
    local = found.removeprefix(base + "/")
    parts = local.split("/")
    if "://" in local or len(parts) not in (2, 4) or (len(parts) == 4 and parts[2] != "_history"):
        return None
    return parts[1] if parts[0] == kind and 0 < len(parts[1]) <= 64 else None


def downgrade() -> None:
    with op.batch_alter_table("resource_version") as batch_op:
        batch_op.drop_column("author_org")
        batch_op.drop_column("patient_id")
    with op.batch_alter_table("resource") as batch_op:
        batch_op.drop_column("author_org")
