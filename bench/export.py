"""`make bench-export`: a full system Bulk Data export of a large population, over HTTP.

A fresh migrated PostgreSQL database is bulk-loaded (`app.storage.bulk`) with a seeded
population (`bench.population`: `--resources` 1,000,000 by default, ~7 a child), analysed, then
served by one uvicorn worker with its export folder in a temporary directory. The bench client
(role `system`) kicks off `GET /fhir/$export` and polls the status URL every `--poll` seconds
(not waiting out Retry-After, so the end is seen when it comes); resources per second is the
manifest's resources over the time from kick-off to the complete manifest. Meanwhile the server
process's memory is sampled from /proc/<pid>/status (VmRSS every 20 ms, and VmHWM, the kernel's
own peak, reset before the kick-off, at the end): peak growth is the peak over the RSS just
before the kick-off. Then every file is downloaded (`app.bulk_client`) and its lines counted
against the load. For comparison, the same rows are read raw: `SELECT body FROM resource`
through a server-side cursor, type by type, on one asyncpg connection.
"""

import argparse
import asyncio
import contextlib
import datetime
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app.bulk_client.credentials import Credentials
from app.bulk_client.export import Exporter, ExportRequest, planned_files
from app.storage.db import asyncpg_dsn
from bench import population as pop
from bench.backends import UnavailableError, database
from bench.process import ROOT, Server, serve
from bench.report import write_json
from bench.search_volume import load

OUTPUT = ROOT / "bench" / "results" / "export.json"
TARGET_RATE, TARGET_GROWTH_MB = 50_000.0, 100.0
PER_CHILD = 7  # resources a child of `bench.population` brings, on average
TYPES = ("Organization", "Patient", "Flag", "Condition", "RelatedPerson")


def _status_kb(pid: int, field_name: str) -> int | None:
    """A `VmRSS:`-style line of /proc/<pid>/status, in kB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


@dataclass(slots=True)
class Memory:
    """The server's RSS sampled in a thread: the baseline, and the highest seen."""

    pid: int
    interval: float = 0.02
    baseline_kb: int = 0
    peak_kb: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Reset the kernel's peak (VmHWM), note the RSS now, then sample until `stop`."""
        with contextlib.suppress(OSError):  # else VmHWM counts from the start: growth errs high
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.baseline_kb = self.peak_kb = _status_kb(self.pid, "VmRSS") or 0
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = _status_kb(self.pid, "VmRSS")
            if rss is not None:
                self.peak_kb, self.samples = max(self.peak_kb, rss), self.samples + 1

    def stop(self) -> dict[str, float]:
        """Stop sampling; baseline, peak and growth in MB (the peak counts VmHWM too)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        hwm = _status_kb(self.pid, "VmHWM") or 0
        peak = max(self.peak_kb, hwm)
        return {
            "baseline_mb": self.baseline_kb / 1024,
            "peak_rss_mb": self.peak_kb / 1024,
            "vm_hwm_mb": hwm / 1024,
            "growth_mb": (peak - self.baseline_kb) / 1024,
            "samples": self.samples,
        }


async def _export(server: Server, out: Path, poll: float) -> dict[str, Any]:
    """Kick off, poll every `poll` s to the manifest, then download every file."""
    base = f"{server.url}/fhir"
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0)) as client:
        exporter = Exporter(client, base, Credentials(token=server.tokens.token()))
        started = time.perf_counter()
        status_url = await exporter.kick_off(ExportRequest())
        polls = 0
        while True:
            polls += 1
            response = await client.get(status_url, headers=server.tokens.headers())
            if response.status_code == 200:
                manifest: dict[str, Any] = response.json()
                break
            if response.status_code != 202:
                raise RuntimeError(f"status: {response.status_code} {response.text[:300]}")
            await asyncio.sleep(poll)
        exported = time.perf_counter() - started
        lines = await _download(exporter, manifest, out)
        downloaded = time.perf_counter() - started - exported
        await exporter.cancel(status_url)
    return {
        "manifest": manifest,
        "export_seconds": exported,
        "download_seconds": downloaded,
        "polls": polls,
        "lines": lines,
    }


async def _download(exporter: Exporter, manifest: dict[str, Any], out: Path) -> dict[str, int]:
    """Every output and error file into `out`; NDJSON lines per type."""
    lines: dict[str, int] = {}
    for n, (kind, resource_type, url, _) in enumerate(planned_files(manifest)):
        _, count = await exporter.download(url, out / f"{n}.{kind}.ndjson", True)
        key = resource_type if kind == "output" else kind
        lines[key] = lines.get(key, 0) + count
    return lines


async def raw_read(url: str) -> dict[str, float]:
    """Every live resource's stored bytes through a server-side cursor, type by type."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    rows = size = 0
    started = time.perf_counter()
    try:
        async with conn.transaction(readonly=True):
            for resource_type in TYPES:
                query = (
                    "SELECT body FROM resource WHERE resource_type = $1 AND NOT deleted ORDER BY pk"
                )
                async for row in conn.cursor(query, resource_type, prefetch=2000):
                    rows, size = rows + 1, size + len(row[0])
    finally:
        await conn.close()
    seconds = time.perf_counter() - started
    return {"rows": rows, "bytes": size, "seconds": seconds, "rows_per_second": rows / seconds}


