"""CORS, only for the origins the operator allows (SAFEGUARD_CORS_ORIGINS); off by default.

A preflight is answered here, before authentication, with 204 (a browser sends it without the
bearer token); an actual response gets `Access-Control-Allow-Origin` only for an allowed origin.
Spec: https://fetch.spec.whatwg.org/#http-cors-protocol
"""

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Exist",
    "If-None-Match",
    "Prefer",
    "X-Request-ID",
    "X-Correlation-ID",
)
EXPOSED_HEADERS = ("ETag", "Location", "Last-Modified", "X-Request-ID", "Content-Location")
_BODY_HEADERS = frozenset({"content-length", "content-type"})


class Cors(CORSMiddleware):
    """Starlette's CORS with this API's methods and headers; a preflight it allows is 204."""

    def __init__(self, app: ASGIApp, origins: list[str]) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 200:
            return response
        kept = {k: v for k, v in response.headers.items() if k not in _BODY_HEADERS}
        return Response(status_code=204, headers=kept)
