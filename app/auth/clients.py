"""The registered OAuth clients (`oauth_client`): who they are, what they may ask for, and the
public keys their assertions must be signed with.

A client is registered by an administrator (`safeguard clients add`) with a JWKS of RSA or EC
public keys, each with a `kid`; demo clients get a local key pair generated here, the private
half kept so that `safeguard token` can sign their assertions.
Spec: https://hl7.org/fhir/smart-app-launch/backend-services.html#registering-a-smart-backend-service-communicating-public-keys
"""

import re
from dataclasses import dataclass
from typing import Any, cast

import orjson
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey, generate_key

from app.access import Role
from app.access.caller import ROLES
from app.access.scopes import parse
from app.auth.revocation import announce
from app.clock import now_micros
from app.errors import FhirError
from app.registry import RESOURCE_TYPES
from app.storage.db import Connection, Database

CLIENT_ID = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
ORGANISATION = re.compile(r"^Organization/((?!\.+$)[A-Za-z0-9\-.]{1,64})$")
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
MIN_RSA_BITS = 2048
COLUMNS = "client_id, organisation, role, scope, jwks, local_key, revoked_at"
LOCAL_ALGORITHM = "ES384"


class BadClient(ValueError):
    """A registration that cannot be accepted (the message says why)."""


@dataclass(frozen=True, slots=True)
class Client:
    """One registered client."""

    client_id: str
    organisation: str  # the id of its Organization
    role: Role
    scope: str
    jwks: str
    local_key: str | None
    revoked_at: int | None

    @property
    def keys(self) -> KeySet:
        """Its public keys."""
        return KeySet.import_key_set(orjson.loads(self.jwks))


def known_types() -> frozenset[str]:
    """The resource types a scope may name: those served here, and AuditEvent."""
    return frozenset(RESOURCE_TYPES) | {"AuditEvent"}


def checked_jwks(text: str) -> str:
    """The JWKS as stored: RSA (2048 bits or more) or EC public keys, each with a kid."""
    try:
        document = orjson.loads(text)
        keys = document["keys"] if isinstance(document, dict) else None
    except (orjson.JSONDecodeError, KeyError) as exc:
        raise BadClient("the JWKS is not a JSON object with `keys`") from exc
    if not isinstance(keys, list) or not keys:
        raise BadClient("the JWKS holds no keys")
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise BadClient("every key must be an RSA or EC key")
        if not isinstance(key.get("kid"), str) or not key["kid"]:
            raise BadClient("every key must have a kid")
        if PRIVATE_MEMBERS & key.keys():
            raise BadClient(f"key {key['kid']} holds private members: register public keys only")
    try:
        imported = KeySet.import_key_set(cast(Any, document))
    except (JoseError, ValueError, TypeError) as exc:
        raise BadClient(f"a key cannot be read: {exc}") from exc
    for key in imported:
        if isinstance(key, RSAKey) and key.public_key.key_size < MIN_RSA_BITS:
            raise BadClient(f"key {key.kid} is shorter than {MIN_RSA_BITS} bits")
    return orjson.dumps({"keys": keys}).decode()


def checked_scope(scope: str) -> str:
    """The scope string, if every scope in it is a SMART system scope on a known type."""
    try:
        grants = parse(scope, known_types())
    except FhirError as exc:
        raise BadClient(str(exc)) from exc
    if not grants:
        raise BadClient("the scope grants nothing: name at least one system/ scope")
    return " ".join(scope.split())


def local_key_pair() -> tuple[str, str]:
    """A new private JWK (ES384) and the JWKS of its public half."""
    key = generate_key("EC", "P-384", parameters={"alg": LOCAL_ALGORITHM}, auto_kid=True)
    public = key.as_dict(private=False)
    return orjson.dumps(key.as_dict(private=True)).decode(), orjson.dumps(
        {"keys": [public]}
    ).decode()


def _row(row: Any) -> Client:
    return Client(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


async def register(
    db: Database,
    client_id: str,
    organisation: str,
    role: str,
    scope: str,
    jwks: str,
    local_key: str | None = None,
) -> Client:
    """Register a client; BadClient says what is wrong with it (an id in use, too)."""
    if not CLIENT_ID.match(client_id):
        raise BadClient("a client id is 1 to 128 letters, digits and . _ ~ -")
    match = ORGANISATION.match(organisation)
    if match is None:
        raise BadClient("the organisation is `Organization/<id>`")
    if role not in ROLES:
        raise BadClient(f"the role is one of {', '.join(ROLES)}")
    client = Client(
        client_id,
        match.group(1),
        role,
        checked_scope(scope),
        checked_jwks(jwks),
        local_key,
        None,
    )
    async with db.transaction() as conn:
        if await find(conn, client_id) is not None:
            raise BadClient(f"client {client_id} is registered already")
        await conn.execute(
            f"INSERT INTO oauth_client ({COLUMNS}, created_at) "  # noqa: S608 (fixed columns)
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            *(client.client_id, client.organisation, client.role, client.scope, client.jwks),
            *(client.local_key, None, now_micros()),
        )
        await announce(conn, client_id)
    return client


async def find(conn: Connection, client_id: str) -> Client | None:
    """The client of `client_id`, revoked or not."""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM oauth_client WHERE client_id = $1",  # noqa: S608
        client_id,
    )
    return None if row is None else _row(row)


async def every_client(db: Database) -> list[Client]:
    """Every registered client, by id."""
    async with db.reader() as conn:
        rows = await conn.fetch(f"SELECT {COLUMNS} FROM oauth_client ORDER BY client_id")  # noqa: S608
    return [_row(row) for row in rows]


async def replace_keys(db: Database, client_id: str, jwks: str) -> None:
    """Give a live client new public keys: its next assertion must be signed with one of them;
    tokens it holds stay valid until they expire. BadClient if it is not live or the JWKS is
    not usable."""
    checked = checked_jwks(jwks)
    async with db.transaction() as conn:
        if (found := await find(conn, client_id)) is None or found.revoked_at is not None:
            raise BadClient(f"no live client {client_id}")
        await conn.execute(
            "UPDATE oauth_client SET jwks = $1 WHERE client_id = $2", checked, client_id
        )


async def revoke(db: Database, client_id: str) -> bool:
    """Revoke a client: its tokens stop working at once. False if no such live client."""
    async with db.transaction() as conn:
        if (found := await find(conn, client_id)) is None or found.revoked_at is not None:
            return False
        await conn.execute(
            "UPDATE oauth_client SET revoked_at = $1 WHERE client_id = $2", now_micros(), client_id
        )
        await announce(conn, client_id)
    return True
