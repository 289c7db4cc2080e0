"""`safeguard reconcile --apply` killed with SIGKILL after its first Bundle, then run again,
ends in the same state as a run never interrupted (both databases): none written twice or lost."""

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from app.bulk_client.credentials import Credentials, read_key
from app.settings import Settings
from tests import factories
from tests.http import create
from tests.reconcile.helpers import SCOPE, council_login, serving

AS_OF = "2026-06-01"
CHILDREN = 50
TYPES = ("young-carer", "child-in-need", "missing-from-education")


def _rows(nhs: list[str], ods: str) -> list[str]:
    """Three flags a child, one of them ended."""
    rows = []
    for number in nhs:
        rows.append(f"{number},{TYPES[0]},2026-01-10,,{ods},")
        rows.append(f"{number},{TYPES[1]},2026-02-10,2026-03-10,{ods},")
        rows.append(f"{number},{TYPES[2]},2026-04-10,,{ods},")
    return rows


async def _apply(
    register: Path, base: str, client_id: str, key: Path
) -> asyncio.subprocess.Process:
    """The command as a shell runs it, in a process of its own."""
    args = ["-m", "app.cli", "reconcile", str(register), "--server", base, "--client", client_id]
    args += ["--key", str(key), "--apply", "--batch", "6", "--as-of", AS_OF, "--no-progress"]
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )


async def _count(client: httpx.AsyncClient, council: str) -> int:
    """How many flags the council has authored."""
    response = await client.get(f"/Flag?author=Organization/{council}&_elements=id&_count=500")
    assert response.status_code == 200, response.text
    return len(response.json().get("entry", []))


async def _state(
    client: httpx.AsyncClient, council: str, nhs_by_child: dict[str, str]
) -> list[Any]:
    """Every flag the council authored, as (child's NHS number, code, start, end, status)."""
    found: list[Any] = []
    url: str | None = f"/Flag?author=Organization/{council}&_count=500"
    while url is not None:
        page = (await client.get(url)).json()
        for entry in page.get("entry", []):
            flag = entry["resource"]
            child = flag["subject"]["reference"].removeprefix("Patient/")
            coding = flag["code"]["coding"][0]["code"]
            period = flag["period"]
            found.append(
                (nhs_by_child[child], coding, period["start"], period.get("end"), flag["status"])
            )
        url = next(
            (link["url"] for link in page.get("link", []) if link["relation"] == "next"), None
        )
        url = url.split("/fhir", 1)[1] if url else None
    return sorted(found)


async def test_a_killed_apply_run_again_ends_as_an_uninterrupted_one(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    nhs = sorted({factories.nhs_number(7300 + n) for n in range(2 * CHILDREN)})[:CHILDREN]
    nhs_by_child = {}
    for number in nhs:
        nhs_by_child[(await create(client, factories.patient(nhs=number)))["id"]] = number
    councils = {}
    for ods in ("9KA", "9KB"):
        council = (await create(client, factories.organization(ods=ods, name=ods)))["id"]
        client_id, key = await council_login(app, tmp_path, council)
        register = tmp_path / f"{ods}.csv"
        header = "nhs_number,flag_type,start_date,end_date,author_ods,flag_identifier"
        register.write_text("\n".join([header, *_rows(nhs, ods)]) + "\n")
        councils[ods] = (council, client_id, key, register)
    killed, whole = councils["9KA"], councils["9KB"]
    # Polled over HTTP: a second app writing the same SQLite file from this event loop (the
    # in-process one, auditing each poll) would wait on its lock with the loop held.
    async with serving(settings) as base, httpx.AsyncClient(base_url=base) as over_http:
        login = Credentials(client_id=killed[1], key=read_key(killed[2]), scope=SCOPE)
        over_http.headers.update(await login.header(over_http, base))
        process = await _apply(killed[3], base, killed[1], killed[2])
        written = 0
        for _ in range(3000):  # 60 s at most: kill it once its first Bundle is in
            written = await _count(over_http, killed[0])
            if written >= 6 or process.returncode is not None:
                break
            await asyncio.sleep(0.02)
        if process.returncode is not None:
            err, _ = await process.communicate()
            raise AssertionError(f"the run ended before it could be killed: {err.decode()}")
        process.send_signal(signal.SIGKILL)
        await process.wait()
        assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
        assert 6 <= written < 3 * CHILDREN
        for _, client_id, key, register in (killed, whole):
            done = await _apply(register, base, client_id, key)
            err, _ = await done.communicate()
            assert done.returncode == 0, err.decode()
    after_kill = await _state(client, killed[0], nhs_by_child)
    uninterrupted = await _state(client, whole[0], nhs_by_child)
    assert len(after_kill) == 3 * CHILDREN
    assert after_kill == uninterrupted
