"""The OpenAPI document names the scopes each route needs, and the server asks for exactly those."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests import factories as f
from tests.callers import app_client_for, scoped
from tests.http import create, reference

DOCUMENT: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "openapi" / "openapi.json").read_text(encoding="utf-8")
)
SCHEME = DOCUMENT["components"]["securitySchemes"]["smartBackendServices"]
DECLARED = SCHEME["flows"]["clientCredentials"]["scopes"]


def _operation(path: str, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = DOCUMENT["paths"][path][method]
    return operation


def _needed(path: str, method: str) -> list[str]:
    (smart,) = [s for s in _operation(path, method)["security"] if "smartBackendServices" in s]
    return [scope.replace("{resource_type}", "Flag") for scope in smart["smartBackendServices"]]


def test_every_guarded_route_says_which_declared_scopes_it_needs() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if not path.startswith("/fhir") or path == "/fhir/metadata":
                assert "security" not in operation, (path, method)
                continue
            (smart, bearer) = operation["security"]
            assert bearer == {"bearer": []}
            assert set(smart["smartBackendServices"]) <= set(DECLARED), (path, method)
            assert "Scopes: " in operation["description"], (path, method)


ROUTES = [
    ("/fhir/{resource_type}/{logical_id}", "get", lambda ids: ("GET", f"/Flag/{ids['flag']}")),
    ("/fhir/{resource_type}", "get", lambda ids: ("GET", "/Flag")),
    (
        "/fhir/{resource_type}/{logical_id}/_history",
        "get",
        lambda ids: ("GET", f"/Flag/{ids['flag']}/_history"),
    ),
    (
        "/fhir/{resource_type}/{logical_id}",
        "delete",
        lambda ids: ("DELETE", f"/Flag/{ids['flag']}"),
    ),
    (
        "/fhir/Patient/{logical_id}/Flag",
        "get",
        lambda ids: ("GET", f"/Patient/{ids['child']}/Flag"),
    ),
    (
        "/fhir/Patient/{logical_id}/$safeguarding-summary",
        "get",
        lambda ids: ("GET", f"/Patient/{ids['child']}/$safeguarding-summary"),
    ),
]


@pytest.mark.parametrize(
    ("path", "method", "request_of"), ROUTES, ids=[f"{m} {p}" for p, m, _ in ROUTES]
)
async def test_the_documented_scopes_are_enough_and_each_is_needed(
    client: httpx.AsyncClient, settings: Settings, path: str, method: str, request_of: Any
) -> None:
    child = await create(client, f.patient())
    flag = await create(client, f.flag(subject=reference(child)))
    ids = {"child": child["id"], "flag": flag["id"]}
    verb, url = request_of(ids)
    needed = _needed(path, method)
    async with app_client_for(settings, scoped(" ".join(needed))) as enough:
        answered = await enough.request(verb, url)
        assert answered.status_code < 400, (needed, answered.text)
    for missing in needed:
        fewer = " ".join(s for s in needed if s != missing) or "system/Organization.r"
        async with app_client_for(settings, scoped(fewer)) as short:
            refused = await short.request(verb, url)
            assert refused.status_code == 403, (missing, refused.text)
