"""The OAuth endpoints: the token endpoint, the server's public keys, the SMART configuration.

Spec: https://hl7.org/fhir/smart-app-launch/backend-services.html and
https://hl7.org/fhir/smart-app-launch/conformance.html#using-well-known
"""

from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from app.access import Caller
from app.access.scopes import render
from app.access.trail import trail_of
from app.auth.assertions import ALGORITHMS, OAuthError, claimed_client
from app.auth.tokens import Authority
from app.fhir.context import CALLER

FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
CAPABILITIES = ["client-confidential-asymmetric", "permission-v2", "permission-v1"]


def authority(request: Request) -> Authority:
    """The Authority of the app serving this request."""
    found: Authority = request.app.state.authority
    return found


def _json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(document), status, headers, media_type="application/json")


async def _form(request: Request) -> dict[str, str]:
    """The form-encoded body; OAuthError if it is something else or too large."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != FORM:
        raise OAuthError("invalid_request", f"the body must be {FORM}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise OAuthError("invalid_request", "the body is too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


async def token(request: Request) -> Response:
    """The token endpoint: a client assertion exchanged for an access token (RFC 6749 §5).
    Spec: https://hl7.org/fhir/smart-app-launch/backend-services.html#obtaining-an-access-token"""
    trail = trail_of(request.scope)
    try:
        form = await _form(request)
        if trail is not None:
            trail.claimed_client = claimed_client(form.get("client_assertion", ""))
        client, issued = await authority(request).exchange(form)
    except OAuthError as error:
        refused = {"error": error.error, "error_description": error.description}
        return _json(refused, error.status, NO_STORE)
    request.scope[CALLER] = Caller(client.client_id, client.organisation, client.role)
    return _json(issued, headers=NO_STORE)


async def jwks(request: Request) -> Response:
    """The public keys access tokens are signed with (RFC 7517 JWKS)."""
    return _json(await authority(request).keys.published())


async def smart_configuration(request: Request) -> Response:
    """SMART's discovery document: where the token endpoint is and what it supports.
    Spec: https://hl7.org/fhir/smart-app-launch/conformance.html#metadata"""
    found = authority(request)
    every_type = {(kind, letter) for kind in found.known_types for letter in "cruds"}
    scopes = ["system/*.cruds", *render(frozenset(every_type)).split()]
    document = {
        "issuer": found.issuer,
        "jwks_uri": f"{found.issuer}/auth/jwks",
        "token_endpoint": found.settings.token_endpoint,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "scopes_supported": scopes,
        "response_types_supported": ["token"],
        "capabilities": CAPABILITIES,
    }
    return _json(document)


ROUTES = [
    Route("/auth/token", token, methods=["POST"], include_in_schema=False),
    Route("/auth/jwks", jwks, methods=["GET"], include_in_schema=False),
]
# Mounted rather than routed: a discovery document of OAuth, not a FHIR interaction, so it
# stays out of the FHIR operations the OpenAPI document lists.
FHIR_ROUTES = [
    Mount(
        "/fhir/.well-known",
        routes=[Route("/smart-configuration", smart_configuration, methods=["GET"])],
    ),
]
