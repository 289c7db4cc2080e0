"""The SMART configuration, the JWKS, the CapabilityStatement's security, key rotation."""

import time

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import KeySet

from app.auth import keys
from app.auth.keys import SigningKey, rotate
from tests.tokens import authority, forget_tokens, token_for


async def test_smart_configuration(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/smart-configuration")
    assert response.status_code == 200
    found = response.json()
    assert found["token_endpoint"] == "http://test/auth/token"
    assert found["grant_types_supported"] == ["client_credentials"]
    assert found["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert found["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert "client-confidential-asymmetric" in found["capabilities"]
    assert "permission-v2" in found["capabilities"]
    assert "system/*.cruds" in found["scopes_supported"]
    assert "system/AuditEvent.cruds" in found["scopes_supported"]
    assert found["jwks_uri"] == "http://test/auth/jwks"


async def test_capability_statement_names_smart_and_the_token_endpoint(
    client: httpx.AsyncClient,
) -> None:
    security = (await client.get("/metadata")).json()["rest"][0]["security"]
    coding = security["service"][0]["coding"][0]
    assert coding == {
        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
        "code": "SMART-on-FHIR",
    }
    uris = security["extension"][0]
    assert uris["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert uris["extension"] == [{"url": "token", "valueUri": "http://test/auth/token"}]


async def test_jwks_publishes_public_keys_only(client: httpx.AsyncClient) -> None:
    published = (await client.get("http://test/auth/jwks")).json()
    assert published["keys"]
    for key in published["keys"]:
        assert key["kty"] == "EC" and key["alg"] == "ES256" and key["kid"]
        assert "d" not in key


async def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    forget_tokens()
    old_token = await token_for(app, "rotation-client", scope="system/Patient.rs")
    new_kid = await rotate(authority(app).db, authority(app).lifetime)
    forget_tokens()
    new_token = await token_for(app, "rotation-client")
    forget_tokens()
    published = KeySet.import_key_set((await client.get("http://test/auth/jwks")).json())
    assert jwt.decode(new_token, published).header["kid"] == new_kid
    assert jwt.decode(old_token, published).header["kid"] != new_kid
    for token in (old_token, new_token):
        response = await client.get("/Patient", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


def _signed_by(key: SigningKey, issued_at: int, lifetime: int = 300) -> str:
    """A token as anyone holding `key` could sign it (a leaked key), issued at `issued_at`."""
    claims = {
        "iss": "http://test",
        "sub": "rotation-client",
        "aud": "http://test/fhir",
        "iat": issued_at,
        "exp": issued_at + lifetime,
        "scope": "system/Patient.rs",
        "role": "system",
        "organization": "Organization/org-1",
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key.key, ["ES256"])


async def _status(client: httpx.AsyncClient, token: str) -> int:
    response = await client.get("/Patient", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


@pytest.fixture
def fresh_view_of_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each check reads the key table (a process does so every REFRESH_SECONDS)."""
    monkeypatch.setattr(keys, "REFRESH_SECONDS", 0.0)


async def test_a_retired_key_signs_nothing_new_that_is_accepted(
    client: httpx.AsyncClient, app: FastAPI, fresh_view_of_keys: None
) -> None:
    old = await authority(app).keys.signer()
    before = _signed_by(old, int(time.time()) - 5)
    assert await _status(client, before) == 200
    await rotate(authority(app).db, authority(app).lifetime)
    assert await _status(client, before) == 200  # issued before: valid until it expires
    assert await _status(client, _signed_by(old, int(time.time()) + 1)) == 401
    assert await _status(client, _signed_by(old, int(time.time()) - 5, lifetime=86_400)) == 401


async def test_revoking_drops_every_earlier_key_in_every_process_without_a_restart(
    client: httpx.AsyncClient, app: FastAPI, fresh_view_of_keys: None
) -> None:
    forget_tokens()
    old_token = await token_for(app, "rotation-client", scope="system/Patient.rs")
    assert await _status(client, old_token) == 200  # now verified and kept by this process
    await rotate(authority(app).db, authority(app).lifetime, revoke=True)
    refused = await client.get("/Patient", headers={"Authorization": f"Bearer {old_token}"})
    assert refused.status_code == 401
    assert "no longer trusted" in refused.headers["www-authenticate"]
    forget_tokens()
    assert await _status(client, await token_for(app, "rotation-client")) == 200
