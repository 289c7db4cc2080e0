"""Small HTTP helpers shared by the tests."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.main import create_app
from app.settings import Settings
from tests import factories
from tests.conftest import seal_interval
from tests.tokens import bearer

FHIR_JSON = "application/fhir+json"
BASE = "http://test/fhir"


async def create(
    client: httpx.AsyncClient, resource: dict[str, Any], **headers: str
) -> dict[str, Any]:
    """POST a resource, assert it was created, return the stored resource."""
    response = await client.post(
        f"/{resource['resourceType']}",
        json=resource,
        headers={"content-type": FHIR_JSON, **headers},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def reference(resource: dict[str, Any]) -> str:
    """`Type/id` of a stored resource."""
    return f"{resource['resourceType']}/{resource['id']}"


def outcome_expressions(response: httpx.Response) -> list[str]:
    """Every issue.expression of an OperationOutcome response."""
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    return [e for issue in body["issue"] for e in issue.get("expression", [])]


async def post_bundle(
    client: httpx.AsyncClient, bundle: dict[str, Any], **headers: str
) -> httpx.Response:
    """POST a transaction or batch Bundle to the base URL itself (no trailing slash)."""
    return await client.post(BASE, json=bundle, headers={"content-type": FHIR_JSON, **headers})


def answered_entries(response: httpx.Response, kind: str) -> list[dict[str, Any]]:
    """The entries of a 200 `transaction-response` or `batch-response` Bundle."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Bundle" and body["type"] == kind, body
    entries: list[dict[str, Any]] = body.get("entry", [])
    return entries


async def stale_if_match(client: httpx.AsyncClient, _reference: str) -> dict[str, Any]:
    """A Bundle entry updating a new Patient (at version 1) with If-Match W/"2": 412."""
    existing = await create(client, factories.patient(family="Existing"))
    return factories.entry(
        method="PUT",
        url=reference(existing),
        resource=existing | {"gender": "male"},
        if_match='W/"2"',
    )


@asynccontextmanager
async def client_under(database_url: str, canonical_base: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app of its own whose definitions are published under `canonical_base`."""
    settings = Settings(
        database_url=database_url,
        base_url=BASE,
        canonical_base_url=canonical_base,
        audit_seal_interval_seconds=seal_interval(database_url),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = await bearer(app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
            yield http


@asynccontextmanager
async def client_with(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client (the system client's token) of an app of its own, with `changes` to `settings`."""
    app = create_app(settings.model_copy(update=changes))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = await bearer(app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
            yield http


async def history_poll(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> tuple[list[dict[str, Any]], str]:
    """One poll of a history: every page's entries (newest first), following each `next` link,
    and the first page's Bundle.meta.lastUpdated (where the next poll starts)."""
    response = await client.get(path, params=params)
    entries: list[dict[str, Any]] = []
    first = None
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        first = first or page["meta"]["lastUpdated"]
        entries.extend(page.get("entry", []))
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            return entries, first
        response = await client.get(following[0])


SPINE = "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode"


def refusal_kind(response: httpx.Response) -> tuple[str, str | None, str | None]:
    """(issue code, Spine code or None, Retry-After or None) of a one-issue error answer."""
    (issue,) = response.json()["issue"]
    spine = [c["code"] for c in issue.get("details", {}).get("coding", []) if c["system"] == SPINE]
    return issue["code"], (spine[0] if spine else None), response.headers.get("retry-after")
