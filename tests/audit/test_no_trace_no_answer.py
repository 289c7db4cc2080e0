"""No access without a trace: when the audit trail cannot be written, a read answers 503
with none of its data, and a write is not applied (the database refuses the audit rows here
through a trigger or a constraint: the real storage failing, nothing mocked)."""

from contextlib import AbstractAsyncContextManager

import httpx
from fastapi import FastAPI

from tests import factories as f
from tests.audit.trails import audit_event_refusing
from tests.conftest import BASE
from tests.http import create


def audit_refused(app: FastAPI) -> AbstractAsyncContextManager[None]:
    """While inside, the database refuses every new audit_event row."""
    return audit_event_refusing(app, "refuse_audit", "INSERT", "pk < 0")


async def test_a_read_whose_audit_record_cannot_be_stored_answers_503_and_nothing_else(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(9101), family="Withheld"))
    async with audit_refused(app):
        read = await client.get(f"/Patient/{child['id']}")
        search = await client.get("/Patient?family=Withheld")
    for response in (read, search):
        assert response.status_code == 503
        assert response.headers["retry-after"]
        assert response.json()["resourceType"] == "OperationOutcome"
        assert "Withheld" not in response.text and child["id"] not in response.text
    assert (await client.get(f"/Patient/{child['id']}")).status_code == 200  # back once stored


async def test_a_write_whose_audit_record_cannot_be_stored_is_not_applied(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(9102)))
    async with audit_refused(app):
        refused_flag = await client.post("/Flag", json=f.flag(subject=f"Patient/{child['id']}"))
        refused = await client.post("/Patient", json=f.patient(family="Unaudited"))
        bundle = f.bundle(
            entries=[f.entry(method="POST", url="Patient", resource=f.patient(family="Unaudited"))]
        )
        refused_bundle = await client.post(BASE, json=bundle)
    assert refused.status_code == 503, refused.text
    assert refused_flag.status_code == 503, refused_flag.text  # its record rides its write
    flags = (await client.get(f"/Flag?subject=Patient/{child['id']}")).json()
    assert flags["total"] == 0
    assert refused_bundle.status_code == 503, refused_bundle.text
    found = (await client.get("/Patient?family=Unaudited")).json()
    assert found["total"] == 0
