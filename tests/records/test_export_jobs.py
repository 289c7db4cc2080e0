"""Bulk export jobs as background work: only the client that asked reaches a job, a local
authority exports only its children, clients are limited in jobs at once, cancelling and
retention remove files, and a job left in progress by a stopped server is resumed or failed."""

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from fastapi import FastAPI

from app.access import Role, caller_for
from app.access.scopes import parse
from app.clock import now_micros
from app.main import create_app
from app.records import export_files
from app.records.export_jobs import Part
from app.registry import RESOURCE_TYPES
from app.settings import Settings
from app.storage import export_jobs
from tests import factories as f
from tests.callers import app_client_for
from tests.conftest import BASE, database
from tests.fhir.exports import by_type, export, finished, ids, kick_off, lines, status_url
from tests.http import FHIR_JSON, client_with, create, reference
from tests.records.stored_jobs import file_path, first_line, job_row
from tests.tokens import SYSTEM_CLIENT, bearer

TYPES = frozenset(RESOURCE_TYPES)
RESPONSIBLE = f"{BASE}/StructureDefinition/responsible-local-authority"


async def test_only_the_client_that_asked_reaches_its_job(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create(client, f.patient())
    url = await status_url(client)
    manifest = await finished(client, url)
    file_url = manifest["output"][0]["url"]
    same_org = await bearer(app, "export-twin", organisation="Organization/test-org")
    other_org = await bearer(app, "export-other", organisation="Organization/other")
    for headers in (same_org, other_org):
        assert (await client.get(url, headers=headers)).status_code == 404
        assert (await client.get(file_url, headers=headers)).status_code == 404
        assert (await client.delete(url, headers=headers)).status_code == 404
    assert (await client.get(file_url)).status_code == 200
    unknown = url.rsplit("/", 1)[0] + "/0123456789abcdef"
    assert (await client.get(unknown)).status_code == 404
    assert (await client.get(file_url.rsplit("/", 1)[0] + "/..%2Fsafeguard.db")).status_code == 404


async def test_a_narrower_token_of_the_same_client_gets_only_the_files_it_may_read(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    child = await create(client, f.patient())
    await create(client, f.flag(subject=reference(child)))
    manifest = await export(client, _type="Patient,Flag")
    urls = {item["type"]: item["url"] for item in manifest["output"]}
    narrower = caller_for(
        SYSTEM_CLIENT, "Organization/test-org", "system", parse("system/Patient.rs", TYPES), TYPES
    )
    async with app_client_for(settings, narrower) as patients_only:
        assert (await patients_only.get(urls["Flag"])).status_code == 404
        assert await lines(patients_only, urls["Patient"]) == [child]
    assert (await client.get(urls["Flag"])).status_code == 200


@pytest.fixture
async def as_org(settings: Settings, client: httpx.AsyncClient) -> AsyncIterator[object]:
    """Clients of apps over the suite's database whose caller is `client-<org>` of a role."""
    async with AsyncExitStack() as stack:

        async def open_client(organisation: str, role: Role) -> httpx.AsyncClient:
            grants = parse("system/*.rs", TYPES)
            caller = caller_for(f"client-{organisation}", organisation, role, grants, TYPES)
            app = create_app(settings, identify=lambda request: caller)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=BASE)
            )

        yield open_client


def _child_of(authority: str, given: str) -> dict[str, object]:
    extension = [{"url": RESPONSIBLE, "valueReference": {"reference": f"Organization/{authority}"}}]
    return f.patient(given=given) | {"extension": extension}


async def test_a_local_authority_exports_only_its_childrens_data(
    client: httpx.AsyncClient, as_org: object
) -> None:
    for name in ("la-a", "la-b"):
        put = await client.put(
            f"/Organization/{name}",
            json=f.organization(name=name) | {"id": name},
            headers={"content-type": FHIR_JSON},
        )
        assert put.status_code == 201, put.text
    ours = await create(client, _child_of("la-a", "Ours"))
    theirs = await create(client, _child_of("la-b", "Theirs"))
    our_flag = await create(client, f.flag(subject=reference(ours)))
    await create(client, f.flag(subject=reference(theirs)))
    la_a = await as_org("la-a", "local-authority")  # type: ignore[operator]

    found = await by_type(la_a, await export(la_a, "/Patient/$export"))
    assert {name: ids(found[name]) for name in found} == {
        "Patient": {ours["id"]},
        "Flag": {our_flag["id"]},
    }
    assert (await client.delete(f"/Patient/{theirs['id']}")).status_code == 200
    since = await export(la_a, _since="2000-01-01T00:00:00Z", _type="Patient")
    assert since["deleted"] == []


