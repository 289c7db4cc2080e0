"""The audit trail over HTTP: auditors alone read and search it, nobody writes it (405 before
any scope is looked at, in Bundles too), history is not offered, and reading it is audited."""

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.access import Caller, Role, caller_for
from app.access.scopes import parse
from app.auth.clients import known_types
from app.settings import Settings
from tests import factories as f
from tests.audit.conftest import CLIENTS, matched_ids, open_client, search, stored_events
from tests.callers import app_client_for
from tests.conftest import database
from tests.http import FHIR_JSON, create, outcome_expressions, post_bundle

WRITES = [
    ("POST", "/AuditEvent"),
    ("PUT", "/AuditEvent/some-id"),
    ("PUT", "/AuditEvent?patient=Patient/x"),
    ("PATCH", "/AuditEvent/some-id"),
    ("DELETE", "/AuditEvent/some-id"),
    ("DELETE", "/AuditEvent?patient=Patient/x"),
]
HISTORY = ["/AuditEvent/_history", "/AuditEvent/some-id/_history", "/AuditEvent/some-id/_history/1"]
EVENT = {"resourceType": "AuditEvent", "id": "some-id", "recorded": "2026-01-01T00:00:00Z"}


def scoped(scope: str, role: Role) -> Caller:
    """A caller of `role` granted what `scope` allows (AuditEvent included)."""
    grants = parse(scope, known_types())
    return caller_for(f"{role} with {scope!r}", "audit-hub", role, grants, known_types())


async def _latest_id(app: FastAPI) -> str:
    """The id of the newest AuditEvent stored."""
    event_id: str = (await stored_events(app))[0][1]["id"]
    return event_id


