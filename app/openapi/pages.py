"""The API's browsable pages, /docs (Swagger UI) and /redoc (ReDoc), served offline.

FastAPI's own pages load their scripts, styles and favicon from a CDN (and ReDoc its fonts
from Google), so on a network that reaches nothing outside, a hospital's, they are blank.
Here every asset comes from the installed fastapi-offline package (Swagger UI 5, ReDoc 2),
mounted at ASSETS: the pages name no origin but this server's.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

DOCS, REDOC, OAUTH2_REDIRECT = "/docs", "/redoc", "/docs/oauth2-redirect"
ASSETS = "/docs/static"
ASSET_CACHING = "public, max-age=86400"
# No call to the online validator (validator.swagger.io) from the page either.
SWAGGER_PARAMETERS = {"validatorUrl": None}


class _CachedAssets(StaticFiles):
    """The pages' scripts and styles, which hold no patient data: cached for a day, not
    fetched again (2.6 MB) on every visit as the no-store of every other answer would make."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = ASSET_CACHING
        return response


def add_pages(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets on `app` (made with docs_url=redoc_url=None)."""
    assets = _CachedAssets(packages=[("fastapi_offline", "static")])
    app.mount(ASSETS, assets, name="docs-assets")
    for path, endpoint in ((DOCS, _swagger_ui), (OAUTH2_REDIRECT, _oauth2_redirect)):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
    app.add_api_route(REDOC, _redoc, methods=["GET"], include_in_schema=False)


def _root(request: Request) -> str:
    """The path the app is mounted at behind a proxy ('' when at the root)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


async def _swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over /openapi.json."""
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
        swagger_ui_parameters=SWAGGER_PARAMETERS,
    )


async def _oauth2_redirect() -> HTMLResponse:
    """Swagger UI's OAuth2 redirect page (a script of its own, no assets)."""
    return get_swagger_ui_oauth2_redirect_html()


async def _redoc(request: Request) -> HTMLResponse:
    """ReDoc over /openapi.json, with the system's fonts."""
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
        with_google_fonts=False,
    )
