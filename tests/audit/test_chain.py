"""Sealing: committed AuditEvents are chained after the fact, in the order they committed, one
sealer at a time, each record given the next seq and a hash over its predecessor's and its own
body; on both databases, with the app's own background sealer running alongside."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from app.audit.chain import seal_pending
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
