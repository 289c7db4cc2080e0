"""The `export_job` table: one row per bulk export, its state committed after each chunk.

A job is `in-progress` until it is `completed` or `failed`; cancelling deletes its row.
Its `runner` is the server process running it: every update names the runner, so a process
that lost the job to another (which took it over once its heartbeat went stale) stops at its
next commit. No statement here reads a resource: a job's rows are read by `export_rows`.
"""

from typing import NamedTuple

from app.storage.db import Connection

IN_PROGRESS = "in-progress"
COMPLETED = "completed"
FAILED = "failed"
COLUMNS = (
    "job_id, client_id, caller, request, params, watermark, status, progress, runner, "
    "heartbeat, created_at, finished_at"
)


class JobRow(NamedTuple):
    """One stored job; `caller`, `params` and `progress` are JSON text."""

    job_id: str
    client_id: str
    caller: str
    request: str
    params: str
    watermark: int
    status: str
    progress: str
    runner: str | None
    heartbeat: int
    created_at: int
    finished_at: int | None


async def insert_within_limit(conn: Connection, job: JobRow, limit: int) -> bool:
    """Store a new job unless its client already has `limit` jobs in progress; whether it was."""
    row = await conn.fetchrow(
        f"INSERT INTO export_job ({COLUMNS}) SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), "
        "CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($5 AS TEXT), CAST($6 AS BIGINT), "
        "CAST($7 AS TEXT), CAST($8 AS TEXT), CAST($9 AS TEXT), CAST($10 AS BIGINT), "
        "CAST($11 AS BIGINT), CAST($12 AS BIGINT) WHERE (SELECT count(*) FROM export_job "
        "WHERE client_id = $2 AND status = $7) < CAST($13 AS BIGINT) RETURNING job_id",
        *job,
        limit,
    )
    return row is not None


async def job_of(conn: Connection, job_id: str, client_id: str | None = None) -> JobRow | None:
    """The job with this id, if it is the client's (any client's when None)."""
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM export_job WHERE job_id = $1", job_id)
    if row is None or (client_id is not None and row[1] != client_id):
        return None
    return JobRow(*row)


async def save_progress(
    conn: Connection, job_id: str, runner: str, progress: str, now: int
) -> bool:
    """Commit a job's progress as its runner; False if the job is gone or run by another."""
    row = await conn.fetchrow(
        "UPDATE export_job SET progress = $3, heartbeat = $4 WHERE job_id = $1 AND runner = $2 "
        f"AND status = '{IN_PROGRESS}' RETURNING job_id",
        job_id,
        runner,
        progress,
        now,
    )
    return row is not None


async def finish(
    conn: Connection, job_id: str, runner: str, status: str, progress: str, now: int
) -> bool:
    """End a job (`completed` or `failed`) as its runner; False if it is gone or another's."""
    row = await conn.fetchrow(
        "UPDATE export_job SET status = $3, progress = $4, heartbeat = $5, finished_at = $5 "
        f"WHERE job_id = $1 AND runner = $2 AND status = '{IN_PROGRESS}' RETURNING job_id",
        job_id,
        runner,
        status,
        progress,
        now,
    )
    return row is not None


async def stale(conn: Connection, before: int) -> list[tuple[str, int]]:
    """(job id, heartbeat) of the jobs in progress with no commit since `before`."""
    rows = await conn.fetch(
        f"SELECT job_id, heartbeat FROM export_job WHERE status = '{IN_PROGRESS}' "
        "AND heartbeat < $1 ORDER BY created_at",
        before,
    )
    return [(row[0], row[1]) for row in rows]


async def claim(conn: Connection, job_id: str, heartbeat: int, runner: str, now: int) -> bool:
    """Take a stale job over, unless its runner committed since `heartbeat`; whether taken."""
    row = await conn.fetchrow(
        "UPDATE export_job SET runner = $3, heartbeat = $4 WHERE job_id = $1 AND heartbeat = $2 "
        f"AND status = '{IN_PROGRESS}' RETURNING job_id",
        job_id,
        heartbeat,
        runner,
        now,
    )
    return row is not None


async def delete(conn: Connection, job_id: str, client_id: str) -> bool:
    """Remove a client's job (cancelled); whether there was one."""
    row = await conn.fetchrow(
        "DELETE FROM export_job WHERE job_id = $1 AND client_id = $2 RETURNING job_id",
        job_id,
        client_id,
    )
    return row is not None


async def any_expired(conn: Connection, before: int) -> bool:
    """Whether a job ended before `before` (read first, so an idle pass takes no write lock)."""
    row = await conn.fetchrow(
        "SELECT 1 FROM export_job WHERE finished_at IS NOT NULL AND finished_at < $1 LIMIT 1",
        before,
    )
    return row is not None


async def expire(conn: Connection, before: int) -> list[str]:
    """Remove the jobs that ended before `before`; their ids (whose files go next)."""
    rows = await conn.fetch(
        "DELETE FROM export_job WHERE finished_at IS NOT NULL AND finished_at < $1 "
        "RETURNING job_id",
        before,
    )
    return [row[0] for row in rows]
