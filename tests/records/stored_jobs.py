"""Export jobs as a stopped server left them, written straight to the table, for the tests
of taking jobs over, failing them and cleaning up after them."""

import uuid
from pathlib import Path

from fastapi import FastAPI

from app.access import caller_for
from app.access.scopes import parse
from app.clock import now_micros
from app.records.export_jobs import ExportRequest, Part, caller_json, progress_json
from app.registry import RESOURCE_TYPES
from app.settings import Settings
from app.storage import export_jobs
from app.storage.export_jobs import IN_PROGRESS, JobRow
from tests.conftest import BASE, database

TYPES = frozenset(RESOURCE_TYPES)


def file_path(settings: Settings, url: str) -> Path:
    """Where a file the manifest lists lies on disk."""
    job_id, name = url.rsplit("/", 2)[-2:]
    return Path(settings.export_dir) / job_id / name


def job_row(
    runner: str,
    *,
    client_id: str = "test-system",
    heartbeat: int = 0,
    parts: list[Part] | None = None,
    watermark: int | None = None,
) -> JobRow:
    """A job in progress, as a server left it."""
    caller = caller_for(
        client_id, "Organization/test-org", "system", parse("system/*.rs", TYPES), TYPES
    )
    request = ExportRequest("system", ("Patient",))
    job_id = uuid.uuid4().hex
    return JobRow(
        job_id,
        client_id,
        caller_json(caller),
        f"{BASE}/$export",
        request.to_json(),
        watermark or now_micros(),
        IN_PROGRESS,
        progress_json(parts or [Part("output", "Patient")]),
        runner,
        heartbeat,
        0,
        None,
    )


async def store(app: FastAPI, row: JobRow, *, resumes: int = 0) -> None:
    """Write a job row (taken over `resumes` times already)."""
    async with database(app).transaction() as conn:
        assert await export_jobs.insert_within_limit(conn, row, 100)
        if resumes:
            await conn.execute(
                "UPDATE export_job SET resumes = $2 WHERE job_id = $1", row.job_id, resumes
            )


async def first_line(app: FastAPI) -> tuple[int, bytes]:
    """(pk, line) of the first Patient an export writes."""
    async with database(app).reader() as conn:
        row = await conn.fetchrow(
            "SELECT r.pk, r.body FROM resource r WHERE r.resource_type = 'Patient' "
            "AND NOT r.deleted ORDER BY r.pk LIMIT 1"
        )
    assert row is not None
    return row[0], bytes(row[1]) + b"\n"
