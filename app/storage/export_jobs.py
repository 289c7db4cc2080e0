"""The `export_job` table: one row per bulk export, its state committed after each chunk.

A job is `in-progress` until it is `completed` or `failed` (`error` saying why); cancelling
deletes its row. Its `runner` is the server process running it: every update names the
runner, so a process that lost the job to another (which took it over once its heartbeat went
stale, counting it in `resumes`) stops at its next commit or heartbeat. No statement here
reads a resource: a job's rows are read by `export_rows`.
"""

from typing import NamedTuple

from app.storage.db import Connection

IN_PROGRESS = "in-progress"
COMPLETED = "completed"
FAILED = "failed"
NEW_COLUMNS = (
    "job_id, client_id, caller, request, params, watermark, status, progress, runner, "
    "heartbeat, created_at, finished_at"
)
COLUMNS = NEW_COLUMNS + ", error, resumes"


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
    error: str | None = None
    resumes: int = 0


async def insert_within_limit(conn: Connection, job: JobRow, limit: int) -> bool:
    """Store a new job unless its client already has `limit` jobs in progress; whether it was.

    On PostgreSQL a per-client transaction lock comes first, so of two kick-offs at once the
    second counts after the first commits (READ COMMITTED would let both count the same
    rows); SQLite's one writer already runs them one after the other."""
    if conn.dialect == "postgresql":
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"export:{job.client_id}"
        )
    row = await conn.fetchrow(
        f"INSERT INTO export_job ({NEW_COLUMNS}) SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), "
        "CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($5 AS TEXT), CAST($6 AS BIGINT), "
        "CAST($7 AS TEXT), CAST($8 AS TEXT), CAST($9 AS TEXT), CAST($10 AS BIGINT), "
        "CAST($11 AS BIGINT), CAST($12 AS BIGINT) WHERE (SELECT count(*) FROM export_job "
        "WHERE client_id = $2 AND status = $7) < CAST($13 AS BIGINT) RETURNING job_id",
        *job[:12],
        limit,
    )
    return row is not None


async def job_of(conn: Connection, job_id: str, client_id: str | None = None) -> JobRow | None:
    """The job with this id, if it is the client's (any client's when None)."""
    if client_id is None:
        row = await conn.fetchrow(f"SELECT {COLUMNS} FROM export_job WHERE job_id = $1", job_id)
    else:
        row = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM export_job WHERE job_id = $1 AND client_id = $2",
            job_id,
            client_id,
        )
    return None if row is None else JobRow(*row)


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


async def complete(conn: Connection, job_id: str, runner: str, progress: str, now: int) -> bool:
    """End a job as completed, as its runner; False if it is gone or another's."""
    row = await conn.fetchrow(
        f"UPDATE export_job SET status = '{COMPLETED}', progress = $3, heartbeat = $4, "
        f"finished_at = $4 WHERE job_id = $1 AND runner = $2 AND status = '{IN_PROGRESS}' "
        "RETURNING job_id",
        job_id,
        runner,
        progress,
        now,
    )
    return row is not None


async def fail(conn: Connection, job_id: str, runner: str, error: str, now: int) -> bool:
    """End a job as failed, saying why, as its runner (its progress, which may be what could
    not be read, left as it is); False if it is gone or another's."""
    row = await conn.fetchrow(
        f"UPDATE export_job SET status = '{FAILED}', error = $3, heartbeat = $4, "
        f"finished_at = $4 WHERE job_id = $1 AND runner = $2 AND status = '{IN_PROGRESS}' "
        "RETURNING job_id",
        job_id,
        runner,
        error,
        now,
    )
    return row is not None


async def beat(conn: Connection, job_id: str, runner: str, now: int) -> bool:
    """Move a job's heartbeat as its runner; False if it is gone, ended or another's."""
    row = await conn.fetchrow(
        "UPDATE export_job SET heartbeat = $3 WHERE job_id = $1 AND runner = $2 "
        f"AND status = '{IN_PROGRESS}' RETURNING job_id",
        job_id,
        runner,
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


async def release(conn: Connection, runner: str) -> int:
    """Give up the jobs in progress that `runner` runs, as a server stopping cleanly does: they
    are stale at once, and taking one over is not counted as a resume; how many."""
    rows = await conn.fetch(
        "UPDATE export_job SET runner = NULL, heartbeat = 0 WHERE runner = $1 "
        f"AND status = '{IN_PROGRESS}' RETURNING job_id",
        runner,
    )
    return len(rows)


async def claim(conn: Connection, job_id: str, heartbeat: int, runner: str, now: int) -> bool:
    """Take a stale job over (one more resume, unless its runner gave it up), unless its runner
    committed since `heartbeat`; whether taken."""
    row = await conn.fetchrow(
        "UPDATE export_job SET runner = $3, heartbeat = $4, "
        "resumes = resumes + CASE WHEN runner IS NULL THEN 0 ELSE 1 END "
        "WHERE job_id = $1 AND heartbeat = $2 "
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


async def job_ids(conn: Connection) -> set[str]:
    """The ids of every stored job (the export directory holds no other's files)."""
    rows = await conn.fetch("SELECT job_id FROM export_job")
    return {row[0] for row in rows}
