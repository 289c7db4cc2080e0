"""An answer holds at most `max_response_bytes` of resources: a batch of reads refuses the
entries past it without running them, a transaction fails as a whole, each naming the entry;
a search page's includes stop there with a warning; on both databases."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.errors import Invalid
from app.fhir.bundles.budget import Budget
from app.settings import Settings
from tests import factories as f
from tests.http import (
    answered_entries,
    client_with,
    create,
    outcome_expressions,
    post_bundle,
    reference,
)

LIMIT = 20_000  # bytes: three reads of the large Patient below, not four


def test_an_entry_that_does_not_fit_fills_the_budget_and_is_named() -> None:
    budget = Budget(100)
    budget.spend(b"x" * 60, 0)
    with pytest.raises(Invalid) as raised:
        budget.spend(b"x" * 41, 1)
    assert raised.value.issues[0].expression == ("Bundle.entry[1]",)
    assert raised.value.issues[0].code == "too-costly" and budget.full


@pytest.fixture
async def small(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose answers hold LIMIT bytes of entries."""
    async with client_with(settings, max_response_bytes=LIMIT) as http:
        yield http


async def _large_patient(client: httpx.AsyncClient) -> str:
    return reference(await create(client, f.patient(family="Budget" + "x" * 6000)))


def _reads(target: str, count: int) -> list[dict[str, Any]]:
    return [f.entry(method="GET", url=target) for _ in range(count)]


async def test_a_batch_refuses_the_reads_past_its_budget(small: httpx.AsyncClient) -> None:
    target = await _large_patient(small)
    response = await post_bundle(small, f.bundle(kind="batch", entries=_reads(target, 10)))
    entries = answered_entries(response, "batch-response")
    statuses = [entry["response"]["status"][:3] for entry in entries]
    assert statuses == ["200"] * 3 + ["400"] * 7
    refused = entries[5]["response"]["outcome"]["issue"][0]
    assert refused["code"] == "too-costly" and refused["expression"] == ["Bundle.entry[5]"]
    assert len(response.content) < LIMIT + 10_000  # the refused reads' bodies were never built


async def test_a_transaction_over_its_budget_fails_whole(small: httpx.AsyncClient) -> None:
    target = await _large_patient(small)
    written = f.entry(method="POST", url="Patient", resource=f.patient(family="Unwritten"))
    entries = [written, *_reads(target, 10)]
    response = await post_bundle(small, f.bundle(kind="transaction", entries=entries))
    assert response.status_code == 400
    assert outcome_expressions(response) == ["Bundle.entry[4]"]  # the fourth read, entry 4
    found = (await small.get("/Patient?family=Unwritten")).json()
    assert found["total"] == 0 if "total" in found else not found.get("entry")


async def test_within_the_budget_nothing_is_refused(small: httpx.AsyncClient) -> None:
    target = await _large_patient(small)
    response = await post_bundle(small, f.bundle(kind="batch", entries=_reads(target, 3)))
    assert [e["response"]["status"][:3] for e in answered_entries(response, "batch-response")] == [
        "200"
    ] * 3


async def test_a_search_page_includes_no_more_than_the_budget(small: httpx.AsyncClient) -> None:
    flags = []
    for n in range(5):
        child = await _large_patient(small)
        flags.append(await create(small, f.flag(subject=child, identifier=f"big-{n}")))
    found = (await small.get("/Flag?identifier:missing=false&_include=Flag:subject")).json()
    modes = [entry["search"]["mode"] for entry in found.get("entry", [])]
    # five Flags (about 4 KB) and two of the 6 KB Patients fit in 20,000 bytes; a third not
    assert modes.count("match") == 5 and modes.count("include") == 2
    warning = next(
        e["resource"] for e in found.get("entry", []) if e["search"]["mode"] == "outcome"
    )
    assert f"cut off at {LIMIT} bytes" in warning["issue"][0]["diagnostics"]
