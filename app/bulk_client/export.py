"""A Bulk Data export run from the client's side: kick-off, status polls honouring
Retry-After, then every output, deleted and error file streamed to a folder.
Spec: https://hl7.org/fhir/uv/bulkdata/export.html (STU2)

Files are written as they arrive, a chunk at a time (never whole in memory), first under a
`.part` name, renamed once complete. The manifest is saved beside them as `manifest.json`.
The token goes only to the server's own origin, and to file URLs only if the manifest says
they need one.
"""

import asyncio
import email.utils
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from app.bulk_client.credentials import ClientError, Credentials

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = (429, 500, 502, 503, 504)  # the job may still be fine: ask again later
# IssueType codes under `transient`: a status poll answered with one of these (or with no
# OperationOutcome) is asked again; any other 4XX/5XX outcome means the export failed
# (https://hl7.org/fhir/uv/bulkdata/STU2/export.html#response---error-status-1)
TRANSIENT_CODES = frozenset(
    {"transient", "lock-error", "no-store", "exception", "timeout", "incomplete", "throttled"}
)
MAX_RETRIES = 10  # consecutive failed polls or downloads before giving up
MAX_WAIT = 3600.0  # seconds: the longest Retry-After honoured
TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}")
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export: the kick-off's level and parameters."""

    patient_level: bool = False
    types: tuple[str, ...] = ()
    since: str | None = None
    type_filters: tuple[str, ...] = ()
    elements: tuple[str, ...] = ()

    def url(self, server: str) -> str:
        """The kick-off URL: system level, or all Patients."""
        base = server.rstrip("/")
        return f"{base}/Patient/$export" if self.patient_level else f"{base}/$export"

    def params(self) -> tuple[tuple[str, str], ...]:
        """The query parameters given (lists comma-joined; each type filter on its own)."""
        found: list[tuple[str, str]] = []
        if self.types:
            found.append(("_type", ",".join(self.types)))
        if self.since is not None:
            found.append(("_since", self.since))
        found += [("_typeFilter", type_filter) for type_filter in self.type_filters]
        if self.elements:
            found.append(("_elements", ",".join(self.elements)))
        return tuple(found)


@dataclass(frozen=True, slots=True)
class Downloaded:
    """One file written: its kind (output, deleted, error), type, path, size, NDJSON lines."""

    kind: str
    resource_type: str
    path: Path
    size: int
    lines: int
    listed_count: int | None  # the manifest's count, if it gave one


@dataclass(slots=True)
class Result:
    """What an export brought: the manifest, the files, and how long each part took."""

    manifest: dict[str, Any]
    files: list[Downloaded] = field(default_factory=list)
    export_seconds: float = 0.0  # kick-off to complete manifest
    download_seconds: float = 0.0

    @property
    def error_files(self) -> int:
        """How many error files the manifest listed."""
        return len(self.manifest.get("error") or [])


class Reporter(Protocol):
    """What an export tells as it goes (a progress display, or nothing)."""

    def waiting(self, progress: str | None) -> None: ...
    def file_started(self, name: str, size: int | None) -> None: ...
    def received(self, size: int) -> None: ...
    def file_done(self) -> None: ...


class Quiet:
    """A reporter that says nothing."""

    def waiting(self, progress: str | None) -> None:
        """Nothing."""

    def file_started(self, name: str, size: int | None) -> None:
        """Nothing."""

    def received(self, size: int) -> None:
        """Nothing."""

    def file_done(self) -> None:
        """Nothing."""


def retry_after(response: httpx.Response, fallback: float) -> float:
    """Seconds to wait, from Retry-After (seconds or an HTTP date), else `fallback`."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return min(float(value), MAX_WAIT)
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return fallback
        return min(max(when - time.time(), 0.0), MAX_WAIT)
    return fallback


def _outcome_codes(response: httpx.Response) -> set[str] | None:
    """The issue codes of an OperationOutcome answer; None if it is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return None
    return {str(issue.get("code")) for issue in body.get("issue") or [] if isinstance(issue, dict)}


def transient(response: httpx.Response) -> bool:
    """Whether a failed status poll may succeed later: a status that can be passing, and no
    OperationOutcome saying the export itself failed (no issue code of the transient kind)."""
    if response.status_code not in RETRY_STATUSES:
        return False
    codes = _outcome_codes(response)
    return codes is None or bool(codes & TRANSIENT_CODES)


