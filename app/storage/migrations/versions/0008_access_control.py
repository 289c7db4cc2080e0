"""access control: clients and the server's signing keys, assertion ids seen, the restricted
label and who wrote each version, and the responsibility rows of data written before

Revision ID: 0008
Revises: 0007
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.settings import get_settings

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RESTRICTED = "labelled restricted (meta.security R): seen only by its author and those responsible"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
BATCH = 1000
AUTHOR = (
    "the Organization that authored it (Flag.author, a Condition's recorder; for other types, "
    "the organisation of the client that created it)"
)
OLD_AUTHOR = "the Organization that authored it (Flag.author, a Condition's recorder)"


def upgrade() -> None:
    with op.batch_alter_table("resource") as batch_op:
        batch_op.add_column(sa.Column("restricted", sa.Boolean(), server_default=sa.false(), nullable=False, comment=RESTRICTED))
    with op.batch_alter_table("resource_version") as batch_op:
        batch_op.add_column(sa.Column("restricted", sa.Boolean(), server_default=sa.false(), nullable=False, comment=RESTRICTED))
        batch_op.add_column(sa.Column("client_id", sa.String(length=128), nullable=True, comment="the client that wrote it"))
        batch_op.add_column(sa.Column("client_org", sa.String(length=64), nullable=True, comment="that client's Organization"))
    op.create_table(
        "oauth_client",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("organisation", sa.String(length=64), nullable=False, comment="the id of its Organization"),
        sa.Column("role", sa.String(length=32), nullable=False, comment="health, local-authority, system, auditor"),
        sa.Column("scope", sa.Text(), nullable=False, comment="the SMART scopes it is registered for"),
        sa.Column("jwks", sa.Text(), nullable=False, comment="its public keys (a JWKS, JSON)"),
        sa.Column("local_key", sa.Text(), nullable=True, comment="private JWK of a local (demo) client"),
        sa.Column("created_at", sa.BigInteger(), nullable=False, comment="microseconds since epoch, UTC"),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True, comment="its tokens stop working at once"),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oauth_client")),
    )
    op.create_table(
        "signing_key",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("private_jwk", sa.Text(), nullable=False, comment="the server's own token-signing key"),
        sa.Column("created_at", sa.BigInteger(), nullable=False, comment="microseconds since epoch, UTC"),
        sa.Column("retired_at", sa.BigInteger(), nullable=True, comment="signs no more; verifies until expiry"),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_key")),
    )
    op.create_table(
        "assertion_jti",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False, comment="seconds since epoch, UTC"),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_assertion_jti")),
    )
    with op.batch_alter_table("assertion_jti") as batch_op:
        batch_op.create_index(batch_op.f("ix_assertion_jti_expires_at"), ["expires_at"])
    _comment_author(AUTHOR, OLD_AUTHOR)
    _backfill()


def _comment_author(comment: str, existing: str) -> None:
    if op.get_bind().dialect.name == "postgresql":  # SQLite keeps no column comments
        for table in ("resource", "resource_version"):
            op.alter_column(
                table, "author_org", existing_type=sa.String(length=64), existing_nullable=True,
                comment=comment, existing_comment=existing,
            )


def _backfill() -> None:
    """The restricted label of every stored version, and the responsibility index rows of
    current Patients (responsible-local-authority) and active Flags (their author)."""
    bind = op.get_bind()
    settings = get_settings()
    extension = f"{settings.canonical_base}/StructureDefinition/responsible-local-authority"
    base = settings.base_url.rstrip("/")
    after = -1
    while True:
        rows = bind.execute(sa.text(
            "SELECT seq, body FROM resource_version WHERE seq > :after AND body IS NOT NULL "
            "ORDER BY seq LIMIT :size"
        ), {"after": after, "size": BATCH}).fetchall()
        if not rows:
            break
        after = rows[-1][0]
        restricted = [{"s": seq} for seq, body in rows if _restricted(_json(body))]
        if restricted:
            bind.execute(sa.text("UPDATE resource_version SET restricted = true WHERE seq = :s"), restricted)
    bind.execute(sa.text(
        "UPDATE resource SET restricted = true WHERE EXISTS (SELECT 1 FROM resource_version v "
        "WHERE v.resource_type = resource.resource_type AND v.logical_id = resource.logical_id "
        "AND v.version_id = resource.version_id AND v.restricted)"
    ))
    rows = bind.execute(sa.text(
        "SELECT pk, resource_type, author_org, body FROM resource WHERE NOT deleted "
        "AND resource_type IN ('Patient', 'Flag')"
    )).fetchall()
    responsible = []
    for pk, kind, author, body in rows:
        for organisation in _responsible(kind, author, _json(body), extension, base):
            responsible.append({"pk": pk, "o": organisation})
    if responsible:
        bind.execute(sa.text(
            "INSERT INTO idx_reference (resource_pk, param, target_type, target_id) "
            "VALUES (:pk, '_responsible', 'Organization', :o)"
        ), responsible)


def _json(body: object) -> dict:
    return json.loads(body if isinstance(body, str | bytes) else bytes(body))


def _restricted(resource: dict) -> bool:
    labels = (resource.get("meta") or {}).get("security") or []
    return any(
        isinstance(label, dict) and label.get("system") == CONFIDENTIALITY and label.get("code") == "R"
        for label in labels
    )


def _responsible(kind: str, author: str | None, resource: dict, extension: str, base: str) -> list[str]:
    if kind == "Flag":
        return [author] if author and resource.get("status") == "active" else []
    found = []
    for item in resource.get("extension") or []:
        if isinstance(item, dict) and item.get("url") == extension:
            reference = (item.get("valueReference") or {}).get("reference")
            if isinstance(reference, str):
                local = reference.removeprefix(base + "/").split("/")
                if len(local) == 2 and local[0] == "Organization" and 0 < len(local[1]) <= 64:
                    found.append(local[1])
    return found


def downgrade() -> None:
    _comment_author(OLD_AUTHOR, AUTHOR)
    op.execute("DELETE FROM idx_reference WHERE param = '_responsible'")
    with op.batch_alter_table("assertion_jti") as batch_op:
        batch_op.drop_index(batch_op.f("ix_assertion_jti_expires_at"))
    op.drop_table("assertion_jti")
    op.drop_table("signing_key")
    op.drop_table("oauth_client")
    with op.batch_alter_table("resource_version") as batch_op:
        batch_op.drop_column("client_org")
        batch_op.drop_column("client_id")
        batch_op.drop_column("restricted")
    with op.batch_alter_table("resource") as batch_op:
        batch_op.drop_column("restricted")
