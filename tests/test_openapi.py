"""openapi/openapi.json is generated from the app (`make openapi`): it must be current and whole."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

from app.main import create_app
from app.openapi.document import render
from app.settings import Settings

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
DOCUMENT: dict[str, Any] = json.loads(COMMITTED.read_text(encoding="utf-8"))


def _examples(path: str, method: str) -> dict[str, Any]:
    content = DOCUMENT["paths"][path][method]["requestBody"]["content"]
    examples: dict[str, Any] = content["application/fhir+json"]["examples"]
    return {name: example["value"] for name, example in examples.items()}


@pytest.fixture(scope="module")
def unstarted_app() -> FastAPI:
    """The app as `safeguard openapi` builds it: its lifespan never runs, no database opens."""
    return create_app(Settings(database_url="sqlite:///:memory:"))


def test_committed_document_is_current(unstarted_app: FastAPI) -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(unstarted_app), (
        "openapi/openapi.json is stale: run `make openapi` and commit the result"
    )


def test_every_route_is_documented(unstarted_app: FastAPI) -> None:
    documented = {(path, method) for path, item in DOCUMENT["paths"].items() for method in item}
    routes = {
        (route.path, method.lower())
        for route in unstarted_app.routes
        if (isinstance(route, APIRoute) and route.include_in_schema)
        or (isinstance(route, Route) and route.path[:5] == "/fhir")
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert routes == documented
    served = unstarted_app.openapi()["paths"]  # what /openapi.json and /docs show
    assert {(path, method) for path, item in served.items() for method in item} == documented


def test_every_error_response_is_an_operation_outcome() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            success = {"200", "201", "202"}  # 202: $export's kick-off, status and cancel
            assert statuses & success, (path, method)
            for status in statuses - success - {"503"}:
                media = operation["responses"][status]["content"]["application/fhir+json"]
                assert media["schema"]["$ref"].endswith("/OperationOutcome"), (path, method, status)


async def test_request_examples_are_accepted(client: httpx.AsyncClient) -> None:
    created = _examples("/fhir/{resource_type}", "post")
    updated = _examples("/fhir/{resource_type}/{logical_id}", "put")
    for name in ("Patient", "Organization", "Flag", "Condition", "RelatedPerson"):
        response = await client.put(f"/{name}/{updated[name]['id']}", json=updated[name])
        assert response.status_code == 201, response.text
        if name != "Patient":  # a second Patient may not hold the same NHS number
            response = await client.post(f"/{name}", json=created[name])
            assert response.status_code == 201, response.text
    patch = DOCUMENT["paths"]["/fhir/{resource_type}/{logical_id}"]["patch"]["requestBody"]
    document = patch["content"]["application/json-patch+json"]["example"]
    response = await client.patch(
        f"/Flag/{updated['Flag']['id']}",
        content=json.dumps(document),
        headers={"content-type": "application/json-patch+json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["identifier"] == document[1]["value"]


def test_each_409_tells_retryable_contention_from_business_refusals() -> None:
    refusals = {"duplicate": "DUPLICATE_REJECTED", "business-rule": None}
    documented = {}
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            conflict = operation["responses"].get("409")
            if conflict is None:
                continue
            text, headers = conflict["description"], conflict["headers"]
            examples = conflict["content"]["application/fhir+json"]["examples"]
            assert "**Retryable** (issue code `transient`" in text and "Retry-After" in headers
            assert examples["retryable"]["value"]["issue"][0]["code"] == "transient"
            for kind in set(examples) - {"retryable"}:
                (issue,) = examples[kind]["value"]["issue"]
                coding = issue.get("details", {}).get("coding", [{}])
                assert issue["code"] == kind and coding[0].get("code") == refusals[kind]
                assert f"**Not retryable** (issue code `{kind}`" in text, (path, method)
            documented[(path, method)] = set(examples)
    assert documented[("/fhir/{resource_type}", "post")] == {"retryable", "duplicate"}
    assert documented[("/fhir/{resource_type}/{logical_id}", "delete")] == {
        "retryable",
        "business-rule",
    }
