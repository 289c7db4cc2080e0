"""Clients acting as a given caller: an app of its own over the test database whose every
request is that caller's (until tokens do this, `create_app(identify=...)` is the way in)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from app.access import Caller, Role, caller_for
from app.access.scopes import parse
from app.main import create_app
from app.registry import RESOURCE_TYPES
from app.settings import Settings
from tests.http import BASE

KNOWN_TYPES = frozenset(RESOURCE_TYPES)


def scoped(scopes: str, role: Role = "system", organisation: str | None = None) -> Caller:
    """A caller granted what a SMART scope string allows (v1 or v2 syntax)."""
    grants = parse(scopes, KNOWN_TYPES)
    return caller_for(f"client with {scopes!r}", organisation, role, grants, KNOWN_TYPES)


@asynccontextmanager
async def app_client_for(settings: Settings, caller: Caller) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app of its own, on `settings`' database, whose requests are `caller`'s.
    Its pool is small: a test may open several beside the suite's own app."""
    small = settings.model_copy(update={"pg_pool_min": 1, "pg_pool_max": 4})
    app = create_app(small, identify=lambda request: caller)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            yield http
