"""Reading the audit trail straight from the database, for tests: every AuditEvent stored,
what each names, and the facts a test compares against a response."""

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI

from app.audit.events import CLIENT_ROLE, PATIENT_ROLE, REQUEST_ID
from app.storage.audit_chain import become_sealer
from tests.conftest import database


async def stored_events(app: FastAPI) -> list[dict[str, Any]]:
    """Every AuditEvent stored, oldest first."""
    async with database(app).reader() as conn:
        rows = await conn.fetch("SELECT body FROM audit_event ORDER BY pk")
    return [orjson.loads(bytes(row[0])) for row in rows]


async def clear_trail(app: FastAPI) -> None:
    """Forget the AuditEvents of a test's set-up."""
    async with database(app).transaction() as conn:
        await become_sealer(conn, wait=True)  # no sealing pass in between (see empty_database)
        await conn.execute("DELETE FROM audit_link")
        await conn.execute("DELETE FROM audit_event")


def request_id(event: dict[str, Any]) -> str:
    """The X-Request-ID an AuditEvent records."""
    found = [e["what"]["identifier"]["value"] for e in event["entity"] if e["type"] == REQUEST_ID]
    assert len(found) == 1, event
    return str(found[0])


def by_request(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The AuditEvents of each request id."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(request_id(event), []).append(event)
    return grouped


def patients(event: dict[str, Any]) -> set[str]:
    """Ids of the Patients an AuditEvent names (entity role patient)."""
    return {
        e["what"]["reference"].split("/")[1]
        for e in event["entity"]
        if e.get("role") == PATIENT_ROLE
    }


def resources(event: dict[str, Any]) -> set[str]:
    """References of the resources an AuditEvent names as read or written."""
    return {e["what"]["reference"] for e in event["entity"] if e.get("role", {}).get("code") == "4"}


def client_of(event: dict[str, Any]) -> str | None:
    """The client id an AuditEvent names, if it authenticated."""
    for agent in event["agent"]:
        if agent["type"] == CLIENT_ROLE and "who" in agent:
            return str(agent["who"]["identifier"]["value"])
    return None


def query(event: dict[str, Any]) -> str | None:
    """The query an AuditEvent records, decoded."""
    for entity in event["entity"]:
        if "query" in entity:
            return base64.b64decode(entity["query"]).decode()
    return None


def compartment(resource: dict[str, Any]) -> str | None:
    """The Patient whose compartment a resource is in (as the registry defines it)."""
    kind = resource.get("resourceType")
    if kind == "Patient":
        return str(resource["id"])
    field = {"Flag": "subject", "Condition": "subject", "RelatedPerson": "patient"}.get(str(kind))
    reference = (resource.get(field) or {}).get("reference", "") if field else ""
    return reference.split("/")[1] if reference.startswith("Patient/") else None


def patients_held(answer: dict[str, Any]) -> set[str]:
    """The Patients whose data an answer holds: a resource's compartment, or each entry's."""
    if answer.get("resourceType") != "Bundle":
        found = compartment(answer)
        return {found} if found else set()
    held: set[str] = set()
    for entry in answer.get("entry", []):
        if "resource" in entry:
            held |= patients_held(entry["resource"])
    return held


@asynccontextmanager
async def audit_event_refusing(
    app: FastAPI, name: str, event: str, check: str
) -> AsyncIterator[None]:
    """While inside, the database itself refuses a change to audit_event: on SQLite a trigger
    `BEFORE <event>` that aborts, on PostgreSQL a CHECK (`check`) on new rows only. The real
    storage failing, nothing mocked."""
    db = database(app)
    if db.dialect == "sqlite":
        abort = f"SELECT RAISE(ABORT, '{name}')"
        refuse = f"CREATE TRIGGER {name} BEFORE {event} ON audit_event BEGIN {abort}; END"
        allow = f"DROP TRIGGER {name}"
    else:
        refuse = f"ALTER TABLE audit_event ADD CONSTRAINT {name} CHECK ({check}) NOT VALID"
        allow = f"ALTER TABLE audit_event DROP CONSTRAINT {name}"
    async with db.transaction() as conn:
        await conn.execute(refuse)
    try:
        yield
    finally:
        async with db.transaction() as conn:
            await conn.execute(allow)
