"""One runner per job, and no files without a job: a runner keeps its job's heartbeat moving
while a chunk runs, checks it still owns the job before it opens or writes a file (so a job
taken over or cancelled is never written by it again), and the supervisor removes
directories no job owns."""

import asyncio
import os
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from app.records.export_files import Files, Lost, Run
from app.records.export_jobs import Job, Part
from app.records.exporter import ExportOptions
from app.records.store import Store
from app.settings import Settings
from app.storage import export_jobs
from app.storage.export_jobs import JobRow
from tests import factories as f
from tests.conftest import app_context, database
from tests.http import client_with, create
from tests.records.stored_jobs import job_row, store

STALE = 0.2


def test_a_job_is_never_stale_at_once() -> None:
    with pytest.raises(ValidationError):
        Settings(export_stale_seconds=0)
    with pytest.raises(ValueError, match="above 0"):
        ExportOptions(Path("."), stale_seconds=0)


def _run(app: FastAPI, settings: Settings, row: JobRow, runner: str) -> Run:
    files = Files(Path(settings.export_dir))
    return Run(Job.of(row), app_context(app).store, files, runner, 1, STALE)


async def test_a_runner_that_lost_its_job_opens_no_file(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create(client, f.patient())
    taken = job_row("other-server", heartbeat=time.time_ns() // 1000)
    await store(app, taken)
    with pytest.raises(Lost):
        await _run(app, settings, taken, "this-server").all_parts({}, None)
    assert not (Path(settings.export_dir) / taken.job_id).exists()


async def test_a_runner_whose_job_was_cancelled_makes_no_directory_again(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    await create(client, f.patient())
    cancelled = job_row("this-server")  # its row deleted by a cancel from another server
    with pytest.raises(Lost):
        await _run(app, settings, cancelled, "this-server").all_parts({}, None)
    assert not (Path(settings.export_dir) / cancelled.job_id).exists()


class _SlowRun(Run):
    """A run whose chunks take several times `stale_seconds` to read."""

    async def _chunk(self, *args: object) -> tuple[bytes, int | None, int]:
        await asyncio.sleep(STALE * 3)
        return b"", None, 0


async def _heartbeat(store_: Store, job_id: str) -> int:
    async with store_.db.reader() as conn:
        row = await export_jobs.job_of(conn, job_id)
    assert row is not None
    return row.heartbeat


async def test_the_heartbeat_moves_while_a_long_chunk_runs(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    running = job_row("this-server", heartbeat=1, parts=[Part("output", "Patient")])
    await store(app, running)
    files = Files(Path(settings.export_dir))
    run = _SlowRun(Job.of(running), app_context(app).store, files, "this-server", 1, STALE)
    task = asyncio.create_task(run.all_parts({}, None))
    await asyncio.sleep(STALE * 1.5)  # the first chunk is still being read
    assert not task.done()
    moved = await _heartbeat(run.store, running.job_id)
    await asyncio.sleep(STALE)
    assert await _heartbeat(run.store, running.job_id) > moved > 1
    await task


async def test_directories_no_job_owns_are_removed_after_a_grace_period(
    settings: Settings, app: FastAPI, client: httpx.AsyncClient
) -> None:
    exports = Path(settings.export_dir)
    owned = job_row("other-server", heartbeat=time.time_ns() // 1000)
    await store(app, owned)
    for name in ("0rphan", "young0rphan", owned.job_id):
        (exports / name).mkdir()
        (exports / name / "Patient.ndjson").write_bytes(b"{}\n")
    hour_ago = time.time() - 3600
    os.utime(exports / "0rphan", (hour_ago, hour_ago))
    os.utime(exports / owned.job_id, (hour_ago, hour_ago))
    async with client_with(settings, export_stale_seconds=STALE):
        for _ in range(100):
            if not (exports / "0rphan").exists():
                break
            await asyncio.sleep(0.05)
    assert not (exports / "0rphan").exists()
    assert (exports / "young0rphan").is_dir() and (exports / owned.job_id).is_dir()
    async with database(app).transaction() as conn:
        await conn.execute("DELETE FROM export_job WHERE job_id = $1", owned.job_id)
