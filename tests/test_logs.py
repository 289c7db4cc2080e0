"""The served log, as `safeguard serve` writes it with its own logging configuration: every
line one JSON object; one line per request with its id, client, organisation, route template,
method, status and duration; and no NHS number, name or id from the requests, whether they
were written, read, searched for or refused."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from app.fhir.observing import logged_id
from app.settings import Settings
from tests import factories as f
from tests.conftest import BASE, empty_database, seal_interval
from tests.logcheck import nhs_numbers_in
from tests.tokens import SYSTEM_CLIENT, token_for

CHILDREN = [  # (NHS number, given name, family name): unusual, so any trace of them shows
    (f.nhs_number(8801), "Zephyrine", "Quillfeather"),
    (f.nhs_number(8802), "Oswaldine", "Marchbanke"),
    (f.nhs_number(8803), "Thaddeo", "Wyvernholt"),
]
RENAMED = "Brackenthwaite"
REQUEST_FIELDS = {
    "event",
    "request_id",
    "client_id",
    "organisation",
    "route",
    "method",
    "status",
    "duration_ms",
    "level",
    "logger",
    "timestamp",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def served(settings: Settings, log: Path) -> AsyncIterator[str]:
    """`safeguard serve` on the suite's database, its stderr in `log`; yields its origin."""
    port = _free_port()
    env = {
        **os.environ,
        "SAFEGUARD_DATABASE_URL": settings.database_url,
        "SAFEGUARD_BASE_URL": BASE,
        "SAFEGUARD_LOG_LEVEL": "INFO",
        "SAFEGUARD_AUDIT_SEAL_INTERVAL_SECONDS": str(seal_interval(settings.database_url)),
        "SAFEGUARD_NOTIFY_INTERVAL_SECONDS": "0",
    }
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    command += ["--no-seed-demo", "--no-apply-migrations"]
    origin = f"http://127.0.0.1:{port}"
    with log.open("wb") as err:
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)  # noqa: ASYNC220
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(300):  # 30 s at most
                    try:
                        if (await http.get(f"{origin}/_ping")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
            yield origin
        finally:
            server.send_signal(signal.SIGINT)
            await asyncio.to_thread(server.wait, 30)


async def _requests(http: httpx.AsyncClient) -> list[httpx.Response]:
    """Writes, reads, searches and refusals naming the children, as a GP system would."""
    answers = []
    for nhs, given, family in CHILDREN:
        child = f.patient(nhs=nhs, given=given, family=family)
        created = await http.post("/Patient", json=child)
        answers.append(created)
        flag = f.flag(subject=f"Patient/{created.json()['id']}")
        answers.append(await http.post("/Flag", json=flag))
        answers.append(await http.get(f"/Patient/{created.json()['id']}"))
        answers.append(await http.get("/Patient", params={"identifier": f"{f.NHS}|{nhs}"}))
        answers.append(await http.get("/Patient", params={"family": family, "given": given}))
        answers.append(
            await http.get(
                "/Patient/$safeguarding-summary", params={"identifier": f"{f.NHS}|{nhs}"}
            )
        )
    nhs, given, family = CHILDREN[0]
    first = answers[0].json()
    renamed = {**first, "name": [{"family": RENAMED, "given": [given]}]}
    retried = {"X-Request-ID": str(uuid.uuid4())}
    answers.append(await http.put(f"/Patient/{first['id']}", json=renamed, headers=retried))
    answers.append(await http.put(f"/Patient/{first['id']}", json=renamed, headers=retried))
    named = {"X-Request-ID": nhs}  # not a UUID: free text a client could fill with anything
    answers.append(await http.get(f"/Patient/{first['id']}", headers=named))
    answers.append(await http.post("/Patient", json=f.patient(nhs=nhs, family=family)))  # 422
    answers.append(await http.get("/Patient", params={"birthdate": nhs}))  # 400 naming it
    answers.append(await http.get(f"/Patient/{nhs}"))  # 404: an NHS number in the path
    answers.append(await http.get(f"/Flag?subject={nhs}", headers={"Authorization": nhs}))
    return answers


def _request_lines(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    requests = [line for line in lines if line["logger"] == "safeguard.requests"]
    assert all(set(line) == REQUEST_FIELDS for line in requests), requests[:1]
    return {line["request_id"]: line for line in requests}


async def test_the_served_log_is_json_lines_one_a_request_naming_no_patient(
    app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    await empty_database(app)
    headers = {"Authorization": f"Bearer {await token_for(app)}"}
    async with (
        served(settings, tmp_path / "server.log") as origin,
        httpx.AsyncClient(base_url=f"{origin}/fhir", headers=headers) as http,
    ):
        answers = await _requests(http)
    statuses = [answer.status_code for answer in answers]
    assert statuses[-6:] == [200, 200, 422, 400, 404, 401] and set(statuses[:-6]) == {200, 201}

    text = (tmp_path / "server.log").read_text()
    lines = [orjson.loads(line) for line in text.splitlines()]  # every line is JSON
    assert all({"event", "level", "logger", "timestamp"} <= set(line) for line in lines)
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's too
    logged = _request_lines(lines)
    for answer in answers:
        line = logged[logged_id(answer.headers["x-request-id"])]
        assert (line["status"], line["method"]) == (answer.status_code, answer.request.method)
        assert line["route"].startswith("/fhir/") or line["route"] == "unrouted"
        assert line["duration_ms"] >= 0
        refused = answer.status_code == 401
        assert line["client_id"] == (None if refused else SYSTEM_CLIENT)
        assert line["organisation"] == (None if refused else "test-org")
    routes = {line["route"] for line in logged.values()}
    assert {"/fhir/{resource_type}", "/fhir/{resource_type}/{logical_id}"} <= routes

    assert nhs_numbers_in(text.splitlines()) == {}
    named = [part for child in CHILDREN for part in child] + [RENAMED]
    ids = [answer.json()["id"] for answer in answers if answer.status_code == 201]
    assert [value for value in [*named, *ids] if value in text] == []
    assert "identifier" not in text and "birthdate" not in text
