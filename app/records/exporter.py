"""Bulk export jobs as background work: kick-off, status, cancel, and the server process's
runner, which streams each job's rows to NDJSON files chunk by chunk and commits its position
after each, so a job survives a restart. It resumes jobs whose runner went quiet (stopped)
and deletes jobs and files past their retention.

One asyncio task per running job; every query is a short keyset-paged read as the job's
caller (`storage.export_rows`), and nothing of a file is kept in memory beyond one chunk.
Spec: https://hl7.org/fhir/uv/bulkdata/STU2/export.html
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from app.access import Caller
from app.clock import now_micros
from app.criteria import Query
from app.errors import ExportFailed, NotFound, TooManyRequests
from app.records import export_files
from app.records.export_jobs import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    ExportRequest,
    Job,
    caller_json,
    parts_of,
    progress_json,
)
from app.records.store import Store
from app.storage import export_jobs, feed
from app.storage.export_jobs import JobRow

log = logging.getLogger("safeguard.export")
STOP_SECONDS = 10.0  # how long closing waits for jobs to reach the end of a chunk
RETRY_AFTER_SECONDS = 2  # what a client polling a running job, or refused one, is told
CHUNK_ROWS = {"postgresql": 2000, "sqlite": 200}
MAX_RESUMES = 3  # takeovers of a job whose runner stopped; the next one fails it
ORPHAN_STALE_TIMES = 10  # a directory no job owns goes once this many stale_seconds old
FilterQuery = Callable[[str, str], Query]  # (type, query text) -> its search
Shape = Callable[[bytes, tuple[str, ...]], bytes]  # (resource bytes, _elements) -> bytes


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Where files go and how jobs run (`Settings.export_*`)."""

    directory: Path
    retention_seconds: int = 86400
    max_jobs_per_client: int = 2
    chunk_rows: int | None = None
    stale_seconds: float = 30.0  # > 0, and well above the time a chunk takes

    def __post_init__(self) -> None:
        if self.stale_seconds <= 0:
            raise ValueError("stale_seconds must be above 0 (well above a chunk's time)")


