"""One AuditEvent per request: its interaction, outcome, client, and every Patient and resource
it concerned; a write's stored with the write, any other before the answer goes out."""

import asyncio
import uuid
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from app.audit.events import INTERACTION, REST
from tests import factories as f
from tests.audit.trails import (
    by_request,
    clear_trail,
    client_of,
    patients,
    query,
    resources,
    stored_events,
)
from tests.conftest import BASE, app_context
from tests.fhir.exports import finished
from tests.http import create, reference
from tests.tokens import SYSTEM_CLIENT, bearer


def _rid() -> dict[str, str]:
    return {"X-Request-ID": str(uuid.uuid4())}


def _post(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    kind = resource["resourceType"]
    return f.entry(method="POST", url=kind, resource=resource, full_url=full_url)


async def _only_event(app: FastAPI, response: httpx.Response) -> dict[str, Any]:
    grouped = by_request(await stored_events(app))
    found = grouped.get(response.headers["x-request-id"], [])
    assert len(found) == 1, f"{len(found)} AuditEvents for one request"
    return found[0]


async def _family(client_: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    child = await create(client_, f.patient(nhs=f.nhs_number(7001)))
    flag = await create(client_, f.flag(subject=reference(child)))
    return child, flag


async def test_a_read_names_the_client_its_organisation_the_patient_and_the_resource(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    child, flag = await _family(client)
    response = await client.get(f"/Flag/{flag['id']}", headers=_rid())
    assert response.status_code == 200
    event = await _only_event(app, response)
    assert event["type"] == REST
    assert event["subtype"] == [{"system": INTERACTION, "code": "read"}]
    assert (event["action"], event["outcome"]) == ("R", "0")
    assert patients(event) == {child["id"]}
    assert resources(event) == {f"Flag/{flag['id']}"}
    agents = event["agent"]
    assert agents[0]["who"]["identifier"]["value"] == SYSTEM_CLIENT
    assert agents[0]["requestor"] is True and agents[0]["network"]["type"] == "2"
    assert agents[1]["who"] == {"reference": "Organization/test-org"}
    assert event["source"]["site"] == BASE


async def test_a_search_records_its_query_the_patients_it_names_and_those_it_returned(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    child, _ = await _family(client)
    other = await create(client, f.patient(nhs=f.nhs_number(7002)))
    url = f"/Flag?subject=Patient/{child['id']},Patient/{other['id']}&_include=Flag:subject"
    response = await client.get(url)
    assert response.status_code == 200
    event = await _only_event(app, response)
    assert event["subtype"][0]["code"] == "search-type"
    assert query(event) == url.lstrip("/")
    assert patients(event) == {child["id"], other["id"]}  # named, and held by the answer
    held = await client.get(f"/Patient?_id={child['id']}")
    assert patients(await _only_event(app, held)) == {child["id"]}


async def test_a_patient_the_path_names_is_recorded_even_when_the_read_is_refused(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.get("/Patient/no-such-child/Flag")
    assert response.status_code == 200
    assert patients(await _only_event(app, response)) == {"no-such-child"}
    missing = await client.get("/Patient/no-such-child")
    event = await _only_event(app, missing)
    assert (event["outcome"], event["outcomeDesc"]) == (
        "4",
        "HTTP 404: Patient/no-such-child is not known",
    )
    assert patients(event) == {"no-such-child"}


async def test_refusals_are_recorded_with_their_outcome_and_what_they_said(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as anonymous:
        no_token = await anonymous.get("/Patient")
        bad_token = await anonymous.get("/Patient", headers={"Authorization": "Bearer nonsense"})
    bad_param = await client.get("/Patient?birthdate=notadate")
    for response, status in ((no_token, 401), (bad_token, 401), (bad_param, 400)):
        assert response.status_code == status
        event = await _only_event(app, response)
        assert event["outcome"] == "4"
        assert event["outcomeDesc"].startswith(f"HTTP {status}: ")
    assert client_of(await _only_event(app, no_token)) is None
    assert client_of(await _only_event(app, bad_param)) == SYSTEM_CLIENT


async def test_metadata_is_not_audited_and_everything_else_under_fhir_is(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await clear_trail(app)
    assert (await client.get("/metadata")).status_code == 200
    assert await stored_events(app) == []
    assert (await client.get("/no/such/endpoint/here")).status_code == 404
    assert len(await stored_events(app)) == 1


async def test_a_create_is_recorded_in_its_own_transaction_with_the_version_written(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(7003)))
    response = await client.post("/Flag", json=f.flag(subject=reference(child)))
    assert response.status_code == 201
    event = await _only_event(app, response)
    assert (event["subtype"][0]["code"], event["action"], event["outcome"]) == ("create", "C", "0")
    assert resources(event) == {f"Flag/{response.json()['id']}/_history/1"}
    assert patients(event) == {child["id"]}


async def test_a_refused_write_leaves_a_failure_record_and_nothing_written(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(7004)))
    council = reference(await create(client, f.organization(ods="B81004", name="Council")))
    plan = f.project_flag(
        vocabulary=app_context(app).vocabulary,
        subject=reference(child),
        author=council,
        flag_type="child-protection-plan",
    )
    assert (await client.post("/Flag", json=plan)).status_code == 201
    second = await client.post("/Flag", json=plan)
    assert second.status_code == 409
    event = await _only_event(app, second)
    assert (event["action"], event["outcome"]) == ("C", "4")
    assert resources(event) == set()  # the attempt rolled back: nothing was written
    flags = (await client.get(f"/Flag?subject=Patient/{child['id']}")).json()
    assert flags["total"] == 1


async def test_a_transaction_is_one_record_listing_its_entries_patients(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    entries = [
        _post(f.patient(nhs=f.nhs_number(7005)), "urn:uuid:c1"),
        _post(f.flag(subject="urn:uuid:c1")),
        _post(f.patient(nhs=f.nhs_number(7006), given="Ben"), "urn:uuid:c2"),
    ]
    response = await client.post(BASE, json=f.bundle(entries=entries))
    assert response.status_code == 200, response.text
    event = await _only_event(app, response)
    assert event["subtype"][0]["code"] == "transaction" and event["action"] == "E"
    made = [e["response"]["location"].split("/")[1] for e in response.json().get("entry", [])]
    assert patients(event) == {made[0], made[2]}
    assert len(resources(event)) == 3


async def test_a_failed_transaction_leaves_its_record_but_no_resources(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    entries = [
        _post(f.patient(nhs=f.nhs_number(7007), family="Unwritten"), "urn:uuid:c1"),
        _post(f.flag(subject="Patient/not-there")),
    ]
    response = await client.post(BASE, json=f.bundle(entries=entries))
    assert response.status_code >= 400
    event = await _only_event(app, response)
    assert event["outcome"] == "4" and resources(event) == set()
    found = (await client.get("/Patient?family=Unwritten")).json()
    assert found["total"] == 0


async def test_a_batch_is_one_record_for_the_bundle(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    child, flag = await _family(client)
    entries = [
        {"request": {"method": "GET", "url": f"Flag/{flag['id']}"}},
        {"request": {"method": "GET", "url": f"Patient?_id={child['id']}"}},
        _post(f.patient(nhs=f.nhs_number(7008))),
    ]
    response = await client.post(BASE, json=f.bundle(kind="batch", entries=entries))
    assert response.status_code == 200, response.text
    event = await _only_event(app, response)
    assert event["subtype"][0]["code"] == "batch"
    made = response.json().get("entry", [])[2]["response"]["location"].split("/")[1]
    assert patients(event) == {child["id"], made}


async def test_the_summary_names_every_patient_whose_data_it_included(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(7009)))
    sibling = await create(client, f.patient(nhs=f.nhs_number(7010), given="Sib"))
    await create(client, f.flag(subject=reference(sibling)))
    link = f.related_person(patient=reference(child), nhs=f.nhs_number(7010), relationship="SIB")
    await create(client, link)
    response = await client.get(f"/Patient/{child['id']}/$safeguarding-summary")
    assert response.status_code == 200, response.text
    event = await _only_event(app, response)
    included = {
        e["resource"]["id"]
        for e in response.json().get("entry", [])
        if e["resource"]["resourceType"] == "Patient"
    }
    assert sibling["id"] in included
    assert patients(event) == included


async def test_a_token_request_is_recorded_whether_or_not_it_authenticates(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await bearer(app)  # the client exists
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as anyone:
        refused = await anyone.post("/auth/token", data={"grant_type": "client_credentials"})
    assert refused.status_code == 400
    event = await _only_event(app, refused)
    assert event["subtype"][0]["code"] == "110122" and event["outcome"] == "4"


async def test_reads_waiting_together_share_commits(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(7011)))
    writer = app.state.auditor
    commits, records = writer.commits, writer.records
    answers = await asyncio.gather(*(client.get(f"/Patient/{child['id']}") for _ in range(40)))
    assert {a.status_code for a in answers} == {200}
    assert writer.records - records == 40
    assert writer.commits - commits < 40


async def test_an_export_kick_off_and_download_record_what_was_asked(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(7003)))
    started = await client.get(
        "/$export", params={"_type": "Patient"}, headers={"Prefer": "respond-async"}
    )
    assert started.status_code == 202
    event = await _only_event(app, started)
    assert (event["subtype"][0]["code"], event["action"]) == ("operation", "E")
    assert query(event) == "$export?_type=Patient"
    status = started.headers["Content-Location"]
    file_url = (await finished(client, status))["output"][0]["url"]
    polled = await client.get(status)
    assert (await _only_event(app, polled))["subtype"][0]["code"] == "operation"
    downloaded = await client.get(file_url)
    assert downloaded.status_code == 200
    event = await _only_event(app, downloaded)
    assert query(event) == file_url.removeprefix(f"{BASE}/")
    assert child["identifier"][0]["value"] not in orjson.dumps(event).decode()
