"""Media types, headers and plumbing (http://hl7.org/fhir/R4/http.html#mime-type)."""

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests import factories as f
from tests.http import create


async def test_request_and_correlation_ids_are_echoed(client: httpx.AsyncClient) -> None:
    headers = {"x-request-id": "60e2a8c1-2b1e-4a3f-9a57-3b7c0f0f9d11", "x-correlation-id": "abc-1"}
    for response in (
        await client.get("/metadata", headers=headers),
        await client.get("/Patient/unknown", headers=headers),
    ):
        assert response.headers["x-request-id"] == headers["x-request-id"]
        assert response.headers["x-correlation-id"] == "abc-1"
    generated = await client.get("/metadata")
    assert len(generated.headers["x-request-id"]) == 36


@pytest.mark.parametrize(
    "accept", [None, "application/fhir+json", "application/json", "*/*", "text/html, */*;q=0.8"]
)
async def test_json_is_served_to_clients_that_accept_it(
    client: httpx.AsyncClient, accept: str | None
) -> None:
    headers = {"accept": accept} if accept else {}
    response = await client.get("/metadata", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json; charset=utf-8"


@pytest.mark.parametrize(
    "query_or_accept",
    [{"accept": "application/fhir+xml"}, {"accept": "application/xml, text/xml"}, "_format=xml"],
)
async def test_xml_is_not_acceptable(
    client: httpx.AsyncClient, query_or_accept: dict[str, str] | str
) -> None:
    if isinstance(query_or_accept, str):
        response = await client.get(f"/metadata?{query_or_accept}")
    else:
        response = await client.get("/metadata", headers=query_or_accept)
    assert response.status_code == 406
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_format_json_and_pretty(client: httpx.AsyncClient) -> None:
    created = await create(client, f.organization())
    compact = await client.get(f"/Organization/{created['id']}?_format=json")
    pretty = await client.get(
        f"/Organization/{created['id']}?_format=application/fhir%2Bjson&_pretty=true"
    )
    assert b"\n" not in compact.content
    assert pretty.content.startswith(b'{\n  "resourceType"')
    assert pretty.json() == compact.json()


async def test_xml_body_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/Patient",
        content=b'<Patient xmlns="http://hl7.org/fhir"/>',
        headers={"content-type": "application/fhir+xml"},
    )
    assert response.status_code == 415
    assert response.json()["issue"][0]["expression"] == ["Content-Type"]


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    body = f.organization() | {"alias": ["x" * 1000] * 100}
    response = await client.post("/Organization", json=body)
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{not json", 400),
        (b'{"name": "x"}', 400),
        (b'{"resourceType": "Flag"}', 400),
        (b"[]", 400),
        (b"", 400),
    ],
)
async def test_malformed_bodies_are_400(
    client: httpx.AsyncClient, content: bytes, status: int
) -> None:
    response = await client.post(
        "/Patient", content=content, headers={"content-type": "application/fhir+json"}
    )
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_unknown_type_is_404_and_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/Observation/1")
    assert unknown.status_code == 404
    assert unknown.json()["resourceType"] == "OperationOutcome"
    not_allowed = await client.post("/Patient/123", json=f.patient())
    assert not_allowed.status_code == 405
    assert not_allowed.json()["resourceType"] == "OperationOutcome"


async def test_ping_and_status(client: httpx.AsyncClient) -> None:
    transport = client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as root:
        assert (await root.get("/_ping")).status_code == 200
        status = await root.get("/_status")
        assert status.status_code == 200
        assert status.json()["status"] == "ok"


async def test_status_is_503_when_the_database_is_unreachable() -> None:
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            assert (await http.get("/_ping")).status_code == 200
            assert (await http.get("/_status")).status_code == 503
