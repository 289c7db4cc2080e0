"""The audit trail's hash chain read, forged and tampered with straight in the database, for
tests; and `safeguard audit` run as the CLI runs it."""

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from typer.testing import CliRunner, Result

from app import cli
from app.access.trail import Trail
from app.audit.events import AuditRow, Server, audit_row
from app.clock import now_micros
from app.storage import audit as audit_storage
from app.storage.audit_chain import become_sealer
from tests.conftest import BASE, database

GENESIS = "0" * 64


@dataclass(frozen=True)
class Sealed:
    """A sealed record as stored."""

    seq: int
    seal_hash: str
    id: str
    body: bytes


def chained(previous: str, seq: int, body: bytes) -> str:
    """The hash the chain's definition gives a record (written out here, not imported)."""
    return hashlib.sha256(previous.encode() + b"\n" + str(seq).encode() + b"\n" + body).hexdigest()


async def chain(app: FastAPI) -> list[Sealed]:
    """Every sealed record, in chain order."""
    async with database(app).reader() as conn:
        rows = await conn.fetch(
            "SELECT seal_seq, seal_hash, id, body FROM audit_event "
            "WHERE seal_seq IS NOT NULL ORDER BY seal_seq"
        )
    return [Sealed(int(r[0]), str(r[1]), str(r[2]), bytes(r[3])) for r in rows]


async def unsealed(app: FastAPI) -> int:
    """How many records are not sealed."""
    async with database(app).reader() as conn:
        row = await conn.fetchrow("SELECT count(*) FROM audit_event WHERE seal_seq IS NULL")
    assert row is not None
    return int(row[0])


def assert_chain_intact(records: list[Sealed]) -> None:
    """Seqs 1..n with no gap, each hash over the previous one and the record's body."""
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    previous = GENESIS
    for record in records:
        assert record.seal_hash == chained(previous, record.seq, record.body), record.seq
        previous = record.seal_hash


async def execute(app: FastAPI, sql: str, *args: Any) -> None:
    """Run one statement in its own transaction, as someone with the database's password."""
    async with database(app).transaction() as conn:
        await become_sealer(conn, wait=True)  # no sealing pass in between (see empty_database)
        await conn.execute(sql, *args)


def synthetic(count: int, recorded: int | None = None) -> list[AuditRow]:
    """AuditEvents of `count` searches by nobody, as the middleware would build them."""
    server = Server(BASE, "https://example.org/clients")
    return [
        audit_row(
            Trail(str(uuid.uuid4()), "search-type", "R", "127.0.0.1"),
            None,
            server,
            status=401,
            description="no token",
            recorded=recorded or now_micros(),
        )
        for _ in range(count)
    ]


async def store(app: FastAPI, rows: list[AuditRow]) -> None:
    """Store AuditEvents, unsealed, as a request's commit does."""
    async with database(app).transaction() as conn:
        await audit_storage.insert(conn, rows)


async def run(*args: str) -> Result:
    """`safeguard ARGS` run in a thread (the CLI starts an event loop of its own)."""
    return await asyncio.to_thread(CliRunner().invoke, cli.cli, list(args))
