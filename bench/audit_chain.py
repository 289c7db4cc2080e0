"""`make bench-audit`: how fast the audit trail's hash chain is sealed and verified.

On a fresh database of each backend: `--records` AuditEvents of reads (a client, its
Organization, a Patient, a resource, each a link) are stored unsealed, then sealed by
`seal_pending` (records a second); `verify` then walks the whole chain (records a second).
Last, with that chain sealed, one more pass (a batch: 249 records on SQLite, 999 on PostgreSQL):
the sealer finds the few unsealed among the many sealed through its index, so a pass stays as
short however long the chain. On SQLite a pass holds the writer and the event loop.
The peak memory printed stays flat as --records grows: records are stored, sealed and verified
in bounded batches.
"""

import argparse
import asyncio
import resource
import tempfile
import time
import uuid
from pathlib import Path

from app.access import Caller
from app.access.trail import Trail
from app.audit.chain import SEAL_BATCH, seal_pending
from app.audit.events import AuditRow, Server, audit_row
from app.audit.verify import verify
from app.clock import now_micros
from app.storage import audit as audit_storage
from app.storage.db import Database, make_database
from bench.backends import BACKENDS, UnavailableError, database

SERVER = Server("http://127.0.0.1:8000/fhir", "http://127.0.0.1:8000/fhir/clients")
CALLER = Caller("bench-client", "bench-org")
STORE_BATCH = 500


def _reads(count: int) -> list[AuditRow]:
    """AuditEvents of `count` reads, each of its own Patient."""
    rows = []
    for _ in range(count):
        trail = Trail(str(uuid.uuid4()), "read", "R", "127.0.0.1")
        trail.saw("Patient", str(uuid.uuid4()), None)
        rows.append(
            audit_row(trail, CALLER, SERVER, status=200, description=None, recorded=now_micros())
        )
    return rows


async def _store(db: Database, count: int) -> None:
    """Store `count` records, unsealed, STORE_BATCH a transaction."""
    for start in range(0, count, STORE_BATCH):
        async with db.transaction() as conn:
            await audit_storage.insert(conn, _reads(min(STORE_BATCH, count - start)))


async def _measure(url: str, records: int) -> dict[str, float]:
    """Seal and verify `records` records on the database at `url`."""
    db = make_database(url, 1, 4)
    await db.open()
    try:
        await _store(db, records)
        started = time.perf_counter()
        sealed = await seal_pending(db)
        seal_seconds = time.perf_counter() - started
        started = time.perf_counter()
        verdict = await verify(db, now=now_micros())
        verify_seconds = time.perf_counter() - started
        assert sealed == records and verdict.intact and verdict.verified == records
        one_pass = SEAL_BATCH[db.dialect] - 1
        await _store(db, one_pass)
        await asyncio.sleep(0.5)  # a WAL checkpoint falling due after the last store is done
        started = time.perf_counter()
        assert await seal_pending(db) == one_pass
        last_pass = time.perf_counter() - started
    finally:
        await db.close()
    return {
        "seal_per_second": records / seal_seconds,
        "verify_seconds": verify_seconds,
        "verify_per_second": records / verify_seconds,
        "one_pass": one_pass,
        "one_pass_ms": last_pass * 1000,
    }


def main() -> None:
    """Measure each backend and print one line per backend."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--backend", choices=BACKENDS, action="append")
    args = parser.parse_args()
    for backend in args.backend or BACKENDS:
        with tempfile.TemporaryDirectory() as workdir:
            try:
                with database(backend, Path(workdir)) as url:
                    figures = asyncio.run(_measure(url, args.records))
            except UnavailableError as exc:
                print(f"{backend}: skipped ({exc})")
                continue
        print(
            f"{backend}: {args.records} records sealed at {figures['seal_per_second']:,.0f}/s; "
            f"verified in {figures['verify_seconds']:.1f} s "
            f"({figures['verify_per_second']:,.0f}/s); "
            f"then one pass of {figures['one_pass']:.0f} on that chain in "
            f"{figures['one_pass_ms']:.0f} ms; "
            f"peak memory of this process {_peak_mb():.0f} MB"
        )


def _peak_mb() -> float:
    """This process's peak resident memory so far, in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
