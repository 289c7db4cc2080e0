"""How the benchmarks authenticate: as a production SMART Backend Services client would.

Before the server starts, a bench client is registered in the bench database (in-process,
`app.auth.clients.register`) with the public half of an EC key generated for this run; the
private half stays in this process, never in the database or the repository. Its access
token is then obtained over HTTP like any client's: an assertion signed with that key,
exchanged at `POST /auth/token`, and sent as `Authorization: Bearer` on every request.
A token is replaced when it has less than `MARGIN` seconds left, so a long run never sends
an expired one (the bench server is started with a lifetime of `LIFETIME` seconds anyway).
Spec: https://hl7.org/fhir/smart-app-launch/backend-services.html
"""

import asyncio
import threading
import time
from collections.abc import Generator

import httpx
import orjson
from joserfc.jwk import ECKey

from app.auth.assertions import ASSERTION_TYPE, sign_assertion
from app.auth.clients import local_key_pair, register
from app.storage.db import make_database

CLIENT_ID = "bench"
ORGANISATION = "Organization/bench-org"
ROLE = "system"
SCOPE = "system/*.cruds"
LIFETIME = 3600  # seconds: SAFEGUARD_TOKEN_LIFETIME_SECONDS for the bench server (its maximum)
MARGIN = 60  # seconds before expiry a token is replaced


async def _register(
    database_url: str, client_id: str, organisation: str, role: str, public_jwks: str
) -> None:
    db = make_database(database_url, 1, 2)
    await db.open()
    try:
        await register(db, client_id, organisation, role, SCOPE, public_jwks)
    finally:
        await db.close()


def register_authority(database_url: str, client_id: str, organisation: str) -> None:
    """Register a local-authority client of `organisation` (`Organization/id`), which makes
    the Organization a local authority, one notifications can reach (its key is never used)."""
    _, public = local_key_pair()
    asyncio.run(_register(database_url, client_id, organisation, "local-authority", public))


def register_client(database_url: str) -> ECKey:
    """Register the bench client with a fresh key's public half; the private key."""
    private, public = local_key_pair()
    asyncio.run(_register(database_url, CLIENT_ID, ORGANISATION, ROLE, public))
    return ECKey.import_key(orjson.loads(private))


class Tokens:
    """The bench client's access token at one server, obtained (again) when needed.
    Safe to share between threads."""

    def __init__(self, origin: str, key: ECKey) -> None:
        self.origin, self.key = origin, key
        self._token, self._expires_at = "", 0.0
        self._lock = threading.Lock()
        self.issued = 0  # tokens obtained so far

    def token(self) -> str:
        """A token with at least `MARGIN` seconds left."""
        with self._lock:
            if self._expires_at - time.time() < MARGIN:
                self._token, self._expires_at = self._exchange()
                self.issued += 1
            return self._token

    def _exchange(self) -> tuple[str, float]:
        """A new token from the token endpoint, for a freshly signed assertion."""
        endpoint = f"{self.origin}/auth/token"
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": sign_assertion(CLIENT_ID, self.key, endpoint, int(time.time())),
            "scope": SCOPE,
        }
        asked = time.time()
        response = httpx.post(endpoint, data=form, timeout=10.0)
        if response.status_code != 200:
            raise RuntimeError(f"token request refused: {response.status_code} {response.text}")
        issued = response.json()
        return str(issued["access_token"]), asked + float(issued["expires_in"])

    def header(self) -> str:
        """The Authorization header's value."""
        return f"Bearer {self.token()}"

    def headers(self) -> dict[str, str]:
        """The Authorization header, as a dict to merge into a request's headers."""
        return {"Authorization": self.header()}


class BearerAuth(httpx.Auth):
    """httpx authentication: every request carries the current token."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Set the Authorization header, then send."""
        request.headers["Authorization"] = self.tokens.header()
        yield request
