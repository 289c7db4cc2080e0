"""A bulk export job that cannot go on ends failed, in its row, whatever went wrong: its
files gone, its directory unwritable, its stored progress unreadable, or its server stopping
while running it time after time. Its status is then a 500 OperationOutcome saying why
(https://hl7.org/fhir/uv/bulkdata/STU2/export.html#response---error-status-1), never a job in
progress for ever."""

from pathlib import Path

import httpx
from fastapi import FastAPI

from app.clock import now_micros
from app.main import create_app
from app.records.export_jobs import Part
from app.records.exporter import MAX_RESUMES
from app.settings import Settings
from app.storage import export_jobs
from tests import factories as f
from tests.conftest import BASE, app_context, database
from tests.fhir.exports import failure
from tests.http import client_with, create
from tests.records.stored_jobs import first_line, job_row, store

RESTARTED = {"export_stale_seconds": 0.2}  # the rows' heartbeat is 0: stale at once


def _status(job_id: str) -> str:
    return f"{BASE}/$export-status/{job_id}"


async def _diagnostics(settings: Settings, job_id: str) -> str:
    """What the failed job's status says, as a restarted server answers it."""
    async with client_with(settings, **RESTARTED) as restarted:
        outcome = await failure(restarted, _status(job_id))
        assert (await restarted.get(f"/$export-file/{job_id}/Patient.ndjson")).status_code == 404
    (issue,) = outcome["issue"]
    assert issue["severity"] == "fatal" and issue["code"] == "processing"
    return str(issue["diagnostics"])


async def test_a_job_whose_files_are_gone_is_failed_saying_why(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create(client, f.patient())
    pk, line = await first_line(app)
    left = job_row("stopped-server", parts=[Part("output", "Patient", pk, 1, len(line))])
    await store(app, left)
    assert "removed or cut short" in await _diagnostics(settings, left.job_id)


async def test_a_job_that_cannot_write_to_its_directory_is_still_failed(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create(client, f.patient())
    pk, line = await first_line(app)
    left = job_row("stopped-server", parts=[Part("output", "Patient", pk, 1, len(line))])
    await store(app, left)
    (Path(settings.export_dir) / left.job_id).write_bytes(b"")  # no directory can go there
    assert "removed or cut short" in await _diagnostics(settings, left.job_id)


async def test_a_job_whose_progress_cannot_be_read_is_failed(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    left = job_row("stopped-server")._replace(progress='{"parts": [{"kind"')
    await store(app, left)
    assert "stored state could not be read" in await _diagnostics(settings, left.job_id)


async def test_a_job_whose_server_keeps_stopping_is_failed_after_so_many_resumes(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    left = job_row("stopped-server")
    await store(app, left, resumes=MAX_RESUMES)  # this takeover is one too many
    diagnostics = await _diagnostics(settings, left.job_id)
    assert f"interrupted {MAX_RESUMES + 1} times" in diagnostics
    async with database(app).reader() as conn:
        row = await export_jobs.job_of(conn, left.job_id)
    assert row is not None and row.status == "failed" and row.resumes == MAX_RESUMES + 1
    assert row.error == diagnostics


async def test_each_takeover_is_counted_in_the_row(app: FastAPI, client: httpx.AsyncClient) -> None:
    left = job_row("stopped-server", heartbeat=5)
    await store(app, left)
    async with database(app).transaction() as conn:
        assert await export_jobs.claim(conn, left.job_id, 5, "second", 6)
        assert not await export_jobs.claim(conn, left.job_id, 5, "third", 7)  # not stale now
        assert await export_jobs.claim(conn, left.job_id, 6, "third", 7)
        row = await export_jobs.job_of(conn, left.job_id)
    assert row is not None and row.resumes == 2 and row.runner == "third"


async def test_a_server_stopping_cleanly_gives_up_its_jobs_uncounted(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    stopping = create_app(settings.model_copy(update={"export_stale_seconds": 60}))
    async with stopping.router.lifespan_context(stopping):
        runner = app_context(stopping).exporter.runner
        left = job_row(runner, heartbeat=now_micros())  # running there, not stale
        await store(app, left, resumes=MAX_RESUMES)
    async with database(app).transaction() as conn:
        released = await export_jobs.job_of(conn, left.job_id)
        assert released is not None and released.runner is None and released.heartbeat == 0
        assert await export_jobs.claim(conn, left.job_id, 0, "next", 1)
        taken = await export_jobs.job_of(conn, left.job_id)
    assert taken is not None and taken.resumes == MAX_RESUMES  # a clean stop is not counted
