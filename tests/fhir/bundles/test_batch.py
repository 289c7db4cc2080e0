"""Batch Bundles: independent entries, each failure reported in its own entry.

Spec: http://hl7.org/fhir/R4/http.html#transaction
"""

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.http import answered_entries, create, post_bundle, reference, stale_if_match

RESPONSE = "batch-response"

# The middle entry of a batch, built once the first entry's fullUrl is known.
MiddleEntry = Callable[[httpx.AsyncClient, str], Awaitable[dict[str, Any]]]


def urn_uuid() -> str:
    """A fresh urn:uuid for an entry's fullUrl."""
    return f"urn:uuid:{uuid.uuid4()}"


async def batch(client: httpx.AsyncClient, *entries: dict[str, Any]) -> list[dict[str, Any]]:
    """POST a batch Bundle of these entries; the answered entries."""
    response = await post_bundle(client, f.bundle(kind="batch", entries=list(entries)))
    return answered_entries(response, RESPONSE)


async def _flag_on_a_missing_patient(client: httpx.AsyncClient, first: str) -> dict[str, Any]:
    return f.entry(method="POST", url="Flag", resource=f.flag(subject="Patient/absent"))


async def _flag_breaking_its_status_binding(
    client: httpx.AsyncClient, first: str
) -> dict[str, Any]:
    child = await create(client, f.patient())
    return f.entry(
        method="POST", url="Flag", resource=f.flag(subject=reference(child), status="bogus")
    )


async def _structurally_invalid_flag(client: httpx.AsyncClient, first: str) -> dict[str, Any]:
    child = await create(client, f.patient())
    resource = f.flag(subject=reference(child)) | {"colour": "red"}
    return f.entry(method="POST", url="Flag", resource=resource)


async def _read_of_an_unknown_id(client: httpx.AsyncClient, first: str) -> dict[str, Any]:
    return f.entry(method="GET", url="Patient/no-such-patient")


async def _reference_to_another_entry(client: httpx.AsyncClient, first: str) -> dict[str, Any]:
    return f.entry(method="POST", url="Flag", resource=f.flag(subject=first))


@pytest.mark.parametrize(
    ("middle", "status", "expression", "exact"),
    [
        (
            _flag_on_a_missing_patient,
            "422 Unprocessable Entity",
            "Bundle.entry[1].resource.subject",
            True,
        ),
        (
            _flag_breaking_its_status_binding,
            "422 Unprocessable Entity",
            "Bundle.entry[1].resource.status",
            True,
        ),
        (_structurally_invalid_flag, "400 Bad Request", "Bundle.entry[1].resource", False),
        (_read_of_an_unknown_id, "404 Not Found", "Bundle.entry[1]", False),
        (stale_if_match, "412 Precondition Failed", "Bundle.entry[1]", False),
        (
            _reference_to_another_entry,
            "422 Unprocessable Entity",
            "Bundle.entry[1].resource.subject",
            False,
        ),
    ],
    ids=[
        "missing-reference",
        "binding",
        "invalid-structure",
        "unknown-read",
        "if-match",
        "urn-reference",
    ],
)
async def test_a_failed_entry_is_reported_in_place_and_the_others_are_stored(
    client: httpx.AsyncClient, middle: MiddleEntry, status: str, expression: str, exact: bool
) -> None:
    first = urn_uuid()
    bad = await middle(client, first)
    entries = await batch(
        client,
        f.entry(method="POST", url="Patient", full_url=first, resource=f.patient(family="First")),
        bad,
        f.entry(method="POST", url="Organization", resource=f.organization(name="Third")),
    )
    assert [e["response"]["status"] for e in entries] == ["201 Created", status, "201 Created"]

    outcome = entries[1]["response"]["outcome"]
    assert outcome["resourceType"] == "OperationOutcome", outcome
    assert "resource" not in entries[1]
    expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
    if exact:
        assert expressions == [expression]
    else:
        assert expressions and all(e.startswith(expression) for e in expressions), expressions

    for entry, name in ((entries[0], "First"), (entries[2], "Third")):
        current = await client.get(f"/{entry['response']['location']}")
        assert current.status_code == 200, current.text
        assert name in current.text


async def test_a_batch_of_good_entries_answers_each_in_order(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient())
    flag = await create(client, f.flag(subject=reference(child)))
    entries = await batch(
        client,
        f.entry(method="POST", url="Organization", resource=f.organization()),
        f.entry(method="GET", url=reference(child)),
        f.entry(method="PUT", url=reference(child), resource=child | {"gender": "other"}),
        f.entry(method="GET", url=f"Flag?patient={child['id']}"),
        f.entry(method="DELETE", url=reference(flag)),
    )
    assert [e["response"]["status"] for e in entries] == [
        "201 Created",
        "200 OK",
        "200 OK",
        "200 OK",
        "204 No Content",
    ]
    assert entries[1]["resource"]["id"] == child["id"]
    assert entries[2]["response"]["etag"] == 'W/"2"'
    assert entries[3]["resource"]["type"] == "searchset"
    assert (await client.get(f"/{reference(child)}")).json()["gender"] == "other"
    assert (await client.get(f"/{reference(flag)}")).status_code == 410
    organizations = await client.get("/Organization", params={"_total": "accurate"})
    assert organizations.json()["total"] == 1
