"""Clients that act as one fixed caller, for the access-rule tests.

The one seam between these tests and how a caller is identified is `as_caller`: it registers a
`Principal` as a SMART client (its organisation, role and scopes), obtains an access token for
it through the real token logic (`tests.tokens`), and returns a client on the suite's app that
sends that token, so every request goes through the same authentication as a real client's.
`writer` is the client that writes the test population: the suite's `system` client, which sees
and may write everything.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from app.access import Role
from tests.conftest import BASE, empty_database
from tests.tokens import bearer

EVERY_SCOPE = "system/*.cruds"
NO_ORGANISATION = "test-org"  # what a principal without one is registered with


@dataclass(frozen=True, slots=True)
class Principal:
    """A client as the tests see it: its id, its Organization's id, its role, its scopes."""

    subject: str
    organisation: str | None
    role: Role
    scope: str = EVERY_SCOPE

    @property
    def client_id(self) -> str:
        """Unique per population: each module's organisations get fresh ids."""
        return f"{self.subject}.{self.organisation or NO_ORGANISATION}"


AsCaller = Callable[[Principal], Awaitable[httpx.AsyncClient]]


@pytest.fixture(scope="module")
async def as_caller(app: FastAPI) -> AsyncIterator[AsCaller]:
    """Opens clients acting as a given principal (by its own access token), closed at the end
    of the module."""
    async with AsyncExitStack() as stack:

        async def open_client(who: Principal) -> httpx.AsyncClient:
            headers = await bearer(
                app,
                who.client_id,
                role=who.role,
                scope=who.scope,
                organisation=f"Organization/{who.organisation or NO_ORGANISATION}",
            )
            transport = httpx.ASGITransport(app=app)
            http = httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers)
            return await stack.enter_async_context(http)

        yield open_client


@pytest.fixture(scope="module")
async def writer(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The suite's `system` client, on an emptied database, for a module's data."""
    await empty_database(app)
    transport = httpx.ASGITransport(app=app)
    headers = await bearer(app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
        yield http
