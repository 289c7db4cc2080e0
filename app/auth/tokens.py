"""The token endpoint's logic, and access tokens checked on every request.

An access token is a JWT signed ES256 by the server's current key (`keys`): iss the server's
origin, sub the client id, aud the FHIR base URL, exp, iat, jti, scope (what was granted),
role and organization. A verified token is kept by its text until it expires, so a request
with a token seen before costs a dict lookup and the revocation check (`revocation`).
Spec: https://hl7.org/fhir/smart-app-launch/backend-services.html#issue-access-token
"""

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import extract_compact

from app.access import Caller, Role, caller_for
from app.access.caller import ROLES
from app.access.scopes import intersect, parse, render
from app.auth import assertions
from app.auth.assertions import ASSERTION_TYPE, OAuthError, invalid_client
from app.auth.clients import Client, find, known_types
from app.auth.keys import ALGORITHM, KeyRing
from app.auth.revocation import revocations
from app.errors import FhirError, Issue, Unauthorized, WriteConflict
from app.settings import Settings
from app.storage.db import Database

MAX_CACHED = 10_000  # verified tokens kept; past that, the expired ones are dropped


@dataclass(frozen=True, slots=True)
class Verified:
    """A verified access token: its caller, when it expires, which key signed it and when."""

    caller: Caller
    expires_at: int
    kid: str  # the server key that signed it
    issued_at: int  # seconds since epoch


def bad_token(description: str) -> Unauthorized:
    """401 for a token that was sent but cannot be used (RFC 6750 §3.1)."""
    issue = Issue(f"the access token cannot be used: {description}", "login")
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    return Unauthorized([issue], challenge=challenge)


class Authority:
    """Issues access tokens to authenticated clients and resolves tokens to callers."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings, self.db = settings, db
        self.lifetime = settings.token_lifetime_seconds
        self.keys = KeyRing(db, self.lifetime)
        self.known_types = known_types()
        self.issuer = settings.public_origin
        self.audience = settings.base_url.rstrip("/")
        self.revocations = revocations(settings.database_url, db)
        self._verified: dict[str, Verified] = {}

    def close(self) -> None:
        """Let go of what the revocation check holds."""
        self.revocations.close()

    async def exchange(self, form: Mapping[str, str]) -> tuple[Client, dict[str, Any]]:
        """The client a client_credentials request authenticates, and its token response."""
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "grant_type must be client_credentials")
        for name in ("client_assertion_type", "client_assertion", "scope"):
            if not form.get(name):
                raise OAuthError("invalid_request", f"{name} is missing")
        if form["client_assertion_type"] != ASSERTION_TYPE:
            raise invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}")
        now = int(time.time())
        async with self.db.reader() as conn:
            found = await assertions.authenticate(
                conn, form["client_assertion"], self.settings.token_endpoint, now
            )
        granted = self._granted(found.client, form["scope"])
        try:
            async with self.db.transaction() as conn:
                await assertions.record_jti(conn, found, now)
        except WriteConflict as exc:
            raise invalid_client("the assertion's jti was used already") from exc
        return found.client, await self._issue(found.client, granted, now)

    def _granted(self, client: Client, scope: str) -> str:
        """What both the request and the registration cover, as a scope string."""
        try:
            asked = parse(scope, self.known_types)
        except FhirError as exc:
            raise OAuthError("invalid_scope", str(exc)) from exc
        granted = intersect(asked, parse(client.scope, self.known_types))
        if not granted:
            raise OAuthError("invalid_scope", "none of the scopes asked for is registered")
        return render(granted)

    async def _issue(self, client: Client, scope: str, now: int) -> dict[str, Any]:
        signer = await self.keys.signer()
        claims = {
            "iss": self.issuer,
            "sub": client.client_id,
            "aud": self.audience,
            "exp": now + self.lifetime,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "scope": scope,
            "role": client.role,
            "organization": f"Organization/{client.organisation}",
        }
        header = {"alg": ALGORITHM, "kid": signer.kid, "typ": "at+jwt"}
        token = jwt.encode(header, claims, signer.key, [ALGORITHM])
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.lifetime,
            "scope": scope,
        }

    async def caller(self, token: str) -> Caller:
        """The caller a bearer token stands for; Unauthorized if it cannot be used."""
        verified = self._verified.get(token)
        if verified is None:
            verified = await self._verify(token)
            if len(self._verified) >= MAX_CACHED:
                self._forget_expired()
            self._verified[token] = verified
        if verified.expires_at <= time.time():
            del self._verified[token]
            raise bad_token("it has expired")
        if not await self.keys.trusts(verified.kid, verified.issued_at):
            del self._verified[token]
            raise bad_token("its signing key is no longer trusted")
        if not await self.revocations.live(verified.caller.subject):
            raise bad_token("its client was revoked")
        return verified.caller

    def _forget_expired(self) -> None:
        now = time.time()
        self._verified = {k: v for k, v in self._verified.items() if v.expires_at > now}
        if len(self._verified) >= MAX_CACHED:
            self._verified.clear()

    async def _verify(self, token: str) -> Verified:
        try:
            kid = extract_compact(token.encode()).headers().get("kid")
        except (JoseError, ValueError) as exc:
            raise bad_token("it is not a JWT") from exc
        if not isinstance(kid, str):
            raise bad_token("it names no key (kid)")
        key = await self.keys.verifier(kid)
        if key is None:
            raise bad_token("it was not signed by this server")
        try:
            claims = jwt.decode(token, key, algorithms=[ALGORITHM]).claims
            jwt.JWTClaimsRegistry(
                leeway=assertions.LEEWAY,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                iat={"essential": True},
                sub={"essential": True},
            ).validate(claims)
            issued_at, expires_at = int(claims["iat"]), int(claims["exp"])
        except (JoseError, ValueError, TypeError) as exc:
            raise bad_token("its signature or claims do not hold") from exc
        if expires_at - issued_at > self.lifetime:  # none of ours lives longer
            raise bad_token("it lives longer than this server's tokens do")
        return Verified(self._caller_of(claims), expires_at, kid, issued_at)

    def _caller_of(self, claims: dict[str, Any]) -> Caller:
        role, organisation = claims.get("role"), claims.get("organization")
        if role not in ROLES or not isinstance(organisation, str):
            raise bad_token("it names no role or organization")
        grants = parse(str(claims.get("scope", "")), self.known_types)
        org_id = organisation.removeprefix("Organization/")
        return caller_for(str(claims["sub"]), org_id, cast(Role, role), grants, self.known_types)

    async def local_token(self, client_id: str) -> str:
        """An access token for a client with a local key, through the real token logic: an
        assertion signed with its key, exchanged for its registered scope."""
        async with self.db.reader() as conn:
            client = await find(conn, client_id)
        if client is None or client.local_key is None:
            raise OAuthError("invalid_client", f"{client_id} has no local key to sign with")
        private = orjson.loads(client.local_key)
        key = (
            ECKey.import_key(private) if private.get("kty") == "EC" else RSAKey.import_key(private)
        )
        assertion = assertions.sign_assertion(
            client_id, key, self.settings.token_endpoint, int(time.time())
        )
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": client.scope,
        }
        _, response = await self.exchange(form)
        return str(response["access_token"])