def bench_export(
    url: str, workdir: Path, population: pop.Population, poll: float
) -> dict[str, Any]:
    """Load, serve, export (memory sampled), download, then the raw read."""
    loaded = load("postgresql", url, population)
    environment = {"SAFEGUARD_EXPORT_DIR": str(workdir / "exports")}
    with serve(url, workdir, timeout=120.0, environment=environment) as server:
        httpx.get(f"{server.url}/fhir/metadata", timeout=10.0)
        memory = Memory(server.proc.pid)
        memory.start()
        try:
            (workdir / "files").mkdir()
            found = asyncio.run(_export(server, workdir / "files", poll))
        finally:
            rss = memory.stop()
    raw = asyncio.run(raw_read(url))
    counted = sum(int(item.get("count", 0)) for item in found["manifest"].get("output", []))
    exported = sum(v for k, v in found["lines"].items() if k in TYPES)
    return {
        "load": loaded,
        "resources": counted,
        "lines": found["lines"],
        "complete": exported == loaded["resources"] == counted,
        "errors": len(found["manifest"].get("error") or []),
        "export_seconds": found["export_seconds"],
        "resources_per_second": exported / found["export_seconds"],
        "download_seconds": found["download_seconds"],
        "polls": found["polls"],
        "memory": rss,
        "raw_read": raw,
    }


def raw_only(url: str, population: pop.Population) -> int:
    """Load, then only the raw cursor read (no server)."""
    load("postgresql", url, population)
    raw = asyncio.run(raw_read(url))
    print(
        f"raw cursor read: {raw['rows']:,} rows, {raw['bytes'] / 2**20:,.0f} MB in "
        f"{raw['seconds']:.1f}s: {raw['rows_per_second']:,.0f} rows/s"
    )
    return 0


def report(found: dict[str, Any]) -> list[str]:
    """The figures, with the targets."""
    rate, rss, raw = found["resources_per_second"], found["memory"], found["raw_read"]
    verdict = {True: "PASS", False: "FAIL"}
    return [
        f"export: {found['resources']:,} resources (manifest counts) in "
        f"{found['export_seconds']:.1f}s from kick-off to complete manifest: {rate:,.0f} "
        f"resources/s (target >= {TARGET_RATE:,.0f}: {verdict[rate >= TARGET_RATE]})",
        f"server RSS: {rss['baseline_mb']:.0f} MB before, peak {rss['peak_rss_mb']:.0f} MB "
        f"(VmHWM {rss['vm_hwm_mb']:.0f} MB): growth {rss['growth_mb']:.1f} MB (target < "
        f"{TARGET_GROWTH_MB:.0f}: {verdict[rss['growth_mb'] < TARGET_GROWTH_MB]})",
        f"download: {found['download_seconds']:.1f}s; lines per type {found['lines']}; "
        f"{'complete' if found['complete'] else 'INCOMPLETE'}, {found['errors']} error files",
        f"raw cursor read of the same rows: {raw['rows']:,} rows in {raw['seconds']:.1f}s: "
        f"{raw['rows_per_second']:,.0f} rows/s; the export at "
        f"{rate / raw['rows_per_second']:.0%} of it",
    ]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__)
    add = parser.add_argument
    add("--resources", type=int, default=1_000_000, help="about this many are loaded")
    add("--poll", type=float, default=0.25, help="seconds between status polls")
    add("--seed", type=int, default=pop.SEED)
    add("--output", type=Path, default=OUTPUT)
    add("--raw-only", action="store_true", help="load and time the raw read only")
    add("--strict", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run, print, write the JSON; 1 if the export was incomplete (or, if strict, missed)."""
    args = parse_args(argv)
    population = pop.plan(max(1, args.resources // PER_CHILD), args.seed)
    print(f"population: {population.counts()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="safeguard-export-") as tmp:
        try:
            with database("postgresql", Path(tmp)) as url:
                if args.raw_only:
                    return raw_only(url, population)
                found = bench_export(url, Path(tmp), population, args.poll)
        except UnavailableError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            return 1
    print("\n".join(report(found)))
    when = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    settings = {k: str(v) for k, v in vars(args).items()}
    write_json(args.output, {"when": when, "settings": settings, **found})
    print(f"results written to {args.output}")
    if not found["complete"] or found["errors"]:
        return 1
    missed = found["resources_per_second"] < TARGET_RATE
    missed |= found["memory"]["growth_mb"] >= TARGET_GROWTH_MB
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
