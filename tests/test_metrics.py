"""/metrics: Prometheus's text format, without a token, outside the OpenAPI document; requests
counted and timed by route template (never by path), idempotent replays and write retries
counted, the pools and the database's counts read when scraped."""

import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from app.access import SYSTEM
from app.clock import now_micros
from app.errors import Conflict, WriteConflict
from app.records.store import Store
from app.storage import export_jobs
from app.storage.export_jobs import COMPLETED, FAILED
from tests import factories as f
from tests.conftest import app_context, database
from tests.http import create
from tests.records.stored_jobs import job_row

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
READ = "/fhir/{resource_type}/{logical_id}"


async def scrape(client: httpx.AsyncClient) -> Samples:
    """Every sample /metrics shows, by name and labels (asked for without a token)."""
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test") as root:
        answer = await root.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 if it is not shown (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_and_timed_by_route_template_never_by_path(
    client: httpx.AsyncClient,
) -> None:
    nhs = f.nhs_number(7301)
    child = await create(client, f.patient(nhs=nhs, family="Pennyfeather"))
    before = await scrape(client)
    for path in (f"/Patient/{child['id']}", f"/Patient/{child['id']}", "/Patient/nobody"):
        await client.get(path)
    await client.get("/Patient", params={"identifier": f"{f.NHS}|{nhs}"})
    after = await scrape(client)

    def more(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    total = "safeguard_http_requests_total"
    assert more(total, route=READ, method="GET", status="200") == 2
    assert more(total, route=READ, method="GET", status="404") == 1
    assert more(total, route="/fhir/{resource_type}", method="GET", status="200") == 1
    latency = "safeguard_http_request_duration_seconds_count"
    assert more(latency, route=READ, method="GET") == 3
    assert more("safeguard_http_request_duration_seconds_sum", route=READ, method="GET") > 0
    shown = " ".join(f"{name} {sorted(labels)}" for name, labels in after)
    assert child["id"] not in shown and nhs not in shown and "Pennyfeather" not in shown


async def test_metrics_need_no_token_and_are_not_in_the_openapi_document(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    samples = await scrape(client)  # without a token
    assert value(samples, "safeguard_database_up") == 1
    assert "/metrics" not in app.openapi()["paths"]


async def test_a_replayed_write_is_counted(client: httpx.AsyncClient) -> None:
    headers = {"X-Request-ID": str(uuid.uuid4())}
    before = value(await scrape(client), "safeguard_idempotent_replays_total")
    first = await client.post("/Patient", json=f.patient(), headers=headers)
    again = await client.post("/Patient", json=f.patient(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert value(await scrape(client), "safeguard_idempotent_replays_total") == before + 1


def conflicting(times: int) -> Callable[[object], Awaitable[str]]:
    """A unit of work that loses its race `times` times, then succeeds."""
    lost = 0

    async def work(_: object) -> str:
        nonlocal lost
        if lost < times:
            lost += 1
            raise WriteConflict("a concurrent writer won")
        return "written"

    return work


async def test_write_retries_and_writes_given_up_are_counted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    store: Store = app_context(app).store
    before = await scrape(client)
    assert await store.write(SYSTEM, conflicting(2)) == "written"
    with pytest.raises(Conflict):
        await store.write(SYSTEM, conflicting(store.write_retries))
    after = await scrape(client)
    retries = store.write_retries - 1 + 2  # every attempt but the last of the second write
    assert value(after, "safeguard_write_retries_total") == (
        value(before, "safeguard_write_retries_total") + retries
    )
    assert value(after, "safeguard_write_conflicts_total") == (
        value(before, "safeguard_write_conflicts_total") + 1
    )


async def _store_counted_rows(app: FastAPI) -> None:
    """Two finished export jobs, three notifications waiting, and a Subscription with five
    events of which two were delivered (and one held for $events, not counted)."""
    now = now_micros()
    async with database(app).transaction() as conn:
        for status in (COMPLETED, FAILED):
            row = job_row("gone")._replace(status=status, runner=None, finished_at=now)
            assert await export_jobs.insert_within_limit(conn, row, 10)
        for _ in range(3):
            await conn.execute(
                "INSERT INTO notification (topic, recipient_org, occurred_at, detail) "
                "VALUES ('flag-recorded-elsewhere', 'org', $1, '{}')",
                now,
            )
        for pk, endpoint in ((1, "https://hooks.example.gov.uk/fhir"), (2, None)):
            await conn.execute(
                "INSERT INTO subscription_state (resource_pk, logical_id, owner_org, topic, "
                "endpoint, channel, status, events_total, delivered_through, started_at) "
                "VALUES ($1, $2, 'org', 'flag-recorded-elsewhere', $3, '{}', 'active', 5, 2, $4)",
                pk,
                f"s{pk}",
                endpoint,
                now,
            )


async def test_export_jobs_and_the_notification_backlog_are_counted_from_the_database(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await _store_counted_rows(app)
    samples = await scrape(client)
    jobs = {
        state: value(samples, "safeguard_export_jobs", state=state)
        for state in ("in-progress", "completed", "failed")
    }
    assert jobs == {"in-progress": 0, "completed": 1, "failed": 1}
    assert value(samples, "safeguard_notification_outbox") == 3
    assert value(samples, "safeguard_notification_events_undelivered") == 3


async def test_the_pools_of_this_process_are_shown(app: FastAPI, client: httpx.AsyncClient) -> None:
    samples = await scrape(client)
    pools = {dict(labels)["pool"] for name, labels in samples if name.startswith("safeguard_db_")}
    # (the suite's apps of both backends share this process, so both backends' pools show)
    if app_context(app).store.dialect == "sqlite":
        assert "writer" in pools
        assert value(samples, "safeguard_db_pool_connections_open", pool="writer") == 1
    else:
        assert {"main", "search"} <= pools
        assert value(samples, "safeguard_db_pool_connections_open", pool="main") >= 1
    assert all(value(samples, "safeguard_db_pool_waiting", pool=pool) == 0 for pool in pools)
