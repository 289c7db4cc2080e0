"""The token endpoint: a signed client assertion exchanged for an access token, and every way
an assertion is refused (RFC 6749 §5.2 errors, Cache-Control: no-store)."""

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import KeySet

from app.auth.clients import revoke
from tests.auth.helpers import (
    CARE,
    ask_token,
    claims,
    client_with_key,
    form,
    new_key,
    refused,
    signed,
)
from tests.tokens import authority


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("kind", ["EC", "RSA"])
async def test_a_signed_assertion_gets_a_token_for_the_registered_scope(
    client: httpx.AsyncClient, app: FastAPI, kind: str
) -> None:
    client_id, key = await client_with_key(app, kind)
    response = await ask_token(client, form(signed(key, claims(client_id))))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 300
    assert body["scope"] == "system/Flag.cruds system/Organization.rs system/Patient.crus"
    published = KeySet.import_key_set((await client.get("http://test/auth/jwks")).json())
    token = jwt.decode(body["access_token"], published, algorithms=["ES256"])
    assert token.claims["sub"] == client_id and token.claims["role"] == "health"
    assert token.claims["organization"] == "Organization/org-1"
    assert token.claims["aud"] == "http://test/fhir" and token.claims["iss"] == "http://test"
    assert token.claims["exp"] - token.claims["iat"] == 300
    read = await client.get("/Patient", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert read.status_code == 200


async def test_granted_scope_is_what_both_asked_and_registered_cover(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    client_id, key = await client_with_key(app)
    asked = "system/Flag.rs system/Condition.rs system/Patient.read"
    response = await ask_token(client, form(signed(key, claims(client_id)), scope=asked))
    assert response.json()["scope"] == "system/Flag.rs system/Patient.rs"


async def test_no_scope_in_common_is_invalid_scope(client: httpx.AsyncClient, app: FastAPI) -> None:
    client_id, key = await client_with_key(app)
    assertion = signed(key, claims(client_id))
    refused(await ask_token(client, form(assertion, scope="system/Condition.rs")), "invalid_scope")


async def test_a_malformed_scope_is_invalid_scope(client: httpx.AsyncClient, app: FastAPI) -> None:
    client_id, key = await client_with_key(app)
    assertion = signed(key, claims(client_id))
    refused(await ask_token(client, form(assertion, scope="system/Flag.xyz")), "invalid_scope")


async def test_another_grant_type_is_unsupported(client: httpx.AsyncClient, app: FastAPI) -> None:
    client_id, key = await client_with_key(app)
    data = form(signed(key, claims(client_id)), grant_type="password")
    refused(await ask_token(client, data), "unsupported_grant_type")


async def test_a_missing_assertion_is_invalid_request(client: httpx.AsyncClient) -> None:
    data = form("x")
    del data["client_assertion"]
    refused(await ask_token(client, data), "invalid_request")


async def test_a_json_body_is_invalid_request(client: httpx.AsyncClient) -> None:
    response = await client.post("http://test/auth/token", json=form("x"))
    refused(response, "invalid_request")


async def test_alg_none_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    client_id, key = await client_with_key(app)
    header = _b64(json.dumps({"alg": "none", "kid": key.kid}).encode())
    body = _b64(json.dumps(claims(client_id)).encode())
    assert "RS384" in refused(await ask_token(client, form(f"{header}.{body}.")))


async def test_hs256_keyed_with_the_public_key_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    client_id, key = await client_with_key(app, "RSA")
    public = json.dumps(key.as_dict(private=False)).encode()
    signing_input = ".".join(
        _b64(json.dumps(part).encode())
        for part in ({"alg": "HS256", "kid": key.kid}, claims(client_id))
    )
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    refused(await ask_token(client, form(f"{signing_input}.{_b64(mac)}")))


async def test_an_expired_assertion_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    client_id, key = await client_with_key(app)
    old = int(time.time()) - 600
    body = claims(client_id, iat=old, exp=old + 120)
    assert "expired" in refused(await ask_token(client, form(signed(key, body))))


async def test_an_exp_more_than_five_minutes_ahead_is_refused(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    client_id, key = await client_with_key(app)
    body = claims(client_id, exp=int(time.time()) + 3600)
    refused(await ask_token(client, form(signed(key, body))))


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_an_assertion_not_yet_valid_is_refused(
    client: httpx.AsyncClient, app: FastAPI, claim: str
) -> None:
    client_id, key = await client_with_key(app)
    body = claims(client_id, **{claim: int(time.time()) + 120})
    assert "future" in refused(await ask_token(client, form(signed(key, body))))


async def test_a_wrong_audience_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    client_id, key = await client_with_key(app)
    body = claims(client_id, aud="http://test/fhir")
    assert "aud" in refused(await ask_token(client, form(signed(key, body))))


async def test_a_reused_jti_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    client_id, key = await client_with_key(app)
    first = claims(client_id)
    assert (await ask_token(client, form(signed(key, first)))).status_code == 200
    again = signed(key, first | {"exp": first["exp"] + 1})
    assert "jti" in refused(await ask_token(client, form(again)))


async def test_an_unknown_kid_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    client_id, key = await client_with_key(app)
    assertion = signed(key, claims(client_id), kid="not-registered")
    assert "not-registered" in refused(await ask_token(client, form(assertion)))


async def test_an_unknown_client_is_refused(client: httpx.AsyncClient) -> None:
    key = new_key()
    refused(await ask_token(client, form(signed(key, claims("nobody-registered")))))


async def test_an_array_valued_iss_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    client_id, key = await client_with_key(app)
    body = claims(client_id, iss=[client_id])
    assert "iss" in refused(await ask_token(client, form(signed(key, body))))


async def test_a_tampered_signature_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    client_id, key = await client_with_key(app)
    header, _, signature = signed(key, claims(client_id)).split(".")
    forged = _b64(json.dumps(claims(client_id, sub=client_id, exp=None) | {"exp": 1}).encode())
    other = _b64(json.dumps(claims(client_id)).encode())
    for assertion in (f"{header}.{other}.{signature}", f"{header}.{forged}.{signature}"):
        assert "signature" in refused(await ask_token(client, form(assertion)))


async def test_a_key_of_another_client_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    client_id, _ = await client_with_key(app)
    _, other_key = await client_with_key(app)
    refused(await ask_token(client, form(signed(other_key, claims(client_id)))))


async def test_a_revoked_client_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    client_id, key = await client_with_key(app)
    assert await revoke(authority(app).db, client_id)
    refused(await ask_token(client, form(signed(key, claims(client_id)), scope=CARE)))
