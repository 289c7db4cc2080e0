"""Access tokens for tests: a client registered with a fresh local key, its assertion
exchanged in-process through the real token logic (`Authority.local_token`)."""

import time

from fastapi import FastAPI

from app.auth.clients import find, local_key_pair, register
from app.auth.tokens import Authority

SYSTEM_CLIENT = "test-system"
MARGIN = 60  # seconds before expiry a cached token is replaced

_tokens: dict[tuple[str, str, str], tuple[str, float]] = {}


def authority(app: FastAPI) -> Authority:
    """The Authority inside an app."""
    found: Authority = app.state.authority
    return found


async def token_for(
    app: FastAPI,
    client_id: str = SYSTEM_CLIENT,
    role: str = "system",
    scope: str = "system/*.cruds",
    organisation: str = "Organization/test-org",
) -> str:
    """A valid access token of `client_id`, registered (with these details) if it is not."""
    issuer = authority(app)
    key = (issuer.settings.database_url, issuer.settings.base_url, client_id)
    cached = _tokens.get(key)
    if cached is not None and cached[1] > time.time() + MARGIN:
        return cached[0]
    async with issuer.db.reader() as conn:
        known = await find(conn, client_id)
    if known is None:
        private, public = local_key_pair()
        await register(issuer.db, client_id, organisation, role, scope, public, private)
    token = await issuer.local_token(client_id)
    _tokens[key] = (token, time.time() + issuer.lifetime)
    return token


def forget_tokens() -> None:
    """Drop every cached token (after a test changes clients or keys underneath)."""
    _tokens.clear()


async def bearer(app: FastAPI, client_id: str = SYSTEM_CLIENT, **details: str) -> dict[str, str]:
    """The Authorization header of `client_id`'s token."""
    return {"Authorization": f"Bearer {await token_for(app, client_id, **details)}"}