@pytest.fixture
async def others(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Clients of every role but auditor, each with every scope; and an auditor whose scopes
    leave out AuditEvent."""
    roles = [
        ("audit-test-health", "health", "system/*.cruds"),
        ("audit-test-la", "local-authority", "system/*.cruds"),
        ("audit-test-system", "system", "system/*.cruds"),
        ("audit-test-auditor-unscoped", "auditor", "system/Organization.rs"),
    ]
    opened = [await open_client(app, cid, role, scope, "audit-other") for cid, role, scope in roles]
    try:
        yield opened
    finally:
        for http in opened:
            await http.aclose()


async def test_every_other_role_is_403_on_read_and_search(
    app: FastAPI, client: httpx.AsyncClient, others: list[httpx.AsyncClient]
) -> None:
    await create(client, f.patient())
    event_id = await _latest_id(app)
    for http in others:
        for response in (
            await http.get(f"/AuditEvent/{event_id}"),
            await http.get("/AuditEvent"),
            await http.get("/AuditEvent", params={"patient": "Patient/x"}),
            await http.post("/AuditEvent/_search", data={"outcome": "0"}),
        ):
            assert response.status_code == 403, response.text
            body = response.json()
            assert body["resourceType"] == "OperationOutcome"
            assert body["issue"][0]["code"] == "forbidden"


async def test_an_auditor_without_the_scope_is_told_which_it_needs(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient
) -> None:
    cases = [
        ("system/Organization.rs", "read", "r", "search-type", "s"),
        ("system/AuditEvent.s", "read", "r", None, None),
        ("system/AuditEvent.r", None, None, "search-type", "s"),
    ]
    await create(client, f.patient())
    for scope, read, read_letter, searched, search_letter in cases:
        async with app_client_for(settings, scoped(scope, "auditor")) as http:
            reading = await http.get(f"/AuditEvent/{await _latest_id(app)}")
            searching = await http.get("/AuditEvent")
        for response, interaction, letter in (
            (reading, read, read_letter),
            (searching, searched, search_letter),
        ):
            if interaction is None:
                assert response.status_code == 200, (scope, response.text)
                continue
            assert response.status_code == 403, (scope, response.text)
            assert response.json()["issue"][0]["diagnostics"] == (
                f"this client's scopes do not allow {interaction} on AuditEvent: "
                f"it needs system/AuditEvent.{letter}"
            )


async def test_writes_and_history_are_405_for_every_caller_before_any_scope_check(
    app: FastAPI, settings: Settings, auditor: httpx.AsyncClient, others: list[httpx.AsyncClient]
) -> None:
    async with app_client_for(settings, scoped("", "health")) as unscoped:
        for http in [auditor, *others, unscoped]:
            for method, url in WRITES:
                body = orjson.dumps(EVENT) if method in ("POST", "PUT") else b"[]"
                response = await http.request(
                    method, url, content=body, headers={"content-type": FHIR_JSON}
                )
                assert response.status_code == 405, (method, url, response.text)
                assert response.headers["allow"] == "GET, HEAD"
                assert response.json()["issue"][0]["code"] == "not-supported"
            for url in HISTORY:
                response = await http.get(url)
                assert response.status_code == 405, (url, response.text)
                assert response.headers["allow"] == ""
                assert response.json()["resourceType"] == "OperationOutcome"
            search_by_get = await http.get("/AuditEvent/_search")
            assert search_by_get.status_code == 405
            assert search_by_get.headers["allow"] == "POST"


async def test_a_refused_delete_leaves_the_event_as_it_was(
    app: FastAPI, client: httpx.AsyncClient, auditor: httpx.AsyncClient
) -> None:
    await create(client, f.patient())
    event_id = await _latest_id(app)
    before = (await auditor.get(f"/AuditEvent/{event_id}")).content
    assert (await client.delete(f"/AuditEvent/{event_id}")).status_code == 405
    assert (await client.put(f"/AuditEvent/{event_id}", json=EVENT)).status_code == 405
    assert (await auditor.get(f"/AuditEvent/{event_id}")).content == before


async def test_a_transaction_writing_an_audit_event_is_refused_whole(
    client: httpx.AsyncClient, auditor: httpx.AsyncClient
) -> None:
    for method, url in (
        ("POST", "AuditEvent"),
        ("PUT", "AuditEvent/x"),
        ("DELETE", "AuditEvent/x"),
    ):
        patient = f.entry(method="POST", url="Patient", resource=f.patient(family="Bundled"))
        entry: dict[str, Any] = {"request": {"method": method, "url": url}}
        if method != "DELETE":
            entry["resource"] = EVENT
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [patient, entry]}
        response = await post_bundle(client, bundle)
        assert response.status_code == 405, response.text
        assert outcome_expressions(response) == ["Bundle.entry[1].request"]
    assert (await client.get("/Patient", params={"family": "Bundled"})).json().get(
        "entry", []
    ) == []


async def test_a_batch_entry_writing_an_audit_event_is_405_alone(
    client: httpx.AsyncClient,
) -> None:
    patch = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(b"[]").decode(),
    }
    entries = [
        f.entry(method="POST", url="Patient", resource=f.patient(family="Batched")),
        {"request": {"method": "POST", "url": "AuditEvent"}, "resource": EVENT},
        {"request": {"method": "PATCH", "url": "AuditEvent/x"}, "resource": patch},
        {"request": {"method": "GET", "url": "AuditEvent?patient=x"}},
    ]
    response = await post_bundle(
        client, {"resourceType": "Bundle", "type": "batch", "entry": entries}
    )
    assert response.status_code == 200, response.text
    answered = response.json().get("entry", [])
    assert answered[0]["response"]["status"] == "201 Created"
    for index in (1, 2):
        assert answered[index]["response"]["status"] == "405 Method Not Allowed"
        issue = answered[index]["response"]["outcome"]["issue"][0]
        assert issue["expression"] == [f"Bundle.entry[{index}].request"]
    assert answered[3]["response"]["status"] == "400 Bad Request"  # read it on its own


async def test_read_serves_the_stored_bytes_and_unknown_ids_are_404(
    app: FastAPI, client: httpx.AsyncClient, auditor: httpx.AsyncClient
) -> None:
    await create(client, f.patient())
    event_id = await _latest_id(app)
    async with database(app).reader() as conn:
        row = await conn.fetchrow("SELECT body FROM audit_event WHERE id = $1", event_id)
    assert row is not None
    response = await auditor.get(f"/AuditEvent/{event_id}")
    assert response.status_code == 200
    assert response.content == bytes(row[0])
    assert response.headers["etag"] == 'W/"1"'
    for unknown in ("not-an-event", "bad_id!"):
        missing = await auditor.get(f"/AuditEvent/{unknown}")
        assert missing.status_code == 404, missing.text
        assert missing.json()["issue"][0]["code"] == "not-found"


async def test_reading_the_trail_is_audited_naming_what_was_asked(
    app: FastAPI, client: httpx.AsyncClient, auditor: httpx.AsyncClient
) -> None:
    patient = await create(client, f.patient(nhs=f.nhs_number(7201)))
    await auditor.get("/AuditEvent", params={"patient": f"Patient/{patient['id']}"})
    await auditor.get("/AuditEvent", params={"patient.identifier": f"{f.NHS}|{f.nhs_number(7201)}"})
    event_id = await _latest_id(app)
    await auditor.get(f"/AuditEvent/{event_id}")
    mine = await search(
        auditor, {"agent:identifier": f"{CLIENTS}|test-auditor", "_sort": "date", "_count": "500"}
    )
    events = [entry["resource"] for entry in mine.get("entry", [])][-3:]
    for event in events[:2]:
        assert event["subtype"][0]["code"] == "search-type"
        assert event["agent"][1]["who"] == {"reference": "Organization/audit-hub"}
        patients = [
            e["what"]["reference"] for e in event["entity"] if e.get("role", {}).get("code") == "1"
        ]
        assert patients == [f"Patient/{patient['id']}"]
        query = [e["query"] for e in event["entity"] if "query" in e]
        assert base64.b64decode(query[0]).decode().startswith("AuditEvent?patient")
    read = events[2]
    assert read["subtype"][0]["code"] == "read"
    assert {"reference": f"AuditEvent/{event_id}"} in [e.get("what") for e in read["entity"]]
    by_patient = await search(auditor, {"patient": patient["id"], "subtype": "search-type"})
    assert {e["id"] for e in events[:2]} <= set(matched_ids(by_patient))


async def test_unknown_parameters_are_reported_or_refused_when_strict(
    auditor: httpx.AsyncClient,
) -> None:
    bundle = await search(auditor, {"status": "active", "_elements": "id"})
    warnings = [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome"]
    assert [i["expression"] for i in warnings[0]["issue"]] == [["status"], ["_elements"]]
    strict = await auditor.get(
        "/AuditEvent", params={"status": "active"}, headers={"prefer": "handling=strict"}
    )
    assert strict.status_code == 400
    assert outcome_expressions(strict) == ["status"]
    assert "was ignored" not in strict.text and "is refused" in strict.text


@pytest.mark.parametrize(
    ("params", "expression"),
    [
        ({"_sort": "outcome"}, "_sort"),
        ({"_summary": "true"}, "_summary"),
        ({"_summary": "nonsense"}, "_summary"),
        ({"_total": "all"}, "_total"),
        ({"_count": "-1"}, "_count"),
        ({"date": "yesterday"}, "date"),
        ({"date:missing": "true"}, "date:missing"),
        ({"action:not": "R"}, "action:not"),
        ({"patient": "Organization/x"}, "patient"),
        ({"patient.name": "Smith"}, "patient.name"),
        ({"patient.identifier": f"{f.NHS}|"}, "patient.identifier"),
        ({"entity:identifier": "x|y"}, "entity:identifier"),
    ],
)
async def test_malformed_or_unsupported_parameters_are_400(
    auditor: httpx.AsyncClient, params: dict[str, str], expression: str
) -> None:
    response = await auditor.get("/AuditEvent", params=params)
    assert response.status_code == 400, response.text
    assert outcome_expressions(response) == [expression]
