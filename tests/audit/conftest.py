"""Clients of the audit trail's tests: an auditor, clients of the other roles, and what the
trail holds, read straight from its table (the oracle the searches are checked against)."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from tests.conftest import BASE, database
from tests.tokens import bearer

AUDITOR = "test-auditor"
AUDIT_ORG = "audit-hub"
CLIENTS = f"{BASE}/clients"  # the clients' identifier system (canonical base = base here)
AUDIT_SCOPE = "system/AuditEvent.rs"


async def open_client(
    app: FastAPI, client_id: str, role: str, scope: str, organisation: str
) -> httpx.AsyncClient:
    """A client on the suite's app sending `client_id`'s access token (registered if new)."""
    headers = await bearer(
        app, client_id, role=role, scope=scope, organisation=f"Organization/{organisation}"
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, headers=headers)


@pytest.fixture
async def auditor(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An auditor (role auditor, scope system/AuditEvent.rs) of the audit hub."""
    async with await open_client(app, AUDITOR, "auditor", AUDIT_SCOPE, AUDIT_ORG) as http:
        yield http


async def stored_events(app: FastAPI) -> list[tuple[int, dict[str, Any]]]:
    """(pk, AuditEvent) of every stored AuditEvent, newest first."""
    async with database(app).reader() as conn:
        rows = await conn.fetch("SELECT pk, body FROM audit_event ORDER BY recorded DESC, pk DESC")
    return [(int(row[0]), orjson.loads(bytes(row[1]))) for row in rows]


async def search(
    http: httpx.AsyncClient, params: list[tuple[str, str]] | dict[str, str]
) -> dict[str, Any]:
    """An AuditEvent search that must succeed: its Bundle."""
    response = await http.get("/AuditEvent", params=params)
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    return bundle


def matched_ids(bundle: dict[str, Any]) -> list[str]:
    """The ids of a searchset's matches, in order."""
    return [
        entry["resource"]["id"]
        for entry in bundle.get("entry", [])
        if entry["search"]["mode"] == "match"
    ]