class Exporter:
    """The export jobs of one server process."""

    def __init__(
        self, store: Store, options: ExportOptions, filter_query: FilterQuery, shape: Shape
    ) -> None:
        self.store = store
        self.options = options
        self.runner = uuid.uuid4().hex  # this process, in the rows of the jobs it runs
        self.files = export_files.Files(options.directory)
        self._filter_query = filter_query
        self._shape = shape
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def chunk_rows(self) -> int:
        """Rows read per query."""
        return self.options.chunk_rows or CHUNK_ROWS[self.store.dialect]

    def start(self) -> None:
        """Start resuming stale jobs and deleting expired ones in the background."""
        self._supervisor = asyncio.create_task(self._supervise(), name="export-supervisor")

    async def close(self) -> None:
        """Stop every job this process runs after its current chunk, and give them up: each
        resumes from its last commit in the next server to look, and a clean stop is not
        counted against MAX_RESUMES. Tasks stop between chunks, never mid-transaction."""
        self._stopping.set()
        tasks = [t for t in (self._supervisor, *self._tasks.values()) if t is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=STOP_SECONDS)
            for task in late:
                task.cancel()
        self._supervisor = None
        try:
            async with self.store.db.transaction() as conn:
                await export_jobs.release(conn, self.runner)
        except Exception as exc:  # unreachable: they are taken over once stale, and counted
            log.warning("export jobs not given up: %s", type(exc).__name__)

    async def kick_off(self, caller: Caller, request_url: str, request: ExportRequest) -> str:
        """Store a new job as of now and start it; its id. 429 when the client has as many
        jobs in progress as it may."""
        job_id = uuid.uuid4().hex
        async with self.store.db.reader() as conn:  # cut as a history answer is
            watermark = await feed.poll_point(conn, request.since)
        now = now_micros()
        row = JobRow(
            job_id,
            caller.subject,
            caller_json(caller),
            request_url,
            request.to_json(),
            watermark,
            IN_PROGRESS,
            progress_json(parts_of(request)),
            self.runner,
            now,
            now,
            None,
        )
        limit = self.options.max_jobs_per_client
        async with self.store.db.transaction() as conn:
            stored = await export_jobs.insert_within_limit(conn, row, limit)
        if not stored:
            raise TooManyRequests(
                TooManyRequests.of(
                    f"this client already has {limit} export jobs in progress; "
                    "wait for one to finish or cancel one",
                    code="throttled",
                ).issues,
                retry_after=RETRY_AFTER_SECONDS,
            )
        self._begin(job_id)
        return job_id

    async def _row(self, job_id: str, client_id: str) -> JobRow:
        """A client's job row; 404 for any other (another client's is as unknown as none)."""
        async with self.store.db.reader() as conn:
            row = await export_jobs.job_of(conn, job_id, client_id)
        if row is None:
            raise NotFound.of(f"export job {job_id} is not known")
        return row

    async def job(self, job_id: str, client_id: str) -> Job:
        """A client's job in progress or completed; 404 for any other, ExportFailed (500,
        saying why) for one that failed."""
        row = await self._row(job_id, client_id)
        if row.status == FAILED:
            raise ExportFailed.because(row.error or "the export failed")
        try:
            return _decoded(row)
        except Unreadable as exc:  # its runner is failing it
            raise ExportFailed.because(_diagnostics(exc)) from exc

    async def cancel(self, job_id: str, client_id: str) -> None:
        """Stop a client's job and delete it and its files; 404 if it has none such."""
        async with self.store.db.transaction() as conn:
            removed = await export_jobs.delete(conn, job_id, client_id)
        if not removed:
            raise NotFound.of(f"export job {job_id} is not known")
        task = self._tasks.get(job_id)
        if task is not None:  # it stops at its next commit, which finds the job gone
            await asyncio.wait([task], timeout=STOP_SECONDS)
        await asyncio.to_thread(self.files.remove, job_id)

    async def file(self, job_id: str, caller: Caller, name: str) -> Path:
        """The path of a file of the caller's client's completed job that its manifest lists,
        of a type the caller's own token may read (a narrower token of the same client may
        not have every file); 404 otherwise."""
        row = await self._row(job_id, caller.subject)
        job = _decoded(row) if row.status == COMPLETED else None
        part = None if job is None else job.part_named(name)
        readable = caller.readable_types
        if part is None or (readable is not None and part.resource_type not in readable):
            raise NotFound.of(f"export file {job_id}/{name} is not known")
        path = self.files.path(job_id, name)
        if not await asyncio.to_thread(path.is_file):
            raise NotFound.of(f"export file {job_id}/{name} is not known")
        return path

    def _begin(self, job_id: str) -> None:
        if job_id not in self._tasks:
            task = asyncio.create_task(self._run(job_id), name=f"export-{job_id}")
            self._tasks[job_id] = task
            task.add_done_callback(lambda _: self._tasks.pop(job_id, None))

    async def _run(self, job_id: str) -> None:
        """Run a job to its end, unless another process takes it or it is cancelled; failed
        (in its row) on any error, or once it has been resumed more than MAX_RESUMES times."""
        async with self.store.db.reader() as conn:
            row = await export_jobs.job_of(conn, job_id)
        if row is None or row.status != IN_PROGRESS or row.runner != self.runner:
            return
        try:
            if row.resumes > MAX_RESUMES:
                raise Interrupted(row.resumes)
            await self._work(_decoded(row))
        except export_files.Lost:
            return
        except Exception as exc:  # anything else ends the job as failed, saying why
            log.warning("export job %s failed: %s", job_id, type(exc).__name__)
            await self._fail(job_id, _diagnostics(exc))

    async def _work(self, job: Job) -> None:
        run = export_files.Run(
            job, self.store, self.files, self.runner, self.chunk_rows, self.options.stale_seconds
        )
        run.stopping = self._stopping
        filters = {
            name: [self._filter_query(name, text) for text in texts]
            for name, texts in job.request.type_filters.items()
        }
        elements = job.request.elements
        await run.all_parts(filters, None if elements is None else self._shaper(elements))

    async def _fail(self, job_id: str, diagnostics: str) -> None:
        """Mark the job failed in its row first (nothing on disk needed), then drop its files.
        If even that cannot be done, it stays in progress and is taken over later, which
        counts towards MAX_RESUMES."""
        try:
            async with self.store.db.transaction() as conn:
                ended = await export_jobs.fail(conn, job_id, self.runner, diagnostics, now_micros())
        except Exception as exc:
            log.warning("export job %s not marked failed: %s", job_id, type(exc).__name__)
            return
        if ended:
            await asyncio.to_thread(self.files.remove, job_id)

    def _shaper(self, elements: tuple[str, ...]) -> Callable[[bytes], bytes]:
        return lambda body: self._shape(body, elements)

    async def _supervise(self) -> None:
        """Resume stale jobs and delete expired ones, now and then."""
        options = self.options
        interval = max(0.05, min(5.0, options.retention_seconds / 4, options.stale_seconds / 2))
        while not self._stopping.is_set():
            try:
                await self._resume_stale()
                await self._expire()
                await self._remove_orphans()
            except Exception as exc:  # the database is unreachable now: the next pass retries
                log.warning("export jobs not checked: %s", type(exc).__name__)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)

    async def _resume_stale(self) -> None:
        now = now_micros()
        before = now - int(self.options.stale_seconds * 1_000_000)
        async with self.store.db.reader() as conn:
            found = await export_jobs.stale(conn, before)
        for job_id, heartbeat in found:
            if job_id in self._tasks:
                continue
            async with self.store.db.transaction() as conn:
                taken = await export_jobs.claim(conn, job_id, heartbeat, self.runner, now)
            if taken:
                log.info("export job %s resumed", job_id)
                self._begin(job_id)

    async def _remove_orphans(self) -> None:
        """Remove directories under the export directory that no job owns, past a grace
        period (longer than any runner may take between checking its job and writing)."""
        async with self.store.db.reader() as conn:
            owned = await export_jobs.job_ids(conn)
        before = time.time() - ORPHAN_STALE_TIMES * self.options.stale_seconds
        removed = await asyncio.to_thread(self.files.remove_orphans, owned, before)
        if removed:
            log.info("%d export directories without a job removed", len(removed))

    async def _expire(self) -> None:
        before = now_micros() - self.options.retention_seconds * 1_000_000
        async with self.store.db.reader() as conn:
            if not await export_jobs.any_expired(conn, before):
                return
        async with self.store.db.transaction() as conn:
            expired = await export_jobs.expire(conn, before)
        for job_id in expired:
            await asyncio.to_thread(self.files.remove, job_id)


class Interrupted(Exception):
    """The job's runners stopped (the server killed) more often than it is resumed."""


class Unreadable(Exception):
    """A job's stored state (progress, request or caller) cannot be decoded."""


def _decoded(row: JobRow) -> Job:
    """The job a row holds; Unreadable if its JSON is not what a job stores."""
    try:
        return Job.of(row)
    except (ValueError, KeyError, TypeError) as exc:
        raise Unreadable(row.job_id) from exc


def _diagnostics(exc: Exception) -> str:
    """Why a job failed, as its client is told (no patient data: no exception text)."""
    if isinstance(exc, Interrupted):
        return (
            f"the export was interrupted {exc.args[0]} times (its server stopped while running "
            "it) and is not resumed again; start a new export"
        )
    if isinstance(exc, Unreadable):
        return "the export's stored state could not be read; start a new export"
    if isinstance(exc, export_files.FileLost):
        return "the export's files were removed or cut short while it ran; start a new export"
    return f"the export could not be completed ({type(exc).__name__})"


__all__ = ["FAILED", "ExportOptions", "Exporter"]
