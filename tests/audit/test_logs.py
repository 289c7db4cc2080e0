"""Server logs hold the request id, the client and the status of each request, and never an
NHS number, a name or a query's values, even when a request fails or the audit trail does."""

import logging

import httpx
import orjson
import pytest
from fastapi import FastAPI

from tests import factories as f
from tests.audit.test_no_trace_no_answer import audit_refused
from tests.http import create
from tests.logcheck import CLIENT_SIDE, nhs_numbers_in
from tests.tokens import SYSTEM_CLIENT

FAMILY = "Quixotically"
NHS = f.nhs_number(9201)


async def test_each_request_is_logged_by_id_client_and_status_without_its_data(
    app: FastAPI,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    child = await create(client, f.patient(nhs=NHS, family=FAMILY))
    requests = [
        client.get(f"/Patient?identifier={f.NHS}|{NHS}&family={FAMILY}"),
        client.get(f"/Patient/$safeguarding-summary?identifier={f.NHS}|{NHS}"),
        client.post("/Patient", json=f.patient(nhs=NHS, family=FAMILY)),  # 422: held already
        client.get(f"/Patient?birthdate={NHS}"),  # 400 naming the value
        client.get(f"/Patient/{child['id']}", headers={"Authorization": f"Bearer {NHS}"}),
    ]
    answered = [await request for request in requests]
    async with audit_refused(app):
        answered.append(await client.get(f"/Patient?identifier={f.NHS}|{NHS}"))
    assert [a.status_code for a in answered] == [200, 200, 422, 400, 401, 503]
    request_lines = capsys.readouterr().err.splitlines()
    server = [r.getMessage() for r in caplog.records if not r.name.startswith(CLIENT_SIDE)]
    text = "\n".join(request_lines + server)
    assert nhs_numbers_in(text.splitlines()) == {}
    assert FAMILY not in text and "identifier=" not in text and child["id"] not in text
    logged = {line["request_id"]: line for line in map(orjson.loads, request_lines)}
    for answer in answered:
        line = logged[answer.headers["x-request-id"]]
        assert line["status"] == answer.status_code and line["logger"] == "safeguard.requests"
    assert logged[answered[0].headers["x-request-id"]]["client_id"] == SYSTEM_CLIENT
    assert logged[answered[4].headers["x-request-id"]]["client_id"] is None  # its token: refused
