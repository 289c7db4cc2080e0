"""The request log: one claim per (client, request id), answers kept, old ones purged."""

import httpx
import pytest
from fastapi import FastAPI

from app.access import ANONYMOUS, SYSTEM
from app.clock import now_micros
from app.errors import WriteConflict
from app.storage import request_log
from app.storage.repository import Repository
from tests.conftest import database

ANSWER = request_log.Record("f" * 64, 201, '[["etag", "W/\\"1\\""]]', b"{}")


async def test_a_second_claim_conflicts_and_undoes_only_its_own_unit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    db = database(app)
    async with db.transaction() as conn:
        await request_log.claim(Repository(conn, ANONYMOUS), "r1", ANSWER.fingerprint)
        await request_log.complete(Repository(conn, ANONYMOUS), "r1", ANSWER)
    with pytest.raises(WriteConflict):
        async with db.transaction() as conn:
            await request_log.claim(Repository(conn, ANONYMOUS), "r2", "other")
            await request_log.claim(Repository(conn, ANONYMOUS), "r1", "other")
    async with db.transaction() as conn:
        await request_log.claim(Repository(conn, SYSTEM), "r1", "other")  # ids are per client
        assert await request_log.find(Repository(conn, ANONYMOUS), "r2") is None
        found = await request_log.find(Repository(conn, ANONYMOUS), "r1")
    assert found is not None
    assert (found.fingerprint, found.status, found.headers, found.body) == (
        ANSWER.fingerprint,
        ANSWER.status,
        ANSWER.headers,
        ANSWER.body,
    )


async def test_purge_removes_at_most_its_limit_of_records_older_than_the_cutoff(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    db = database(app)
    async with db.transaction() as conn:
        for n in range(5):
            await request_log.claim(Repository(conn, ANONYMOUS), f"r{n}", ANSWER.fingerprint)
    cutoff = now_micros() + 1
    async with db.transaction() as conn:
        repository = Repository(conn, ANONYMOUS)
        assert await request_log.purge(repository, cutoff - 60_000_000, 10) == 0  # none is old
        assert await request_log.purge(repository, cutoff, 3) == 3
    async with db.reader() as conn:
        left = await conn.fetch("SELECT request_id FROM request_log")
    assert len(left) == 2
