"""Checks of the API's browsable pages (/docs, /redoc) that say they work offline: every asset
they load is this server's, and answers with its own content type. Used against the app in
process (tests/openapi/test_pages.py) and against an installed wheel (tests/test_packaging.py).
"""

import re

PAGES = ("/docs", "/redoc")
ASSET = re.compile(r'(?:src|href|spec-url)="([^"]*)"')
EXTERNAL = re.compile(r"https?://|//[A-Za-z0-9]", re.IGNORECASE)
CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}


def local_assets(page: str) -> list[str]:
    """The scripts, styles and icons a page loads, which must all be paths on this server:
    the page names no other origin at all (http://, https:// or protocol-relative //)."""
    assert EXTERNAL.search(page) is None, EXTERNAL.findall(page)
    assets = [url for url in ASSET.findall(page) if url != "/openapi.json"]
    assert assets, "the page loads no script"
    assert all(url.startswith("/docs/static/") for url in assets), assets
    return assets


def served_as_itself(url: str, status: int, content_type: str, body: bytes) -> None:
    """An asset's answer: found, typed as what it is (the server says nosniff), not empty."""
    assert status == 200, url
    suffix = url[url.rindex(".") :]
    assert content_type.split(";")[0].strip() in CONTENT_TYPES[suffix], (url, content_type)
    assert body, url
