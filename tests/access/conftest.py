"""Clients that act as one fixed caller, for the access-rule tests.

The one seam between these tests and how a caller is identified: `as_caller` opens a client
for a `Principal`. Today it serves the shared database through an app of its own whose
`identify` always answers that caller (as `tests/fhir/test_visibility.py` does); once clients
authenticate with SMART bearer tokens, only `_open_as` changes: register the principal as a
client, obtain a token for it, and return a client on the main app sending that token.
`writer` is the client that writes the test population (it sees and may write everything).
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from app.access import Caller, Role, caller_for, scopes
from app.main import create_app
from app.registry import RESOURCE_TYPES
from app.settings import Settings
from tests.conftest import BASE, empty_database

KNOWN_TYPES = frozenset(RESOURCE_TYPES)
EVERY_SCOPE = "system/*.cruds"


@dataclass(frozen=True, slots=True)
class Principal:
    """A client as the tests see it: its id, its Organization's id, its role, its scopes."""

    subject: str
    organisation: str | None
    role: Role
    scope: str = EVERY_SCOPE

    def caller(self) -> Caller:
        """The caller the server resolves for this client."""
        grants = scopes.parse(self.scope, KNOWN_TYPES)
        return caller_for(self.subject, self.organisation, self.role, grants, KNOWN_TYPES)


AsCaller = Callable[[Principal], Awaitable[httpx.AsyncClient]]


async def _open_as(stack: AsyncExitStack, settings: Settings, who: Principal) -> httpx.AsyncClient:
    """A client whose every request is made as `who` (the seam for bearer tokens)."""
    caller = who.caller()

    def identify(request: Request) -> Caller:
        return caller

    # A small pool each: a module opens several of these beside the session's own app.
    small = settings.model_copy(update={"pg_pool_min": 1, "pg_pool_max": 2})
    app = create_app(small, identify=identify)
    await stack.enter_async_context(app.router.lifespan_context(app))
    transport = httpx.ASGITransport(app=app)
    return await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url=BASE))


@pytest.fixture(scope="module")
async def as_caller(settings: Settings) -> AsyncIterator[AsCaller]:
    """Opens clients acting as a given principal, closed at the end of the module."""
    async with AsyncExitStack() as stack:

        async def open_client(who: Principal) -> httpx.AsyncClient:
            return await _open_as(stack, settings, who)

        yield open_client


@pytest.fixture(scope="module")
async def writer(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sees and writes everything, on an emptied database, for a module's data."""
    await empty_database(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http
