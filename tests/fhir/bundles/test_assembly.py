"""The head of every Bundle kind we assemble around stored bytes: which keys, in which order.

Spec: http://hl7.org/fhir/R4/bundle.html
"""

import uuid
from typing import Any

import orjson
import pytest

from app.errors import Issue
from app.fhir import summary_routes
from app.fhir.bundles import assembly, results
from app.flags.summary import Summary
from app.flags.summary_warnings import Family, Held
from app.records.reads import Included, Match, Version

BASE = "http://test/fhir"
PATIENT = b'{"resourceType":"Patient","id":"a","meta":{"versionId":"1"}}'
FLAG = b'{"resourceType":"Flag","id":"f","status":"active"}'
HEAD = ["resourceType", "id", "meta", "type"]


def parsed(body: bytes) -> dict[str, Any]:
    """The Bundle's parse, having checked it is compact JSON whose keys keep their order."""
    bundle: dict[str, Any] = orjson.loads(body)
    assert orjson.dumps(bundle) == body
    uuid.UUID(bundle["id"])
    assert list(bundle["meta"]) == ["lastUpdated"]
    return bundle


def unshaped(body: bytes, _match: bool) -> bytes:
    return body


def test_searchset_head_and_entries() -> None:
    body = assembly.searchset(
        BASE,
        "Patient",
        [Match(1, "a", PATIENT, ())],
        [Included(2, "Flag", "f", FLAG)],
        links=[("self", f"{BASE}/Patient"), ("next", f"{BASE}/Patient?_cursor=1")],
        total=1,
        warnings=[Issue("ignored", code="not-supported", severity="warning")],
        shape=unshaped,
    )
    bundle = parsed(body)
    assert list(bundle) == [*HEAD, "total", "link", "entry"]
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    assert bundle["link"] == [
        {"relation": "self", "url": f"{BASE}/Patient"},
        {"relation": "next", "url": f"{BASE}/Patient?_cursor=1"},
    ]
    assert [list(entry) for entry in bundle.get("entry", [])] == [
        ["fullUrl", "resource", "search"],
        ["fullUrl", "resource", "search"],
        ["resource", "search"],
    ]
    assert [entry["search"]["mode"] for entry in bundle.get("entry", [])] == [
        "match",
        "include",
        "outcome",
    ]
    assert bundle.get("entry", [])[1]["fullUrl"] == f"{BASE}/Flag/f"


@pytest.mark.parametrize("total", [0, None])
def test_empty_searchset_has_no_entry_or_empty_link_array(total: int | None) -> None:
    """FHIR JSON has no empty arrays (http://hl7.org/fhir/R4/json.html#arrays)."""
    body = assembly.searchset(
        BASE, "Patient", [], [], links=[], total=total, warnings=[], shape=unshaped
    )
    bundle = parsed(body)
    assert list(bundle) == ([*HEAD, "total"] if total is not None else HEAD)


def test_history_head_and_entries() -> None:
    versions = [
        Version("a", 2, 1_700_000_000_000_000, "DELETE", None, "Patient"),
        Version("a", 1, 1_600_000_000_000_000, "PUT", PATIENT, "Patient"),
    ]
    body = assembly.history(
        BASE,
        versions,
        self_url=f"{BASE}/Patient/a/_history",
        next_url=None,
        last_updated=1_800_000_000_000_001,
    )
    bundle = parsed(body)
    assert list(bundle) == [*HEAD, "link", "entry"]
    assert bundle["meta"]["lastUpdated"] == "2027-01-15T08:00:00.000001+00:00"
    assert bundle["type"] == "history"
    assert bundle["link"] == [{"relation": "self", "url": f"{BASE}/Patient/a/_history"}]
    assert [list(entry) for entry in bundle.get("entry", [])] == [
        ["fullUrl", "request", "response"],
        ["fullUrl", "resource", "request", "response"],
    ]
    assert bundle.get("entry", [])[1]["response"]["status"] == "201 Created"


@pytest.mark.parametrize("kind", ["transaction-response", "batch-response"])
def test_transaction_and_batch_response_have_no_link(kind: str) -> None:
    entries = [results.read(f"{BASE}/Patient/a", PATIENT, 1, 1_600_000_000_000_000)]
    bundle = parsed(results.bundle(kind, entries))
    assert list(bundle) == [*HEAD, "entry"]
    assert bundle["type"] == kind
    assert [list(entry) for entry in bundle.get("entry", [])] == [
        ["fullUrl", "resource", "response"]
    ]
    assert list(parsed(results.bundle(kind, []))) == HEAD


def test_summary_collection_has_a_timestamp_and_no_link() -> None:
    held = Held("Patient", "a", PATIENT, orjson.loads(PATIENT))
    outcome = {"resourceType": "OperationOutcome", "issue": []}
    found = Summary((held,), outcome, Family(held, BASE), findings=(), adult=False)
    bundle = parsed(summary_routes._bundle(BASE, found))
    assert list(bundle) == [*HEAD, "timestamp", "entry"]
    assert bundle["type"] == "collection"
    assert bundle["timestamp"] == bundle["meta"]["lastUpdated"]
    assert [list(entry) for entry in bundle.get("entry", [])] == [
        ["fullUrl", "resource"],
        ["fullUrl", "resource"],
    ]
    assert bundle.get("entry", [])[0] == {
        "fullUrl": f"{BASE}/Patient/a",
        "resource": orjson.loads(PATIENT),
    }
    assert bundle.get("entry", [])[1]["fullUrl"].startswith("urn:uuid:")
    assert bundle.get("entry", [])[1]["resource"]["resourceType"] == "OperationOutcome"
