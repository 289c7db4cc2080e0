"""Sealing: committed AuditEvents are chained after the fact, in the order they committed, one
sealer at a time, each record given the next seq and a hash over its predecessor's and its own
body; on both databases, with the app's own background sealer running alongside."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import orjson
from fastapi import FastAPI

from app.access.trail import Trail
from app.audit.chain import seal_pending
from app.audit.events import AuditRow, Server, audit_row, links_of
from app.audit.verify import verify
from app.clock import now_micros
from app.main import create_app
from app.settings import Settings
from app.storage import audit as audit_storage
from app.storage.db import Database, make_database
from tests import factories as f
from tests.audit.chains import (
    assert_chain_intact,
    chain,
    execute,
    store,
    synthetic,
    unsealed,
)
from tests.conftest import BASE, database, empty_database
from tests.http import create
from tests.tokens import bearer


async def _requests(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient(family="Chained"))
    await client.get(f"/Patient/{child['id']}")
    await client.get("/Patient?family=Chained")
    await client.get("/Flag?subject=Patient/none")


async def test_requests_leave_records_that_seal_into_a_contiguous_chain(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await _requests(client)
    await seal_pending(database(app))
    records = await chain(app)
    assert len(records) >= 4 and await unsealed(app) == 0
    assert_chain_intact(records)


@asynccontextmanager
async def sealing_app(settings: Settings, interval: float) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app of its own sealing every `interval` seconds (on SQLite, the only app
    that writes while it runs)."""
    app = create_app(settings.model_copy(update={"audit_seal_interval_seconds": interval}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = await bearer(app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
            yield http


async def test_the_background_sealer_seals_on_its_own(app: FastAPI, settings: Settings) -> None:
    await empty_database(app)
    async with sealing_app(settings, 0.1) as client:
        await _requests(client)
        for _ in range(200):  # 10 s at most
            if not await unsealed(app):
                break
            await asyncio.sleep(0.05)
        assert await unsealed(app) == 0
    assert_chain_intact(await chain(app))


async def test_an_app_seals_what_is_left_when_it_stops(app: FastAPI, settings: Settings) -> None:
    await empty_database(app)
    async with sealing_app(settings, 60) as client:  # no pass after the first, at start
        await _requests(client)
    assert await unsealed(app) == 0
    assert len(await chain(app)) >= 4


async def test_sealing_continues_the_chain_from_its_head(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await _requests(client)
    await seal_pending(database(app))
    head = (await chain(app))[-1]
    await store(app, synthetic(3))
    await seal_pending(database(app))
    records = await chain(app)
    assert records[head.seq - 1] == head and len(records) == head.seq + 3
    assert_chain_intact(records)


async def test_batches_and_concurrent_sealers_neither_repeat_nor_skip_a_seq(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    """Writers commit while three sealers (two sharing the app's pool, one with connections of
    its own, as another server process would) and the app's own race to seal."""
    other = make_database(settings.database_url, 1, 2)
    await other.open()
    try:
        writers = [_write_batches(app, 8, 150) for _ in range(4)]
        sealers = [_keep_sealing(database(app)), _keep_sealing(database(app))]
        if other.dialect == "postgresql":  # SQLite's one writer belongs to the app's process
            sealers.append(_keep_sealing(other))
        await asyncio.gather(*writers, *sealers)
        await seal_pending(database(app), batch=100)
    finally:
        await other.close()
    records = await chain(app)
    assert len(records) >= 4 * 8 * 150 and await unsealed(app) == 0
    assert_chain_intact(records)
    assert (await verify(database(app), now=now_micros())).intact


async def _write_batches(app: FastAPI, batches: int, size: int) -> None:
    for _ in range(batches):
        await store(app, synthetic(size))
        await asyncio.sleep(0.005)


async def _keep_sealing(db: Database) -> None:
    for _ in range(25):
        await seal_pending(db, batch=200)
        await asyncio.sleep(0.004)


async def test_a_record_committed_after_a_later_one_was_sealed_is_sealed_after_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """On PostgreSQL a record's pk is taken when it is stored, so one stored first can commit
    after one stored later has been sealed: it is sealed next, the chain in commit order.
    SQLite commits on one writer in the order records are stored, so there they simply come
    one after the other."""
    db = database(app)
    early, late = synthetic(1), synthetic(1)
    async with db.transaction() as conn:
        await audit_storage.insert(conn, early)
        stored_late = asyncio.create_task(store(app, late))
        if db.dialect == "postgresql":
            await stored_late
            await seal_pending(db)
    await stored_late
    await seal_pending(db)
    seqs = {record.id: record.seq for record in await chain(app)}
    if db.dialect == "postgresql":
        assert seqs[late[0].id] < seqs[early[0].id]
    else:
        assert seqs[early[0].id] < seqs[late[0].id]
    assert_chain_intact(await chain(app))


def _naming(count: int) -> list[AuditRow]:
    """Records of reads, each naming a Patient of its own and a Flag."""
    server = Server(BASE, "https://example.org/clients")
    rows = []
    for n in range(count):
        trail = Trail(f"request-{n}", "read", "R", "127.0.0.1")
        trail.named(f"child-{n}")
        trail.saw("Flag", f"flag-{n}", None)
        rows.append(audit_row(trail, None, server, status=200, description=None, recorded=n))
    return rows


async def _links_and_names(app: FastAPI) -> tuple[set[tuple[str, str, str]], int]:
    async with database(app).reader() as conn:
        links = await conn.fetch("SELECT audit_id, kind, value FROM audit_link")
        named = await conn.fetchrow("SELECT count(*) FROM audit_event WHERE names IS NOT NULL")
    assert named is not None
    return {(str(r[0]), str(r[1]), str(r[2])) for r in links}, int(named[0])


def _said(rows: list[AuditRow]) -> set[tuple[str, str, str]]:
    """What each record's body names, as audit_link rows."""
    return {(row.id, *link) for row in rows for link in links_of(orjson.loads(row.body))}


async def test_sealing_links_what_each_record_names_and_then_forgets_it(app: FastAPI) -> None:
    await empty_database(app)
    rows = _naming(5)
    await store(app, rows)
    assert await _links_and_names(app) == (set(), 5)  # nothing searchable before its seal
    await seal_pending(database(app))
    assert await _links_and_names(app) == (_said(rows), 0)


async def test_records_stored_without_names_are_linked_from_their_bodies(app: FastAPI) -> None:
    await empty_database(app)
    old, new = _naming(3), _naming(2)
    await store(app, old)
    await execute(app, "UPDATE audit_event SET names = NULL")  # as stored before 0011
    await store(app, new)
    await seal_pending(database(app))
    assert await _links_and_names(app) == (_said(old + new), 0)
    assert_chain_intact(await chain(app))
