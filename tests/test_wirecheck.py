"""The suite's walk of every FHIR response for empty arrays finds them, and only in resources."""

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from tests.wirecheck import empty_arrays, resources_in

BUNDLE = b'{"resourceType":"Bundle","type":"searchset","entry":[]}'
MANIFEST = b'{"transactionTime":"2026-01-01T00:00:00Z","output":[],"error":[]}'


def test_empty_arrays_are_found_at_any_depth() -> None:
    resource = {"resourceType": "Patient", "name": [{"given": []}, {"family": "X"}], "link": []}
    assert empty_arrays(resource, "Patient") == ["Patient.name[0].given", "Patient.link"]
    assert empty_arrays({"resourceType": "Patient", "name": [{"given": ["A"]}]}, "Patient") == []


def test_only_resources_are_walked() -> None:
    assert resources_in("application/fhir+json; charset=utf-8", BUNDLE)[0]["entry"] == []
    assert resources_in("application/json", MANIFEST) == []  # the Bulk Data manifest
    assert resources_in("text/html", b"<p>[]</p>") == []
    ndjson = b'{"resourceType":"Flag","id":"a"}\n{"resourceType":"Flag","id":"b"}\n'
    assert [r["id"] for r in resources_in("application/fhir+ndjson", ndjson)] == ["a", "b"]


async def test_a_response_with_an_empty_array_fails_its_request() -> None:
    async def empty(_request: object) -> Response:
        return Response(BUNDLE, media_type="application/fhir+json")

    transport = httpx.ASGITransport(app=Starlette(routes=[Route("/Flag", empty)]))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(
            AssertionError, match=r"GET http://test/Flag sent empty arrays at \['Bundle.entry'\]"
        ):
            await client.get("/Flag")