def problem(response: httpx.Response) -> str:
    """What a refusal says: its OperationOutcome's diagnostics, or the start of its text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        issues = body.get("issue") or []
        return "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues)[:500]
    return response.text[:300]


class Exporter:
    """One export against one server, through one HTTP client."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        server: str,
        credentials: Credentials,
        reporter: Reporter | None = None,
    ) -> None:
        self.client, self.server, self.credentials = client, server.rstrip("/"), credentials
        self.reporter: Reporter = reporter or Quiet()
        self.origin = _origin(self.server)

    async def _headers(self, url: str, token: bool = True) -> dict[str, str]:
        """The Authorization header for `url`: only for the server's own origin."""
        if not token or _origin(url) != self.origin:
            return {}
        return await self.credentials.header(self.client, self.server)

    async def kick_off(self, request: ExportRequest) -> str:
        """Start the export; the status URL (Content-Location of the 202)."""
        url = request.url(self.server)
        headers = {"Accept": FHIR_JSON, "Prefer": "respond-async", **await self._headers(url)}
        response = await self.client.get(url, params=request.params(), headers=headers)
        location = response.headers.get("content-location")
        if response.status_code != 202 or not location:
            raise ClientError(f"kick-off refused: {response.status_code} {problem(response)}")
        return str(urljoin(url, location))

    async def manifest(self, status_url: str) -> dict[str, Any]:
        """Poll the status URL until the manifest is complete, waiting as the server asks."""
        failures, fallback = 0, 1.0
        while True:
            headers = {"Accept": "application/json", **await self._headers(status_url)}
            response = await self.client.get(status_url, headers=headers)
            if response.status_code == 200:
                found: dict[str, Any] = response.json()
                return found
            if response.status_code == 202:
                failures = 0
                self.reporter.waiting(response.headers.get("x-progress"))
            elif transient(response) and failures < MAX_RETRIES:
                failures += 1
            else:
                raise ClientError(f"export failed: {response.status_code} {problem(response)}")
            await asyncio.sleep(retry_after(response, fallback))
            fallback = min(fallback * 2, 30.0)

    async def cancel(self, status_url: str) -> None:
        """Ask the server to cancel the job and remove its files (202)."""
        headers = await self._headers(status_url)
        await self.client.delete(status_url, headers=headers)

    async def download(self, url: str, target: Path, needs_token: bool) -> tuple[int, int]:
        """Stream one file to `target` (written as `.part`, renamed when whole): bytes, lines."""
        url = urljoin(self.server + "/", url)
        for attempt in range(MAX_RETRIES + 1):
            headers = {"Accept": "application/fhir+ndjson"}
            headers |= await self._headers(url, needs_token)
            async with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code == 200:
                    return await self._save(response, target)
                if response.status_code not in RETRY_STATUSES or attempt == MAX_RETRIES:
                    await response.aread()
                    raise ClientError(f"GET {url}: {response.status_code} {problem(response)}")
                wait = retry_after(response, 2.0**attempt)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _save(self, response: httpx.Response, target: Path) -> tuple[int, int]:
        length = response.headers.get("content-length")
        self.reporter.file_started(target.name, int(length) if length else None)
        size = lines = 0
        last = b"\n"
        partial = target.with_name(target.name + ".part")
        with partial.open("wb") as out:
            async for chunk in response.aiter_bytes(CHUNK):
                out.write(chunk)
                size, lines, last = size + len(chunk), lines + chunk.count(b"\n"), chunk[-1:]
                self.reporter.received(len(chunk))
        partial.replace(target)
        lines += last != b"\n"  # a last line without its newline
        self.reporter.file_done()
        return size, lines


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def planned_files(manifest: dict[str, Any]) -> Iterator[tuple[str, str, str, int | None]]:
    """(kind, type, url, listed count) of every file a manifest lists."""
    for kind in ("output", "deleted", "error"):
        for item in manifest.get(kind) or []:
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                raise ClientError(f"the manifest's {kind} lists an item without a url")
            name = str(item.get("type", ""))
            count = item.get("count")
            yield (
                kind,
                name if TYPE_NAME.fullmatch(name) else "Unknown",
                item["url"],
                count if isinstance(count, int) else None,
            )


def file_name(kind: str, resource_type: str, taken: dict[str, int]) -> str:
    """Where a file goes in the folder: `Flag.ndjson`, `Flag.2.ndjson`, `deleted/Bundle.ndjson`,
    `error/OperationOutcome.ndjson` (names of our making, never the server's)."""
    prefix = "" if kind == "output" else f"{kind}/"
    key = prefix + resource_type
    taken[key] = taken.get(key, 0) + 1
    number = "" if taken[key] == 1 else f".{taken[key]}"
    return f"{key}{number}.ndjson"


def _save_manifest(out: Path, manifest: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))


def _folder_for(target: Path) -> Path:
    target.parent.mkdir(exist_ok=True)
    return target


async def run_export(
    exporter: Exporter, request: ExportRequest, out: Path, keep: bool = False
) -> Result:
    """Kick off, wait for the manifest, download every file into `out`; then, unless `keep`,
    tell the server the files may go (DELETE on the status URL)."""
    started = time.perf_counter()
    status_url = await exporter.kick_off(request)
    try:
        manifest = await exporter.manifest(status_url)
    except (asyncio.CancelledError, KeyboardInterrupt):
        await asyncio.shield(exporter.cancel(status_url))
        raise
    result = Result(manifest, export_seconds=time.perf_counter() - started)
    _save_manifest(out, manifest)
    needs_token = manifest.get("requiresAccessToken") is not False
    taken: dict[str, int] = {}
    for kind, resource_type, url, count in planned_files(manifest):
        target = _folder_for(out / file_name(kind, resource_type, taken))
        size, lines = await exporter.download(url, target, needs_token)
        result.files.append(Downloaded(kind, resource_type, target, size, lines, count))
    result.download_seconds = time.perf_counter() - started - result.export_seconds
    if not keep:
        await exporter.cancel(status_url)
    return result
