"""Memory is bounded per request whatever its shape: the server's RSS stays under its idle
size + 300 MB through big resources fanned out by batches, includes, a JSON Patch that
multiplies a string, and a page of big Patients; and none of it is a 5xx."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.conftest import backend_of, report
from tests.reliability.rss import MB, PeakRss, rss_bytes
from tests.reliability.server import Server
from tests.reliability.writers import FHIR_JSON, base, flag, written

BOUND = 300 * MB  # above the idle size
BIG_NAME = 4_000_000  # characters of a big Patient's family name (~4 MB)
BIG_EXTENSION = 1_000_000  # characters of the string a JSON Patch copies
BIG_PATIENTS = 20
Case = Callable[[httpx.AsyncClient], Awaitable[list[int]]]


def big_patient(tag: str, size: int = BIG_NAME) -> dict[str, Any]:
    """A Patient whose family name is ~`size` characters."""
    return {"resourceType": "Patient", "name": [{"family": tag + "x" * size}]}


def batch(urls: list[str]) -> dict[str, Any]:
    """A batch Bundle of GETs."""
    entries = [{"request": {"method": "GET", "url": url}} for url in urls]
    return {"resourceType": "Bundle", "type": "batch", "entry": entries}


async def _create(http: httpx.AsyncClient, resource: dict[str, Any]) -> str:
    """POST a resource (asserting 201); its `Type/id`."""
    response = await http.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text[:300]
    kind, resource_id, _ = written(response.headers["location"])
    return f"{kind}/{resource_id}"


async def _big_name_fanned_out(http: httpx.AsyncClient) -> list[int]:
    """(a) A Patient with a ~4 MB name, then a batch of 100 `GET Patient`."""
    await _create(http, big_patient("A"))
    response = await http.post(base(http), json=batch(["Patient"] * 100))
    return [response.status_code]


async def _includes_and_a_leaver(http: httpx.AsyncClient) -> list[int]:
    """(b) Flags on the big Patient; a batch of 1,000 searches including it; the same batch
    from a client that leaves after half a second."""
    found = (await http.get("/Patient", params={"_count": 1, "_elements": "id"})).json()
    subject = "Patient/" + found.get("entry", [])[0]["resource"]["id"]
    for number in range(3):
        await _create(http, flag(f"mem-{number}", subject))
    searches = batch(["Flag?_include=Flag:subject"] * 1000)
    statuses = [(await http.post(base(http), json=searches)).status_code]
    with contextlib.suppress(httpx.TimeoutException):  # then the client closes the connection
        await http.post(base(http), json=searches, timeout=0.5)
    await asyncio.sleep(1.0)
    return statuses


async def _patch_multiplying_a_string(http: httpx.AsyncClient) -> list[int]:
    """(c) A JSON Patch of 400 `copy` ops of a 1 MB extension string (refused: too big)."""
    resource = {
        "resourceType": "Patient",
        "name": [{"family": "Copied"}],
        "extension": [{"url": "https://example.org/big", "valueString": "y" * BIG_EXTENSION}],
    }
    reference = await _create(http, resource)
    copies = [{"op": "copy", "from": "/extension/0", "path": "/extension/-"}] * 400
    headers = {"content-type": "application/json-patch+json"}
    response = await http.patch(f"/{reference}", json=copies, headers=headers)
    assert 400 <= response.status_code < 500, response.text[:300]
    return [response.status_code]


async def _big_patients(http: httpx.AsyncClient) -> list[int]:
    """(d, first) 20 Patients of ~4 MB each, one by one."""
    for number in range(BIG_PATIENTS):
        await _create(http, big_patient(f"D{number}"))
    return [201]


async def _page_of_big_patients(http: httpx.AsyncClient) -> list[int]:
    """(d) `Patient?_count=500` over the big Patients."""
    response = await http.get("/Patient", params={"_count": 500})
    return [response.status_code]


CASES: dict[str, Case] = {
    "a_big_name_batch": _big_name_fanned_out,
    "b_includes_and_leaver": _includes_and_a_leaver,
    "c_patch_copies": _patch_multiplying_a_string,
    "d_big_patients_created": _big_patients,
    "d_page_of_big_patients": _page_of_big_patients,
}


async def test_memory_stays_bounded_whatever_the_request(database_url: str, tmp_path: Path) -> None:
    server = Server(database_url, tmp_path / "server.log")
    await server.start()
    headers = {**server.bearer(), "content-type": FHIR_JSON}
    peaks: dict[str, int] = {}
    statuses: dict[str, list[int]] = {}
    try:
        async with httpx.AsyncClient(
            base_url=server.base_url, headers=headers, timeout=120
        ) as http:
            assert (await http.get("/metadata")).status_code == 200  # warmed up
            idle = rss_bytes(server.pid)
            sampler = PeakRss(server.pid)
            sampler.start()
            try:
                for name, case in CASES.items():
                    sampler.reset()
                    statuses[name] = await case(http)
                    peaks[name] = sampler.peak
            finally:
                sampler.stop()
    finally:
        server.stop()
    report(
        f"memory ({backend_of(database_url)})",
        idle_rss_mb=round(idle / MB),
        peak_rss_mb={name: round(peak / MB) for name, peak in peaks.items()},
        statuses=statuses,
    )
    over = {name: round((peak - idle) / MB) for name, peak in peaks.items() if peak - idle > BOUND}
    assert over == {}, f"RSS above idle + {BOUND // MB} MB: {over}"
    assert all(status < 500 for codes in statuses.values() for status in codes), statuses
