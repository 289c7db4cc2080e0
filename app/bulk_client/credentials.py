"""A client's access token for a FHIR server, as SMART Backend Services obtains it: the token
endpoint found from the server's `.well-known/smart-configuration`, an assertion signed with
the client's private key (a JWK, or PEM with its kid), exchanged for a bearer token; obtained
again shortly before it expires. Or a token given as it is, used until the server refuses it.
Spec: https://hl7.org/fhir/smart-app-launch/backend-services.html
"""

import time
from pathlib import Path

import httpx
import orjson
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from app.auth.assertions import ASSERTION_TYPE, sign_assertion

MARGIN = 60  # seconds before its expiry a token is replaced
DEFAULT_SCOPE = "system/*.rs"


class ClientError(Exception):
    """The export cannot go on (the message says why, with no data of the export)."""


def read_key(path: Path, kid: str | None = None) -> ECKey | RSAKey:
    """A private key from a file: a JWK (JSON; its kid unless `kid` is given) or PEM (kid:
    `kid`, else the key's RFC 7638 thumbprint, as keys registered without one are named)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ClientError(f"cannot read the key file {path}: {exc.strerror}") from exc
    try:
        return _import_key(text, kid)
    except (JoseError, ValueError, TypeError) as exc:
        raise ClientError(f"{path} holds no private EC or RSA key: {exc}") from exc


def _import_key(text: bytes, kid: str | None) -> ECKey | RSAKey:
    if text.lstrip().startswith(b"{"):
        found = orjson.loads(text)
        if not isinstance(found, dict) or "d" not in found:
            raise ValueError("not a private JWK")
        key = (ECKey if found.get("kty") == "EC" else RSAKey).import_key(found)
    else:
        key = _pem_key(text)
    if not key.is_private:
        raise ValueError("the key is public")
    if kid is not None or key.kid is None:
        key = type(key).import_key(key.as_dict(private=True), {"kid": kid or key.thumbprint()})
    return key


def _pem_key(text: bytes) -> ECKey | RSAKey:
    try:
        return ECKey.import_key(text)
    except (JoseError, ValueError, TypeError):
        return RSAKey.import_key(text)


async def token_endpoint(client: httpx.AsyncClient, server: str) -> str:
    """The token endpoint the server publishes (SMART discovery)."""
    url = f"{server.rstrip('/')}/.well-known/smart-configuration"
    response = await client.get(url, headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise ClientError(f"GET {url}: {response.status_code}; give --token-url")
    endpoint = response.json().get("token_endpoint")
    if not isinstance(endpoint, str):
        raise ClientError(f"{url} names no token_endpoint; give --token-url")
    return endpoint


class Credentials:
    """Where a bearer token comes from: a signed assertion exchanged now and again, or a token
    given as it is."""

    def __init__(
        self,
        *,
        token: str | None = None,
        client_id: str | None = None,
        key: ECKey | RSAKey | None = None,
        scope: str = DEFAULT_SCOPE,
        token_url: str | None = None,
    ) -> None:
        if token is None and (client_id is None or key is None):
            raise ClientError("give --token, or --client-id with --key")
        self.client_id, self.key, self.scope, self.token_url = client_id, key, scope, token_url
        self._token, self._expires_at = token, float("inf") if token else 0.0

    async def header(self, client: httpx.AsyncClient, server: str) -> dict[str, str]:
        """The Authorization header, with a token that has at least `MARGIN` seconds left."""
        if self._token is None or self._expires_at - time.time() < MARGIN:
            self._token, self._expires_at = await self._exchange(client, server)
        return {"Authorization": f"Bearer {self._token}"}

    async def _exchange(self, client: httpx.AsyncClient, server: str) -> tuple[str, float]:
        """A new token for a freshly signed assertion (RFC 7523, SMART Backend Services)."""
        assert self.client_id is not None and self.key is not None
        if self.token_url is None:
            self.token_url = await token_endpoint(client, server)
        asked = time.time()
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": sign_assertion(
                self.client_id, self.key, self.token_url, int(asked)
            ),
            "scope": self.scope,
        }
        response = await client.post(self.token_url, data=form)
        if response.status_code != 200:
            raise ClientError(f"token request refused: {response.status_code} {_oauth(response)}")
        issued = response.json()
        return str(issued["access_token"]), asked + float(issued.get("expires_in", 300))


def _oauth(response: httpx.Response) -> str:
    """An OAuth error response's code and description, or the start of its text."""
    try:
        found = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(found, dict):
        return response.text[:200]
    return f"{found.get('error', '')}: {found.get('error_description', '')}"
