"""One run of an export job: each part's rows streamed from the database to its NDJSON file a
chunk at a time, the file flushed to disk and then the position committed, so that a run
taken up again (after a restart) truncates the file to its committed size and goes on from
the committed key. Files live in a directory per job under `SAFEGUARD_EXPORT_DIR`.

Spec: https://hl7.org/fhir/uv/bulkdata/STU2/export.html#file-request
"""

import asyncio
import logging
import os
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import orjson

from app.clock import now_micros
from app.criteria import Query
from app.errors import NotFound
from app.records.export_jobs import Job, Part, progress_json
from app.records.store import Store
from app.storage import changes, export_jobs, export_rows
from app.storage.export_rows import Snapshot
from app.storage.repository import Repository

log = logging.getLogger("safeguard.export")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,127}")


class Lost(Exception):
    """The job was cancelled, or another process has taken it over: stop writing."""


class FileLost(Exception):
    """A file is shorter than its committed size (removed or cut): the job cannot resume."""


class Files:
    """The export directory: a directory per job."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, job_id: str, name: str) -> Path:
        """Where a job's file is; 404 for names that cannot be one (no path tricks)."""
        if not (SAFE_NAME.fullmatch(job_id) and SAFE_NAME.fullmatch(name)) or ".." in name:
            raise NotFound.of("no such export file")
        return self.directory / job_id / name

    def remove(self, job_id: str) -> None:
        """Delete a job's directory and every file in it."""
        if SAFE_NAME.fullmatch(job_id):
            shutil.rmtree(self.directory / job_id, ignore_errors=True)

    def remove_orphans(self, job_ids: set[str], before: float) -> list[str]:
        """Delete the directories of no job in `job_ids` last changed before `before` (a
        time.time()): left by a crash between a job's deletion and its files', or made again
        by a runner as another process cancelled its job. Their names."""
        if not self.directory.is_dir():
            return []
        removed = []
        for entry in self.directory.iterdir():
            name = entry.name
            if name in job_ids or not SAFE_NAME.fullmatch(name) or not entry.is_dir():
                continue
            if entry.stat().st_mtime < before:
                self.remove(name)
                removed.append(name)
        return removed


def _open_at(path: Path, size: int) -> BinaryIO:
    """The file, for writing from its committed `size` on (anything past it dropped)."""
    if size == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb")
    if not path.is_file() or path.stat().st_size < size:
        raise FileLost(path.name)
    handle = path.open("r+b")
    handle.truncate(size)
    handle.seek(size)
    return handle


def _write_synced(out: BinaryIO, lines: bytes) -> None:
    """Append a chunk and make it durable, before its position is committed."""
    out.write(lines)
    out.flush()
    os.fsync(out.fileno())


def _deletion(resource_type: str, logical_id: str) -> bytes:
    """A line of a `deleted` file: a transaction Bundle deleting one resource
    (https://hl7.org/fhir/uv/bulkdata/STU2/export.html#bulk-data-delete-request)."""
    request = {"method": "DELETE", "url": f"{resource_type}/{logical_id}"}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [{"request": request}]}
    return orjson.dumps(bundle) + b"\n"


