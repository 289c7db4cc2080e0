"""/docs and /redoc load Swagger UI and ReDoc from this server, not from a CDN."""

from collections.abc import AsyncIterator

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests.docs_pages import PAGES, local_assets, served_as_itself


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that never started: the pages need no database (so they run once,
    not per database)."""
    app = create_app(Settings(database_url="sqlite:///:memory:"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.mark.parametrize("page", PAGES)
async def test_page_loads_only_assets_of_this_server(http: httpx.AsyncClient, page: str) -> None:
    response = await http.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
    for url in local_assets(response.text):
        asset = await http.get(url)
        served_as_itself(url, asset.status_code, asset.headers["content-type"], asset.content)
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert asset.headers["cache-control"] == "public, max-age=86400"  # no patient data
    assert response.headers["cache-control"] == "no-store"


async def test_swagger_ui_calls_no_online_validator(http: httpx.AsyncClient) -> None:
    page = (await http.get("/docs")).text
    assert '"validatorUrl": null' in page


async def test_swagger_ui_is_the_bundle_of_version_5(http: httpx.AsyncClient) -> None:
    """Swagger UI 4 cannot show an OpenAPI 3.1 document, which this API's is."""
    script = (await http.get("/docs/static/swagger-ui-bundle.js")).text
    assert 'PACKAGE_VERSION:"5.' in script
    document = (await http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")


async def test_an_unknown_asset_is_404_not_a_file_of_the_package(
    http: httpx.AsyncClient,
) -> None:
    for url in ("/docs/static/none.js", "/docs/static/%2e%2e/__init__.py"):
        response = await http.get(url)
        assert response.status_code == 404, url
        assert response.json()["resourceType"] == "OperationOutcome"
