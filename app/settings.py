"""Service settings, read from the environment with the SAFEGUARD_ prefix."""

import re
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DURATION = re.compile(r"(\d+)\s*([smhd]?)")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Settings(BaseSettings):
    """Everything configurable; validated once when the app is built."""

    model_config = SettingsConfigDict(env_prefix="SAFEGUARD_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./data/safeguard.db",
        description="The database: a SQLite file (`sqlite:///path`), or PostgreSQL "
        "(`postgresql://user@host:5432/db`) for production and for several workers.",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8000/fhir",
        description="Public FHIR base URL, used in `Location` headers and Bundle `fullUrl`s.",
    )
    pg_pool_min: int = Field(
        default=8, ge=1, description="PostgreSQL connections a server process keeps open."
    )
    pg_pool_max: int = Field(
        default=16, ge=1, description="PostgreSQL connections a server process opens at most."
    )
    max_body_bytes: int = Field(
        default=5 * 1024 * 1024, ge=1024, description="Bytes of a request body (5 MiB; 413 beyond)."
    )
    max_bundle_entries: int = Field(
        default=1000, ge=1, description="Entries in a transaction or batch Bundle (413 beyond)."
    )
    max_response_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Bytes of resources one answer may hold (32 MiB): a batch entry past them "
        "fails with 400 `too-costly` naming it (the rest are not run), a transaction fails as a "
        "whole; a search or history page stops there, before reading the bodies past it (a "
        "search page, or its includes, with a warning), its `next` link going on after its "
        "last entry.",
    )
    default_page_size: int = Field(
        default=20, ge=1, description="Entries of a search or history page without `_count`."
    )
    max_page_size: int = Field(default=500, ge=1, description="The largest `_count` served.")
    count_over_max: Literal["clamp", "refuse"] = Field(
        default="clamp",
        description="A `_count` over `SAFEGUARD_MAX_PAGE_SIZE`: `clamp` (cut to the maximum) or "
        "`refuse` (400).",
    )
    include_depth: int = Field(
        default=3, ge=1, le=10, description="Rounds of _include:iterate/_revinclude:iterate."
    )
    max_included: int = Field(default=1000, ge=1, description="Included resources per page.")
    canonical_base_url: str | None = Field(
        default=None,
        description="Base of the canonical URLs of this server's own definitions "
        "(SearchParameters...); the FHIR base URL when unset.",
    )
    write_retries: int = Field(
        default=5,
        ge=1,
        description="Attempts a write gets when a concurrent writer wins (serialization "
        "failure, deadlock) before it is answered 409.",
    )
    idempotency_window_seconds: int = Field(
        default=86400,
        ge=0,
        description="Seconds a write's answer is kept for retries that send the same "
        "`X-Request-ID` (a UUID): within it they get that answer and write nothing; "
        "0 keeps none.",
    )
    summary_was_not_brought_threshold: int = Field(
        default=2,
        ge=1,
        description="Was-not-brought flags within "
        "`SAFEGUARD_SUMMARY_WAS_NOT_BROUGHT_WINDOW_DAYS` that make the safeguarding summary "
        "warn `repeated-was-not-brought` (one is enough while the child has an active child "
        "protection plan or is looked after).",
    )
    summary_was_not_brought_window_days: int = Field(
        default=365,
        ge=1,
        description="How many days back the safeguarding summary counts was-not-brought flags "
        "(by period.start).",
    )
    token_lifetime_seconds: int = Field(
        default=300, ge=30, le=3600, description="How long an access token is valid."
    )
    local_tokens: bool = Field(
        default=True,
        description="`safeguard token --client ID` may mint tokens for clients registered with "
        "a local (server-generated) key, such as the demo clients; `false` in production.",
    )
    keep_alive_seconds: float = Field(
        default=5.0,
        gt=0,
        description="An idle keep-alive connection is closed after this long (safeguard serve).",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Connections and requests in progress per worker; beyond, new requests get "
        "503 (safeguard serve).",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A request's head (request line and headers) must arrive within this long "
        "of the connection opening, or of its first byte on a kept-alive connection; otherwise "
        "the connection is closed (safeguard serve).",
    )
    body_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A request's body must arrive within this long of its head: 408 (an "
        "OperationOutcome `timeout`, `Connection: close`) if no answer has started, and the "
        "connection is closed (safeguard serve).",
    )
    rate_limit_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Requests a minute each client may make, per process (429 with "
        "`Retry-After` beyond); unset: no limit. Recommended: 1200.",
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins (`https://app.example.org`) whose browser pages "
        "may call the API (CORS; preflights are answered without a token); empty: CORS off.",
    )
    audit_seal_interval_seconds: float = Field(
        default=0.5,
        ge=0,
        le=60,
        description="How often committed AuditEvents are sealed into the audit trail's hash "
        "chain (`safeguard audit verify` reports any left unsealed over a minute); 0: not by "
        "this process (another one, or `safeguard audit seal`, seals).",
    )
    export_dir: str = Field(
        default="./data/exports",
        description="Where bulk $export jobs write their NDJSON files (a directory per job).",
    )
    export_retention: int = Field(
        default=86400,
        ge=1,
        description="How long an export's files are kept once the job has ended, then deleted "
        "with the job: seconds, or a number with a unit s, m, h or d (`24h`).",
    )
    export_max_jobs_per_client: int = Field(
        default=2, ge=1, description="Export jobs in progress per client at once (429 beyond)."
    )
    export_chunk_rows: int | None = Field(
        default=None,
        ge=1,
        description="Rows an export job reads per query; unset: 2,000 on PostgreSQL, 200 on "
        "SQLite (whose reads run on the server's event loop).",
    )
    export_stale_seconds: float = Field(
        default=30.0,
        gt=0,
        description="An export job in progress whose runner's heartbeat has not moved for "
        "this long (its server stopped) is taken over by a running server, from its last "
        "committed position. Above 0, and well above the time one chunk takes to read and "
        "write (the heartbeat moves every quarter of it).",
    )
    subscription_endpoints: str = Field(
        default="",
        description="Comma-separated URL prefixes a Subscription's rest-hook endpoint must "
        "match (`https://hooks.example.gov.uk/fhir`, `https://*.example.gov.uk`, a port or "
        "`:*` after the host); https only, http only for loopback hosts; empty: no endpoint "
        "is allowed (Subscriptions hold their events for $events).",
    )
    subscription_private_networks: str = Field(
        default="",
        description="Comma-separated networks (`10.20.0.0/16`) an endpoint may be in although "
        "private; other private, loopback, link-local and reserved addresses are refused, "
        "when the Subscription is written and again whenever its host is looked up to deliver.",
    )
    notify_interval_seconds: float = Field(
        default=0.2,
        ge=0,
        le=60,
        description="How often this process's notifier looks for notifications to number and "
        "deliver; 0: not by this process.",
    )
    notify_max_failures: int = Field(
        default=10,
        ge=1,
        description="Failed deliveries in a row (the handshake included) after which a "
        "Subscription's status becomes error; its events are still kept for $events.",
    )
    notify_retry_seconds: float = Field(
        default=2.0,
        gt=0,
        description="The first retry's delay after a failed delivery; each next one doubles, "
        "up to `SAFEGUARD_NOTIFY_RETRY_MAX_SECONDS`, times 0.5 to 1 at random.",
    )
    notify_retry_max_seconds: float = Field(
        default=600.0, gt=0, description="The longest delay between retries of a delivery."
    )
    notify_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="How long a POST to an endpoint may take, unless its Subscription asks "
        "for less (backport-timeout).",
    )
    notify_event_retention: int = Field(
        default=30 * 86400,
        ge=60,
        description="How long a Subscription's numbered events are kept for $events: seconds, "
        "or a number with a unit (`30d`, the default).",
    )
    log_level: str = Field(
        default="INFO",
        description="The server's log level: `DEBUG`, `INFO` (one JSON line per request), "
        "`WARNING` or `ERROR`.",
    )

    @property
    def endpoint_allow_list(self) -> list[str]:
        """The entries of `subscription_endpoints` (parsed by `access.endpoints` at start)."""
        return _listed(self.subscription_endpoints)

    @property
    def private_network_list(self) -> list[str]:
        """The entries of `subscription_private_networks`."""
        return _listed(self.subscription_private_networks)

    @field_validator("export_retention", "notify_event_retention", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        """A duration as seconds: `86400`, `24h`, `90m`, `30s` or `2d`."""
        if not isinstance(value, str):
            return value
        found = DURATION.fullmatch(value.strip())
        if found is None:
            raise ValueError(f"{value!r} is not a duration such as 86400, 24h, 90m or 2d")
        return int(found.group(1)) * UNIT_SECONDS[found.group(2) or "s"]

    @property
    def canonical_base(self) -> str:
        """Where this server's own definitions live, without a trailing slash."""
        return (self.canonical_base_url or self.base_url).rstrip("/")

    @property
    def public_origin(self) -> str:
        """The scheme, host and port of the public FHIR base URL."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def cors_allow_list(self) -> list[str]:
        """The origins of `cors_origins`, blanks dropped."""
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def token_endpoint(self) -> str:
        """The URL of the OAuth token endpoint: the audience of client assertions."""
        return f"{self.public_origin}/auth/token"


def _listed(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


TABLE_BEGIN, TABLE_END = "<!-- settings:begin -->", "<!-- settings:end -->"


def _default_text(value: object) -> str:
    """A default as the environment would spell it."""
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"`{text}`"


def settings_rows() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) of every setting, in declaration order."""
    prefix = Settings.model_config.get("env_prefix", "")
    return [
        (f"{prefix}{name}".upper(), _default_text(info.default), info.description or "")
        for name, info in Settings.model_fields.items()
    ]


def settings_table() -> str:
    """Every setting as a Markdown table (the README's, `safeguard settings --markdown`)."""
    lines = ["| variable | default | description |", "| --- | --- | --- |"]
    for variable, default, description in settings_rows():
        escaped = description.replace("|", r"\|")
        lines.append(f"| `{variable}` | {default} | {escaped} |")
    return "\n".join(lines) + "\n"


def with_settings_table(text: str) -> str:
    """`text` (the README) with the table between its settings markers made afresh."""
    head, begin, rest = text.partition(TABLE_BEGIN)
    _, end, tail = rest.partition(TABLE_END)
    if not begin or not end:
        raise ValueError(f"no {TABLE_BEGIN} ... {TABLE_END} markers")
    return f"{head}{TABLE_BEGIN}\n{settings_table()}{TABLE_END}{tail}"


@lru_cache
def get_settings() -> Settings:
    """Settings built from the current environment (cached)."""
    return Settings()
