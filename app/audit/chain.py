"""The audit trail as a hash chain: records are sealed after they commit, in the order they
were stored, each given the next sequence number and a SHA-256 over the previous record's hash
and its own canonical form, so altering, inserting or removing a sealed record breaks the chain
(`app.audit.verify` walks it).

    hash(n) = sha256(hash(n-1) as 64 hex digits + "\\n" + n in decimal + "\\n" + body)

with hash(0) = 64 zeros and body the stored canonical JSON (`app.audit.events.row_of`), which
every search column and link is derived from. An auditor can check one record with standard
tools: `(printf '%s\\n%d\\n' "$PREVIOUS" "$SEQ"; cat body.json) | sha256sum`.

Sealing runs off the request path: requests store records unsealed and never wait on the head
of the chain. One `Sealer` task per server process wakes every few hundred milliseconds; on
PostgreSQL an advisory lock lets one process seal at a time, on SQLite the one writer does.
"""

import asyncio
import hashlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import suppress

import orjson

from app.audit.events import links_of
from app.storage import audit as audit_storage
from app.storage import audit_chain
from app.storage.db import Database

log = logging.getLogger("safeguard.audit")

GENESIS = "0" * 64  # the hash before the first record
# Records sealed in one transaction at most. SQLite's statements run on the event loop, so
# there a pass is kept to a few milliseconds; PostgreSQL's run on the server.
SEAL_BATCH = {"sqlite": 250, "postgresql": 1000}
FINAL_PASS_SECONDS = 10.0  # how long shutting down may spend sealing what is left


def seal_hash(previous: str, seq: int, body: bytes) -> str:
    """The hash of the record at `seq` with `body`, chained to the `previous` record's hash."""
    digest = hashlib.sha256(f"{previous}\n{seq}\n".encode())
    digest.update(body)
    return digest.hexdigest()


async def seal_pending(db: Database, *, wait: bool = True, batch: int | None = None) -> int:
    """Seal every committed record not yet sealed, `batch` per transaction; how many were.

    With `wait` false, a pass that finds another process sealing leaves the work to it.
    """
    async with db.reader() as conn:  # committed records only; the writer is not taken idly
        if not await audit_chain.any_unsealed(conn):
            return 0
    batch = batch or SEAL_BATCH[db.dialect]
    sealed = 0
    while True:
        count = await _seal_pass(db, wait, batch)
        sealed += count
        if count < batch:
            return sealed


async def _seal_pass(db: Database, wait: bool, batch: int) -> int:
    """Seal the next `batch` records at most, in one transaction; how many were."""
    async with db.transaction() as conn:
        if not await audit_chain.become_sealer(conn, wait=wait):
            return 0
        pending = await audit_chain.unsealed(conn, batch)
        if not pending:
            return 0
        seq, previous = await audit_chain.head(conn) or (0, GENESIS)
        seals = []
        for pk, body, _ in pending:
            seq += 1
            previous = seal_hash(previous, seq, body)
            seals.append((pk, seq, previous))
        await audit_chain.link_named(conn, [pk for pk, _, named in pending if named])
        unnamed = [body for _, body, named in pending if not named]  # stored before 0011
        await audit_storage.insert_links(conn, _links(unnamed))
        await audit_chain.seal(conn, seals)
    return len(pending)


def _links(bodies: Iterable[bytes]) -> Iterator[tuple[str, str, str]]:
    """(audit id, kind, value) of what each record's body names (`links_of`)."""
    for body in bodies:
        event = orjson.loads(body)
        for kind, value in links_of(event):
            yield event["id"], kind, value


class Sealer:
    """Seals committed records in the background, a pass every `interval` seconds, and what
    is left when it stops."""

    def __init__(self, db: Database, interval: float) -> None:
        self._db = db
        self._interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        """Start sealing in the background (unless the interval is 0: another process seals)."""
        if self._interval > 0:
            self._task = asyncio.create_task(self._run(), name="audit-sealer")

    async def close(self) -> None:
        """Let the running pass finish, then seal what is left (if the database answers)."""
        if self._task is None:
            return
        self._stop.set()
        await self._task
        self._task = None
        with suppress(TimeoutError):
            await asyncio.wait_for(self._pass(wait=True), FINAL_PASS_SECONDS)

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self._pass(wait=False)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)

    async def _pass(self, *, wait: bool) -> None:
        """One pass; a failure is logged once until a pass succeeds again."""
        try:
            await seal_pending(self._db, wait=wait)
        except Exception as exc:  # the database is unreachable or refused: the next pass retries
            if not self._failing:
                log.warning("audit records not sealed: %s", type(exc).__name__)
            self._failing = True
            return
        if self._failing:
            log.info("audit records sealed again")
        self._failing = False
