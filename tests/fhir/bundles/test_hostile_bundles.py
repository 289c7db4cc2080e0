"""Hostile transaction and batch Bundles: each is a 4xx OperationOutcome (or, in a batch, a
failed entry), never a 500, and nothing is written."""

import base64
from typing import Any

import httpx
import orjson
import pytest

from tests import factories as f
from tests.fhir.test_hostile import assert_outcome, history_size, nested, send

BASE = "http://test/fhir"
FHIR_JSON = "application/fhir+json"
CONTENT_TYPE = {"content-type": FHIR_JSON}
PATIENT_URN = "urn:uuid:0f6b7c9e-3d1a-4b6e-9a8f-2c5d7e1f0a3b"


def _post(url: str = "Patient", **changes: Any) -> dict[str, Any]:
    return f.entry(method="POST", url=url, resource=f.patient() | changes)


def _patch(data: str) -> dict[str, Any]:
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data}
    return f.entry(method="PATCH", url="Patient/abc", resource=binary)


def _bundle(*entries: Any, kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


# A table, one hostile entry per case: formatted, each would take six lines.
# fmt: off
ENTRY_CASES: list[tuple[str, Any, int, str]] = [
    ("entry-not-a-list", {"resourceType": "Bundle", "type": "transaction", "entry": {}}, 400,
     "Bundle.entry"),
    ("entry-is-a-string", _bundle("POST Patient"), 400, "Bundle.entry[0].request"),
    ("request-is-a-list", _bundle({"request": []}), 400, "Bundle.entry[0].request"),
    ("method-lowercase", _bundle({"request": {"method": "post", "url": "Patient"}}), 400,
     "Bundle.entry[0].request.method"),
    ("method-number", _bundle({"request": {"method": 5, "url": "Patient"}}), 400,
     "Bundle.entry[0].request.method"),
    ("method-a-list", _bundle({"request": {"method": ["POST"], "url": "Patient"}}), 400,
     "Bundle.entry[0].request.method"),
    ("url-missing", _bundle({"request": {"method": "GET"}}), 400, "Bundle.entry[0].request.url"),
    ("url-other-server", _bundle(f.entry(method="GET", url="http://evil.example/fhir/Patient")),
     400, "Bundle.entry[0].request.url"),
    ("url-dot-dot", _bundle(f.entry(method="GET", url="../Patient")), 400,
     "Bundle.entry[0].request.url"),
    ("url-unknown-type", _bundle(f.entry(method="GET", url="Hostile/1")), 400,
     "Bundle.entry[0].request.url"),
    ("url-bad-id", _bundle(f.entry(method="DELETE", url="Patient/" + "x" * 65)), 400,
     "Bundle.entry[0].request.url"),
    ("url-too-deep", _bundle(f.entry(method="GET", url="Patient/1/2/3/4/5")), 400,
     "Bundle.entry[0].request.url"),
    ("url-history-not-a-version", _bundle(f.entry(method="GET", url="Patient/1/_history/x")),
     400, "Bundle.entry[0].request.url"),
    ("put-without-id-or-criteria", _bundle(f.entry(method="PUT", url="Patient",
                                                   resource=f.patient())), 400,
     "Bundle.entry[0].request.url"),
    ("post-with-criteria", _bundle(_post("Patient?identifier=x")), 400,
     "Bundle.entry[0].request.url"),
    ("post-without-resource", _bundle(f.entry(method="POST", url="Patient")), 400,
     "Bundle.entry[0].resource"),
    ("resource-type-mismatch", _bundle(f.entry(method="POST", url="Flag", resource=f.patient())),
     400, "Bundle.entry[0].resource.resourceType"),
    ("resource-unknown-element", _bundle(_post(hostile=1)), 400,
     "Bundle.entry[0].resource.hostile"),
    ("put-id-differs", _bundle(f.entry(method="PUT", url="Patient/a",
                                       resource=f.patient() | {"id": "b"})), 400,
     "Bundle.entry[0].resource.id"),
    ("if-match-garbage", _bundle(f.entry(method="DELETE", url="Patient/a", if_match="3")), 400,
     "Bundle.entry[0].request.ifMatch"),
    ("if-none-exist-number", _bundle({"request": {"method": "POST", "url": "Patient",
                                                  "ifNoneExist": 5}, "resource": f.patient()}),
     400, "Bundle.entry[0].request.ifNoneExist"),
    ("if-none-exist-unknown-parameter", _bundle(f.entry(method="POST", url="Patient",
                                                        resource=f.patient(),
                                                        if_none_exist="hostile=1")), 400,
     "Bundle.entry[0].request.ifNoneExist"),
    ("patch-not-binary", _bundle(f.entry(method="PATCH", url="Patient/abc",
                                         resource=f.patient())), 400, "Bundle.entry[0].resource"),
    ("patch-bad-base64", _bundle(_patch("%%%")), 400, "Bundle.entry[0].resource.data"),
    ("patch-base64-not-json", _bundle(_patch(base64.b64encode(b"\xff").decode())), 400,
     "Bundle.entry[0].resource.data"),
    ("conditional-reference-unknown-parameter",
     _bundle(f.entry(method="POST", url="Flag", resource=f.flag(subject="Patient?hostile=1"))),
     400, "Bundle.entry[0].resource.subject"),
    ("conditional-reference-no-match",
     _bundle(f.entry(method="POST", url="Flag",
                     resource=f.flag(subject="Patient?identifier=nobody"))), 422,
     "Bundle.entry[0].resource.subject"),
    ("placeholder-to-nothing",
     _bundle(f.entry(method="POST", url="Flag", resource=f.flag(subject=PATIENT_URN))), 422,
     "Bundle.entry[0].resource.subject"),
    ("nested-bundle", _bundle(f.entry(method="POST", url="Bundle", resource=_bundle())), 400,
     "Bundle.entry[0].request.url"),
    # 64 levels below the resource: where the walk of the entry stops, before validation
    ("resource-nested-too-deep", _bundle(_post(extension=[nested(100)])), 400,
     "Bundle.entry[0].resource" + ".extension[0]" * 32),
]
# fmt: on


@pytest.mark.parametrize(
    ("name", "body", "status", "expression"), ENTRY_CASES, ids=[c[0] for c in ENTRY_CASES]
)
async def test_a_hostile_transaction_is_refused_naming_the_element(
    client: httpx.AsyncClient, name: str, body: Any, status: int, expression: str
) -> None:
    response = await send(
        client, method="POST", url=BASE, content=orjson.dumps(body), headers=CONTENT_TYPE
    )
    assert response.status_code == status, response.text[:500]
    assert_outcome(response, expression)
    assert await history_size(client) == 0


@pytest.mark.parametrize(
    ("name", "body", "status", "expression"), ENTRY_CASES[1:], ids=[c[0] for c in ENTRY_CASES[1:]]
)
async def test_a_hostile_batch_entry_fails_alone(
    client: httpx.AsyncClient, name: str, body: Any, status: int, expression: str
) -> None:
    body = body | {"type": "batch", "entry": [*body.get("entry", []), _post()]}
    response = await send(
        client, method="POST", url=BASE, content=orjson.dumps(body), headers=CONTENT_TYPE
    )
    assert response.status_code == 200, response.text[:500]
    failed, fine = response.json().get("entry", [])
    assert failed["response"]["status"].startswith(str(status)), failed
    issues = failed["response"]["outcome"]["issue"]
    assert expression in [e for issue in issues for e in issue.get("expression", [])], issues
    assert fine["response"]["status"] == "201 Created"
    assert await history_size(client) == 1


BUNDLE_CASES: list[tuple[str, bytes, dict[str, str], int]] = [
    ("not-a-bundle", orjson.dumps(f.patient()), {}, 400),
    ("bundle-type-collection", orjson.dumps(_bundle(kind="collection")), {}, 400),
    ("bundle-type-missing", b'{"resourceType":"Bundle","entry":[]}', {}, 400),
    ("bundle-type-a-list", b'{"resourceType":"Bundle","type":["batch"],"entry":[]}', {}, 400),
    ("json-array", b"[]", {}, 400),
    ("empty-body", b"", {}, 400),
    (
        "xml",
        b"<Bundle xmlns='http://hl7.org/fhir'/>",
        {"content-type": "application/fhir+xml"},
        415,
    ),
    (
        "too-many-entries",
        orjson.dumps(_bundle(*[f.entry(method="GET", url="Patient/x")] * 1001)),
        {},
        413,
    ),
    (
        "over-the-size-limit",
        orjson.dumps(_bundle(_post(text={"status": "generated", "div": "x" * 70_000}))),
        {},
        413,
    ),
    ("accept-xml", orjson.dumps(_bundle()), {"accept": "application/fhir+xml"}, 406),
    (
        "nested-too-deep-to-parse",
        b'{"resourceType":"Bundle","type":"batch","meta":' + b"[" * 5000 + b"]" * 5000 + b"}",
        {},
        400,
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "headers", "status"), BUNDLE_CASES, ids=[c[0] for c in BUNDLE_CASES]
)
async def test_a_hostile_bundle_body_is_refused(
    client: httpx.AsyncClient, name: str, content: bytes, headers: dict[str, str], status: int
) -> None:
    response = await send(
        client, method="POST", url=BASE, content=content, headers=CONTENT_TYPE | headers
    )
    assert response.status_code == status, response.text[:500]
    assert_outcome(response)
    assert await history_size(client) == 0


async def test_an_empty_transaction_answers_an_empty_response(client: httpx.AsyncClient) -> None:
    response = await send(
        client, method="POST", url=BASE, content=orjson.dumps(_bundle()), headers=CONTENT_TYPE
    )
    assert response.status_code == 200
    assert response.json()["type"] == "transaction-response"
    assert response.json().get("entry", []) == []