async def test_a_client_over_its_limit_of_jobs_is_429(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    for _ in range(settings.export_max_jobs_per_client):  # running on another server
        running = job_row("elsewhere", client_id="test-system", heartbeat=now_micros())
        async with database(app).transaction() as conn:
            assert await export_jobs.insert_within_limit(conn, running, 2)
    refused = await kick_off(client)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "2"
    assert refused.json()["issue"][0]["code"] == "throttled"
    other = await bearer(app, "export-other", organisation="Organization/other")
    assert (await client.get("/$export", headers=other | _async())).status_code == 202


async def test_simultaneous_kick_offs_never_pass_the_limit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def kick_off_one(client_id: str) -> bool:
        async with database(app).transaction() as conn:
            return await export_jobs.insert_within_limit(conn, job_row("r", client_id=client_id), 2)

    for round_number in range(5):
        client_id = f"client-{round_number}"
        stored = await asyncio.gather(*(kick_off_one(client_id) for _ in range(8)))
        assert sum(stored) == 2


def _async() -> dict[str, str]:
    return {"Prefer": "respond-async"}


async def test_cancelling_removes_the_job_and_its_files(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    await create(client, f.patient())
    url = await status_url(client)
    manifest = await finished(client, url)
    file_url = manifest["output"][0]["url"]
    assert file_path(settings, file_url).is_file()
    cancelled = await client.delete(url)
    assert cancelled.status_code == 202
    assert not file_path(settings, file_url).parent.exists()
    assert (await client.get(url)).status_code == 404
    assert (await client.get(file_url)).status_code == 404
    assert (await client.delete(url)).status_code == 404


async def test_files_are_deleted_after_the_retention(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    await create(client, f.patient())
    async with client_with(settings, export_retention=1) as brief:
        url = await status_url(brief)
        manifest = await finished(brief, url)
        folder = file_path(settings, manifest["output"][0]["url"]).parent
        assert folder.is_dir()
        for _ in range(100):
            if not folder.exists():
                break
            await asyncio.sleep(0.05)
        assert not folder.exists()
        assert (await brief.get(url)).status_code == 404


async def test_a_job_left_in_progress_resumes_from_its_last_commit(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    patients = [await create(client, f.patient(given=f"P{n}")) for n in range(5)]
    pk, line = await first_line(app)
    part = Part("output", "Patient", after=pk, count=1, size=len(line))
    left = job_row("stopped-server", parts=[part])
    folder = Path(settings.export_dir) / left.job_id
    folder.mkdir(parents=True)
    (folder / "Patient.ndjson").write_bytes(line + b'{"half a line')  # past the commit
    async with database(app).transaction() as conn:
        assert await export_jobs.insert_within_limit(conn, left, 2)
    async with client_with(settings, export_stale_seconds=0.2) as restarted:
        manifest = await finished(restarted, f"{BASE}/$export-status/{left.job_id}")
        found = await lines(restarted, manifest["output"][0]["url"])
    assert found == patients
    assert manifest["output"][0]["count"] == 5


async def test_a_job_another_server_is_running_is_left_to_it(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    running = job_row("live-server", heartbeat=now_micros())
    async with database(app).transaction() as conn:
        assert await export_jobs.insert_within_limit(conn, running, 2)
    async with client_with(settings) as other:
        await asyncio.sleep(0.2)
        assert (await other.get(f"/$export-status/{running.job_id}")).status_code == 202


class _Watched:
    """A job's file whose every write is noted with the thread it ran on."""

    def __init__(self, handle: BinaryIO, threads: list[int]) -> None:
        self.handle, self.threads = handle, threads

    def write(self, data: bytes) -> int:
        self.threads.append(threading.get_ident())
        return self.handle.write(data)

    def flush(self) -> None:
        self.threads.append(threading.get_ident())
        self.handle.flush()

    def fileno(self) -> int:
        return self.handle.fileno()

    def close(self) -> None:
        self.handle.close()


async def test_a_job_opens_writes_and_syncs_its_files_off_the_event_loop(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    opening = export_files._open_at

    def watched_open(path: Path, size: int) -> _Watched:
        threads.append(threading.get_ident())
        return _Watched(opening(path, size), threads)

    monkeypatch.setattr(export_files, "_open_at", watched_open)
    child = await create(client, f.patient())
    manifest = await export(client, _type="Patient")
    assert await lines(client, manifest["output"][0]["url"]) == [child]
    assert len(threads) == 3  # open, write, flush
    assert threading.get_ident() not in threads
