"""A client's signed assertion (RFC 7523 client authentication), as SMART Backend Services
profiles it: RS384 or ES384, signed with a key of the client's JWKS chosen by `kid`; iss and
sub the client id; aud the token endpoint; exp at most five minutes ahead; a jti never used
twice while the assertion lives. Every failure is `invalid_client` (RFC 6749 §5.2).
Spec: https://hl7.org/fhir/smart-app-launch/backend-services.html#authenticating-to-the-token-endpoint
"""

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, RSAKey
from joserfc.jws import extract_compact

from app.auth.clients import Client, find
from app.storage.db import Connection

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_LIFETIME = 300  # seconds an assertion may live (exp - now)
LEEWAY = 30  # seconds of clock difference tolerated on exp, nbf and iat
MAX_JTI = 255


class OAuthError(Exception):
    """An OAuth error response: `error` code, description, HTTP status (RFC 6749 §5.2)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def invalid_client(description: str) -> OAuthError:
    """Client authentication failed (401)."""
    return OAuthError("invalid_client", description, 401)


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A client whose assertion passed, and the assertion's jti and expiry (to record)."""

    client: Client
    jti: str
    expires_at: int


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, not yet verified."""
    try:
        compact = extract_compact(assertion.encode())
        claims = orjson.loads(compact.payload)
    except (JoseError, ValueError, TypeError) as exc:
        raise invalid_client("the client assertion is not a signed JWT") from exc
    if not isinstance(claims, dict):
        raise invalid_client("the client assertion's claims are not a JSON object")
    return dict(compact.headers()), claims


def claimed_client(assertion: str) -> str | None:
    """The client id an assertion claims (its `iss`), unverified: for the audit record of a
    token request, whether or not it authenticates."""
    try:
        _, claims = _unverified(assertion)
    except OAuthError:
        return None
    issuer = claims.get("iss")
    return issuer[:128] if isinstance(issuer, str) else None


async def authenticate(conn: Connection, assertion: str, audience: str, now: int) -> Authenticated:
    """The client an assertion authenticates, once its signature and claims are checked."""
    header, claims = _unverified(assertion)
    if header.get("alg") not in ALGORITHMS:
        raise invalid_client(f"the assertion must be signed with one of {', '.join(ALGORITHMS)}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise invalid_client("the assertion's header names no kid")
    issuer, subject = claims.get("iss"), claims.get("sub")
    if not isinstance(issuer, str) or not isinstance(subject, str) or issuer != subject:
        raise invalid_client("iss and sub must both be the client id")
    client = await find(conn, issuer)
    if client is None or client.revoked_at is not None:
        raise invalid_client("no such client, or it was revoked")
    _verify_signature(assertion, _key(client, kid))
    return Authenticated(client, _jti(claims), _check_times(claims, now, audience))


def _key(client: Client, kid: str) -> Key:
    matching = [key for key in client.keys if key.kid == kid]
    if not matching:
        raise invalid_client(f"no key {kid!r} is registered for the client")
    return matching[0]


def _verify_signature(assertion: str, key: Key) -> None:
    try:
        jwt.decode(assertion, key, algorithms=list(ALGORITHMS))
    except (JoseError, ValueError) as exc:
        raise invalid_client("the assertion's signature does not verify") from exc


def _jti(claims: dict[str, Any]) -> str:
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI:
        raise invalid_client(f"the assertion needs a jti of 1 to {MAX_JTI} characters")
    return jti


def _check_times(claims: dict[str, Any], now: int, audience: str) -> int:
    """The assertion's exp, once exp, nbf, iat and aud are checked."""
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise invalid_client(f"the assertion's aud must be {audience}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise invalid_client("the assertion needs a numeric exp")
    if exp <= now - LEEWAY:
        raise invalid_client("the assertion has expired")
    if exp > now + MAX_LIFETIME + LEEWAY:
        raise invalid_client(f"the assertion's exp is more than {MAX_LIFETIME} s ahead")
    for name in ("nbf", "iat"):
        moment = claims.get(name)
        if moment is not None and (not isinstance(moment, int | float) or moment > now + LEEWAY):
            raise invalid_client(f"the assertion's {name} is in the future")
    return exp


def sign_assertion(
    client_id: str, key: ECKey | RSAKey, audience: str, now: int, lifetime: int = MAX_LIFETIME
) -> str:
    """A client assertion as a client signs it: what `safeguard token` and tests send."""
    algorithm = "ES384" if isinstance(key, ECKey) else "RS384"
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "exp": now + lifetime,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode({"alg": algorithm, "kid": str(key.kid)}, claims, key, [algorithm])


async def record_jti(conn: Connection, authenticated: Authenticated, now: int) -> None:
    """Remember the assertion's jti until it expires; a reused one is WriteConflict.
    Expired rows are purged first."""
    await conn.execute("DELETE FROM assertion_jti WHERE expires_at < $1", now - LEEWAY)
    await conn.execute(
        "INSERT INTO assertion_jti (client_id, jti, expires_at) VALUES ($1, $2, $3)",
        authenticated.client.client_id,
        authenticated.jti,
        authenticated.expires_at,
    )
