"""Helpers for the bulk export tests: kick off, poll to the end, read NDJSON files."""

import asyncio
from typing import Any

import httpx
import orjson

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
POLL_SECONDS = 20.0


async def kick_off(
    client: httpx.AsyncClient, path: str = "/$export", **params: str
) -> httpx.Response:
    """A kick-off request with Prefer: respond-async."""
    return await client.get(path, params=params, headers=ASYNC)


async def status_url(client: httpx.AsyncClient, path: str = "/$export", **params: str) -> str:
    """Kick off an export; its status URL."""
    response = await kick_off(client, path, **params)
    assert response.status_code == 202, response.text
    return response.headers["Content-Location"]


async def finished(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """Poll a status URL until the job has ended; its manifest."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POLL_SECONDS
    while loop.time() < deadline:
        response = await client.get(url)
        if response.status_code == 200:
            assert response.headers["content-type"].startswith("application/json")
            manifest: dict[str, Any] = response.json()
            return manifest
        assert response.status_code == 202, response.text
        assert response.headers["Retry-After"] and response.headers["X-Progress"]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{url} did not finish in {POLL_SECONDS} s")


async def failure(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """Poll a status URL until the job has ended, which must be in failure: the
    OperationOutcome of its 500 (https://hl7.org/fhir/uv/bulkdata/STU2/export.html#response---error-status-1)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + POLL_SECONDS
    while loop.time() < deadline:
        response = await client.get(url)
        if response.status_code != 202:
            assert response.status_code == 500, response.text
            assert response.headers["content-type"].startswith("application/fhir+json")
            outcome: dict[str, Any] = response.json()
            assert outcome["resourceType"] == "OperationOutcome"
            return outcome
        await asyncio.sleep(0.02)
    raise AssertionError(f"{url} did not end in {POLL_SECONDS} s")


async def export(
    client: httpx.AsyncClient, path: str = "/$export", **params: str
) -> dict[str, Any]:
    """Kick off an export and wait for its manifest."""
    return await finished(client, await status_url(client, path, **params))


async def lines(client: httpx.AsyncClient, url: str) -> list[dict[str, Any]]:
    """The resources of one NDJSON file."""
    response = await client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    assert response.content.endswith(b"\n")
    return [orjson.loads(line) for line in response.content.splitlines()]


async def by_type(client: httpx.AsyncClient, manifest: dict[str, Any]) -> dict[str, list[Any]]:
    """Every exported resource of a manifest's output, by type."""
    found: dict[str, list[Any]] = {}
    for item in manifest["output"]:
        got = await lines(client, item["url"])
        assert len(got) == item["count"]
        assert all(resource["resourceType"] == item["type"] for resource in got)
        found.setdefault(item["type"], []).extend(got)
    return found


def ids(resources: list[dict[str, Any]]) -> set[str]:
    """The ids of resources."""
    return {resource["id"] for resource in resources}
