"""What an export reads as of its watermark (`storage.export_rows`): a resource changed since is
read at its version before the watermark, and only if the caller may see that version itself."""

from typing import Any

import httpx
from fastapi import FastAPI

from app.access import Caller
from app.storage import export_rows, feed
from app.storage.export_rows import Snapshot
from app.storage.repository import Repository
from tests import factories as f
from tests.conftest import BASE, database
from tests.http import FHIR_JSON, create, reference
from tests.tokens import bearer

RESTRICTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}


async def _as_of(app: FastAPI, caller: Caller, watermark: int) -> list[bytes]:
    async with database(app).reader() as conn:
        rows = await export_rows.snapshot_chunk(
            Repository(conn, caller), Snapshot("Condition", watermark), 0, 100
        )
    return [row.body for row in rows if row.body is not None]


async def _health_client(app: FastAPI, client: httpx.AsyncClient, org: str) -> httpx.AsyncClient:
    organization = f.organization(name=org) | {"id": org}
    response = await client.put(f"/Organization/{org}", json=organization)
    assert response.status_code in (200, 201), response.text
    headers = await bearer(app, f"rows-{org}", role="health", organisation=f"Organization/{org}")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, headers=headers)


async def _restricted_then_lifted(
    app: FastAPI, client: httpx.AsyncClient, author: httpx.AsyncClient
) -> tuple[dict[str, Any], int]:
    """A Condition written restricted with a secret, then lifted; the watermark between."""
    child = await create(client, f.patient())
    secret = f.condition(subject=reference(child)) | {
        "meta": {"security": [RESTRICTED]},
        "note": [{"text": "secret"}],
    }
    made = await create(author, secret)
    async with database(app).reader() as conn:
        watermark = await feed.watermark(conn)
    lifted = {k: v for k, v in made.items() if k not in ("meta", "note")}
    response = await author.put(
        f"/Condition/{made['id']}", json=lifted, headers={"content-type": FHIR_JSON}
    )
    assert response.status_code == 200, response.text
    return made, watermark


async def test_a_version_before_the_watermark_the_caller_may_not_see_is_left_out(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async with (
        await _health_client(app, client, "rows-a") as author,
        await _health_client(app, client, "rows-b") as _,
    ):
        made, watermark = await _restricted_then_lifted(app, client, author)
    other = Caller("rows-b", "rows-b", "health")
    assert await _as_of(app, other, watermark) == []
    mine = await _as_of(app, Caller("rows-a", "rows-a", "health"), watermark)
    assert len(mine) == 1 and b"secret" in mine[0] and made["id"].encode() in mine[0]
