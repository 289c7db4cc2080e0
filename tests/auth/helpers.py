"""Clients with keys of their own, and their assertions, for the tests of `app.auth`."""

import json
import time
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey, generate_key

from app.auth.assertions import ASSERTION_TYPE
from app.auth.clients import register
from tests.tokens import authority

TOKEN_URL = "http://test/auth/token"
CARE = "system/Patient.crus system/Flag.cruds system/Organization.rs"


def new_key(kind: str = "EC") -> ECKey | RSAKey:
    """A fresh private key with a kid: EC P-384 (ES384) or RSA 2048 (RS384)."""
    if kind == "EC":
        return generate_key("EC", "P-384", auto_kid=True)
    return generate_key("RSA", 2048, auto_kid=True)


async def client_with_key(
    app: FastAPI, kind: str = "EC", role: str = "health", scope: str = CARE
) -> tuple[str, ECKey | RSAKey]:
    """A newly registered client (its id) and its private key."""
    client_id = f"client-{uuid.uuid4().hex[:10]}"
    key = new_key(kind)
    jwks = json.dumps({"keys": [key.as_dict(private=False)]})
    await register(authority(app).db, client_id, "Organization/org-1", role, scope, jwks)
    return client_id, key


def claims(client_id: str, **changes: Any) -> dict[str, Any]:
    """An assertion's claims, valid now, with `changes` (None removes a claim)."""
    now = int(time.time())
    found = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "iat": now,
        "jti": str(uuid.uuid4()),
    } | changes
    return {name: value for name, value in found.items() if value is not None}


def signed(key: ECKey | RSAKey, body: dict[str, Any], **header: Any) -> str:
    """`body` signed with `key` (ES384 or RS384), kid in the header unless told otherwise."""
    algorithm = "ES384" if isinstance(key, ECKey) else "RS384"
    return jwt.encode({"alg": algorithm, "kid": key.kid} | header, body, key, [algorithm])


def form(assertion: str, scope: str = CARE, **changes: str) -> dict[str, str]:
    """A client_credentials token request."""
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        "scope": scope,
    } | changes


async def ask_token(client: httpx.AsyncClient, data: dict[str, str]) -> httpx.Response:
    """POST a token request (form-encoded) to the token endpoint."""
    return await client.post(TOKEN_URL, data=data)


def refused(response: httpx.Response, error: str = "invalid_client") -> str:
    """The error_description of an OAuth refusal, once its status, code and headers hold."""
    assert response.status_code == (401 if error == "invalid_client" else 400), response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error, body
    description: str = body["error_description"]
    return description
