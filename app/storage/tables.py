"""The schema, as SQLAlchemy Core tables; Alembic migrations build it, a test checks they agree."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
SurrogateKey = BigInteger().with_variant(Integer(), "sqlite")

AUTHOR = (
    "the Organization that authored it (Flag.author, a Condition's recorder; for other types, "
    "the organisation of the client that created it)"
)
# Taken by the database as the row is stored (PostgreSQL: a default, clock_timestamp(); SQLite,
# whose one writer stamps versions while holding it: lastUpdated, generated); migration 0012.
CHANGED_AT = "microseconds since epoch, UTC: when the database stored this row (app.storage.feed)"
RESTRICTED = "labelled restricted (meta.security R): seen only by its author and those responsible"

resource = Table(
    "resource",
    metadata,
    Column("pk", SurrogateKey, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("logical_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False, comment="microseconds since epoch, UTC"),
    Column("deleted", Boolean, nullable=False),
    Column("body", LargeBinary, nullable=True, comment="JSON exactly as served; null if deleted"),
    Column("patient_id", String(64), nullable=True, comment="Patient compartment"),
    Column("owner_org", String(64), nullable=True),
    Column("author_org", String(64), nullable=True, comment=AUTHOR),
    Column("restricted", Boolean, nullable=False, server_default=false(), comment=RESTRICTED),
    Column("changed_at", BigInteger, nullable=False, comment=CHANGED_AT),
    UniqueConstraint("resource_type", "logical_id"),
    Index(None, "resource_type", "patient_id", "author_org"),
    Index(None, "resource_type", "last_updated"),
)

resource_version = Table(
    "resource_version",
    metadata,
    Column("seq", SurrogateKey, primary_key=True, autoincrement=True, comment="change sequence"),
    Column("resource_type", String(64), nullable=False),
    Column("logical_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),
    Column("body", LargeBinary, nullable=True),
    Column("patient_id", String(64), nullable=True, comment="Patient compartment"),
    Column("author_org", String(64), nullable=True, comment=AUTHOR),
    Column("restricted", Boolean, nullable=False, server_default=false(), comment=RESTRICTED),
    Column("client_id", String(128), nullable=True, comment="the client that wrote it"),
    Column("client_org", String(64), nullable=True, comment="that client's Organization"),
    Column("changed_at", BigInteger, nullable=False, comment=CHANGED_AT),
    UniqueConstraint("resource_type", "logical_id", "version_id"),
    Index(None, "changed_at", "seq"),
    Index(None, "resource_type", "changed_at", "seq"),
)


# A write that hides a resource from callers who could see it just before leaves one row per
# audience: the role and organisation that lost sight of it, or (audience_org null) every
# organisation of the role but `except_org`; history shows it to them as a deletion while the
# resource stays hidden from them (`storage.vanishing`, migration 0014).
tombstone = Table(
    "tombstone",
    metadata,
    Column("seq", SurrogateKey, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("logical_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False, comment="its version when it was hidden"),
    Column("last_updated", BigInteger, nullable=False, comment="the hiding write's lastUpdated"),
    Column("patient_id", String(64), nullable=True, comment="Patient compartment, as last seen"),
    Column("audience_role", String(32), nullable=False, comment="health or local-authority"),
    Column(
        "audience_org",
        String(64),
        nullable=True,
        comment="who lost sight; null: every organisation of the role",
    ),
    Column(
        "except_org",
        String(64),
        nullable=True,
        comment="with audience_org null: the one that did not",
    ),
    Column("changed_at", BigInteger, nullable=False, comment=CHANGED_AT),
    Index(None, "changed_at", "seq"),
    Index(None, "resource_type", "changed_at", "seq"),
)


def _index_table(name: str, *columns: Column[object]) -> Table:
    # No foreign key: index rows are derived data, written and removed only with their
    # resource's version in one statement or transaction; a key check per row is pure cost.
    return Table(
        name,
        metadata,
        Column("resource_pk", SurrogateKey, nullable=False),
        Column("param", String(64), nullable=False),
        *columns,
        Index(None, "resource_pk"),
    )


idx_token = _index_table(
    "idx_token",
    Column("system", String, nullable=True),
    Column("code", String, nullable=True),
)
# resource_pk last: equal values list their resources in pk order, so a page of a search in
# pk order reads the index from the cursor on instead of collecting every match first.
Index(None, idx_token.c.param, idx_token.c.code, idx_token.c.system, idx_token.c.resource_pk)

idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String, nullable=False, comment="logical id, or the URL if not ours"),
)
Index(
    None,
    idx_reference.c.param,
    idx_reference.c.target_id,
    idx_reference.c.target_type,
    idx_reference.c.resource_pk,
)

# Normalised text compares byte-wise ("C") on PostgreSQL, as SQLite always does, so that a
# starts-with search is an index range whatever the database's locale.
NormalisedText = String(collation="C").with_variant(String(), "sqlite")

idx_string = _index_table(
    "idx_string",
    Column("value", NormalisedText, nullable=False, comment="accents removed, case folded"),
    Column("exact", String, nullable=False, comment="as written (long values hashed)"),
)
Index(None, idx_string.c.param, idx_string.c.value, idx_string.c.resource_pk)

idx_date = _index_table(
    "idx_date",
    Column("low", BigInteger, nullable=False, comment="first microsecond of the range"),
    Column("high", BigInteger, nullable=False, comment="first microsecond after the range"),
)
Index(None, idx_date.c.param, idx_date.c.low, idx_date.c.high)
Index(None, idx_date.c.param, idx_date.c.high, idx_date.c.low)

idx_quantity = _index_table(
    "idx_quantity",
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("system", String, nullable=True),
    Column("code", String, nullable=True),
)
Index(None, idx_quantity.c.param, idx_quantity.c.low, idx_quantity.c.high)

conditional_key = Table(
    "conditional_key",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("match_key", String(64), primary_key=True, comment="sha256 of the normalised query"),
    Column("resource_pk", SurrogateKey, ForeignKey("resource.pk", ondelete="CASCADE")),
)


def _held_by() -> tuple[Column[int], Index]:
    """The resource holding a claim, indexed (a claim goes with its resource)."""
    holder = ForeignKey("resource.pk", ondelete="CASCADE")
    return Column("resource_pk", SurrogateKey, holder, nullable=False), Index(None, "resource_pk")


nhs_number_claim = Table(
    "nhs_number_claim",
    metadata,
    Column("nhs_number", String(10), primary_key=True),
    *_held_by(),
)

# A child has at most one active flag of each kind listed in flags.codes.ONE_ACTIVE_PER_CHILD:
# the primary key makes the second claim fail, even between concurrent writers.
flag_claim = Table(
    "flag_claim",
    metadata,
    Column("patient_id", String(64), primary_key=True, comment="the child's Patient id"),
    Column("flag_type", String(64), primary_key=True, comment="a project flag-type code"),
    *_held_by(),
)

request_log = Table(
    "request_log",
    metadata,
    Column("client", String, primary_key=True, comment="subject|organisation of the caller"),
    Column("request_id", String(36), primary_key=True, comment="X-Request-ID, a lower-case UUID"),
    Column("fingerprint", String(64), nullable=False, comment="sha256 of method, URL and body"),
    Column("status", Integer, nullable=False),
    Column("headers", Text, nullable=False, comment="JSON list of [name, value] pairs"),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False, comment="microseconds since epoch, UTC"),
    Index(None, "created_at"),
)

oauth_client = Table(
    "oauth_client",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("organisation", String(64), nullable=False, comment="the id of its Organization"),
    Column("role", String(32), nullable=False, comment="health, local-authority, system, auditor"),
    Column("scope", Text, nullable=False, comment="the SMART scopes it is registered for"),
    Column("jwks", Text, nullable=False, comment="its public keys (a JWKS, JSON)"),
    Column("local_key", Text, nullable=True, comment="private JWK of a local (demo) client"),
    Column("created_at", BigInteger, nullable=False, comment="microseconds since epoch, UTC"),
    Column("revoked_at", BigInteger, nullable=True, comment="its tokens stop working at once"),
    Index(None, "organisation", "role"),  # is an Organization a local authority (notifications)
)

signing_key = Table(
    "signing_key",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_jwk", Text, nullable=False, comment="the server's own token-signing key"),
    Column("created_at", BigInteger, nullable=False, comment="microseconds since epoch, UTC"),
    Column("retired_at", BigInteger, nullable=True, comment="signs no more; verifies until expiry"),
)

assertion_jti = Table(
    "assertion_jti",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", BigInteger, nullable=False, comment="seconds since epoch, UTC"),
    Index(None, "expires_at"),
)

# The audit trail: one AuditEvent per request, never changed through the API. Rows are
# sealed after commit by one sealer (`storage.audit`): `seal_seq` numbers them in the order
# sealed, `seal_hash` chains each to the one before (sha256 of the previous hash, the number
# and the body), so an altered, inserted or removed row breaks the chain.
audit_event = Table(
    "audit_event",
    metadata,
    Column("pk", SurrogateKey, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, comment="the AuditEvent's logical id"),
    Column("recorded", BigInteger, nullable=False, comment="microseconds since epoch, UTC"),
    Column("client_id", String(128), nullable=True, comment="the client that asked, if known"),
    Column("client_org", String(64), nullable=True, comment="that client's Organization"),
    Column("subtype", String(32), nullable=False, comment="the interaction (restful-interaction)"),
    Column("action", String(1), nullable=False, comment="C R U D E"),
    Column("outcome", String(2), nullable=False, comment="0 success, 4 minor, 8 serious failure"),
    Column("body", LargeBinary, nullable=False, comment="the AuditEvent JSON, canonical form"),
    Column("seal_seq", BigInteger, nullable=True, comment="place in the chain; null until sealed"),
    Column("seal_hash", String(64), nullable=True, comment="sha256 hex over previous hash + row"),
    Column(
        "names",
        Text,
        nullable=True,
        comment="JSON [[kind, value], ...]: its audit_link rows, until sealed",
    ),
    UniqueConstraint("id"),
    Index(None, "recorded"),
    # Unique among sealed records; a record not yet sealed has no entry to write or remove.
    Index(
        "uq_audit_event_seal_seq",
        "seal_seq",
        unique=True,
        postgresql_where=text("seal_seq IS NOT NULL"),
        sqlite_where=text("seal_seq IS NOT NULL"),
    ),
    # The records still to seal, in the order they were stored (`app.audit.chain`).
    Index(
        "ix_audit_event_unsealed",
        "pk",
        postgresql_where=text("seal_seq IS NULL"),
        sqlite_where=text("seal_seq IS NULL"),
    ),
)

# What each AuditEvent names, for search: `patient` (Patient/id) and `entity` (the other
# entity.what references, versionless); written by the sealer (`app.audit.chain`) from the
# record's `names`, which it then clears.
audit_link = Table(
    "audit_link",
    metadata,
    Column("audit_id", String(64), nullable=False, comment="audit_event.id"),
    Column("kind", String(16), nullable=False, comment="patient or entity"),
    Column("value", String(256), nullable=False, comment="a relative reference"),
    PrimaryKeyConstraint("kind", "value", "audit_id"),
    Index(None, "audit_id"),
    sqlite_with_rowid=False,  # the key is the row: one B-tree fewer per link
)

MICROS = "microseconds since epoch, UTC"
export_job = Table(
    "export_job",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("client_id", String(128), nullable=False, comment="the client that asked"),
    Column("caller", Text, nullable=False, comment="JSON: the Caller the job reads as"),
    Column("request", Text, nullable=False, comment="the kick-off URL"),
    Column("params", Text, nullable=False, comment="JSON: the parsed parameters"),
    Column("watermark", BigInteger, nullable=False, comment="transactionTime, " + MICROS),
    Column("status", String(16), nullable=False, comment="in-progress, completed, failed"),
    Column("progress", Text, nullable=False, comment="JSON: each part's committed position"),
    Column("runner", String(64), nullable=True, comment="the process running it"),
    Column("heartbeat", BigInteger, nullable=False, comment="its runner's last commit, " + MICROS),
    Column("created_at", BigInteger, nullable=False, comment=MICROS),
    Column("finished_at", BigInteger, nullable=True, comment=MICROS),
    Column("error", Text, nullable=True, comment="why it failed (diagnostics)"),
    Column(
        "resumes",
        Integer,
        nullable=False,
        server_default="0",
        comment="times taken over from a runner that went quiet",
    ),
    Index(None, "status", "heartbeat"),
    Index(None, "client_id", "status"),
)

# Notifications (migration 0016, `storage.outbox`, `storage.subscriptions`). A write or read that
# something happened to a child leaves one `notification` row per organisation to tell, in its
# own transaction; the notifier numbers each for the Subscriptions it reaches
# (`subscription_event`) and deletes it; `subscription_state` is each Subscription's delivery.
notification = Table(
    "notification",
    metadata,
    Column("seq", SurrogateKey, primary_key=True, autoincrement=True),
    Column("topic", String(64), nullable=False, comment="the event's topic code"),
    Column("recipient_org", String(64), nullable=False, comment="the Organization to tell"),
    Column("occurred_at", BigInteger, nullable=False, comment="when it happened, " + MICROS),
    Column("detail", Text, nullable=False, comment="JSON: child, cause, resources involved"),
)

# A child's responsible Organizations (what its Patient's extension and its active Flags'
# authors make responsible: `access.visibility.RESPONSIBLE` index rows), one row each, kept by
# the writes that change them (`storage.outbox`), so a write reads them in one probe.
child_authority = Table(
    "child_authority",
    metadata,
    Column("patient_id", String(64), nullable=False),
    Column("organisation", String(64), nullable=False),
    PrimaryKeyConstraint("patient_id", "organisation"),
)

subscription_state = Table(
    "subscription_state",
    metadata,
    Column("resource_pk", BigInteger, primary_key=True, autoincrement=False),
    Column("logical_id", String(64), nullable=False),
    Column("owner_org", String(64), nullable=False, comment="the Organization it serves"),
    Column("topic", String(64), nullable=False),
    Column("endpoint", Text, nullable=True, comment="rest-hook URL; null: held for $events"),
    Column("channel", Text, nullable=False, comment="JSON: content, headers, heartbeat, ..."),
    Column("status", String(16), nullable=False, comment="requested, active, error, off"),
    Column("events_total", BigInteger, nullable=False, server_default="0"),
    Column("delivered_through", BigInteger, nullable=False, server_default="0"),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger, nullable=False, server_default="0", comment=MICROS),
    Column("last_sent_at", BigInteger, nullable=True, comment=MICROS),
    Column("started_at", BigInteger, nullable=False, comment="events from then on, " + MICROS),
    Column("error", Text, nullable=True, comment="why the last delivery failed"),
    Index(None, "owner_org", "topic"),
)

subscription_event = Table(
    "subscription_event",
    metadata,
    Column("subscription_pk", BigInteger, nullable=False),
    Column("event_number", BigInteger, nullable=False),
    Column("occurred_at", BigInteger, nullable=False, comment=MICROS),
    Column("detail", Text, nullable=False, comment="JSON, as in notification"),
    PrimaryKeyConstraint("subscription_pk", "event_number"),
    Index(None, "occurred_at"),
)