class Run:
    """A job being run by this process. Its heartbeat moves every `stale_seconds / 4` from a
    task of its own, however long a chunk takes, and the run renews it and checks it still
    owns the job right before opening or writing a file: another process takes a job over
    only once its heartbeat is `stale_seconds` old, so no file is written by two."""

    def __init__(
        self, job: Job, store: Store, files: Files, runner: str, chunk_rows: int, stale: float
    ) -> None:
        self.job, self.store, self.files = job, store, files
        self.runner, self.chunk_rows, self.stale_seconds = runner, chunk_rows, stale
        self.stopping = asyncio.Event()  # set: stop before the next chunk (the server stops)

    async def all_parts(
        self, filters: dict[str, list[Query]], shape: Callable[[bytes], bytes] | None
    ) -> None:
        """Write every part not yet done, then mark the job completed."""
        beating = asyncio.create_task(self._keep_beating(), name=f"beat-{self.job.job_id}")
        try:
            for part in self.job.parts:
                if not part.done:
                    await self._part(part, filters.get(part.resource_type, ()), shape)
        finally:
            beating.cancel()
        await asyncio.to_thread(self._drop_empty)
        await self._complete()

    async def _keep_beating(self) -> None:
        """Move the heartbeat while chunks run, until the run ends or loses the job."""
        while True:
            await asyncio.sleep(self.stale_seconds / 4)
            try:
                if not await self._beat():
                    return
            except Exception as exc:  # the database is unreachable now: the next beat retries
                log.warning("export job %s: no heartbeat (%s)", self.job.job_id, type(exc).__name__)

    async def _beat(self) -> bool:
        async with self.store.db.transaction() as conn:
            return await export_jobs.beat(conn, self.job.job_id, self.runner, now_micros())

    async def _own(self) -> None:
        """Renew the heartbeat before touching a file; Lost if the job is gone or another's
        (a cancelled job's directory is not made again)."""
        if not await self._beat():
            raise Lost(self.job.job_id)

    def _drop_empty(self) -> None:
        """Remove the files of parts with nothing to list (the manifest names none)."""
        for part in self.job.parts:
            if not part.count:
                self.files.path(self.job.job_id, part.file_name).unlink(missing_ok=True)

    def _snapshot(self, part: Part, filters: Sequence[Query]) -> Snapshot:
        request = self.job.request
        return Snapshot(
            part.resource_type,
            self.job.watermark,
            request.since,
            compartments_only=request.kind == "patient",
            filters=filters,
        )

    async def _part(
        self, part: Part, filters: Sequence[Query], shape: Callable[[bytes], bytes] | None
    ) -> None:
        wanted = self._snapshot(part, filters)
        path = self.files.path(self.job.job_id, part.file_name)
        await self._own()
        out = await asyncio.to_thread(_open_at, path, part.size)
        try:
            while not part.done:
                if self.stopping.is_set():
                    raise Lost(self.job.job_id)
                lines, last, read = await self._chunk(part, wanted, shape)
                await self._own()
                await asyncio.to_thread(_write_synced, out, lines)
                part.after = last if last is not None else part.after
                part.size += len(lines)
                part.done = read < self.chunk_rows
                await self._commit()
                await asyncio.sleep(0)  # SQLite's reads run on the loop: let requests in
        finally:
            out.close()

    async def _chunk(
        self, part: Part, wanted: Snapshot, shape: Callable[[bytes], bytes] | None
    ) -> tuple[bytes, int | None, int]:
        """The next chunk's lines, the last key read and how many rows were read."""
        async with self.store.reading(self.job.caller) as repo:
            if part.kind == "deleted":
                gone = await export_rows.deleted_chunk(repo, wanted, part.after, self.chunk_rows)
                part.count += len(gone)
                last = gone[-1][0] if gone else None
                return b"".join(_deletion(part.resource_type, i) for _, i in gone), last, len(gone)
            if part.kind == "hidden":
                return await self._hidden(repo, part, wanted)
            rows = await export_rows.snapshot_chunk(repo, wanted, part.after, self.chunk_rows)
        bodies = [row.body for row in rows if row.body is not None]
        part.count += len(bodies)
        if shape is not None:
            bodies = [shape(body) for body in bodies]
        lines = b"".join(body + b"\n" for body in bodies)
        return lines, rows[-1].key if rows else None, len(rows)

    async def _hidden(
        self, repo: Repository, part: Part, wanted: Snapshot
    ) -> tuple[bytes, int | None, int]:
        """The next chunk of what writes since `_since` hid from the caller, as deletions
        (`storage.changes.vanished`); in a Patient export, those in a compartment only."""
        assert wanted.since is not None
        hidden = await changes.vanished(
            repo,
            since=wanted.since,
            until=wanted.watermark,
            resource_types=(part.resource_type,),
            after=(part.after_at, part.after) if part.after else None,
            count=self.chunk_rows,
        )
        if not hidden:
            return b"", None, 0
        part.after_at = hidden[-1].changed_at
        listed = [v for v in hidden if v.patient_id is not None or not wanted.compartments_only]
        part.count += len(listed)
        lines = b"".join(_deletion(part.resource_type, v.logical_id) for v in listed)
        return lines, hidden[-1].seq, len(hidden)

    async def _commit(self) -> None:
        """Commit the job's progress; Lost if it is no longer this runner's."""
        progress = progress_json(self.job.parts)
        async with self.store.db.transaction() as conn:
            saved = await export_jobs.save_progress(
                conn, self.job.job_id, self.runner, progress, now_micros()
            )
        if not saved:
            raise Lost(self.job.job_id)

    async def _complete(self) -> None:
        progress = progress_json(self.job.parts)
        async with self.store.db.transaction() as conn:
            ended = await export_jobs.complete(
                conn, self.job.job_id, self.runner, progress, now_micros()
            )
        if not ended:
            raise Lost(self.job.job_id)
