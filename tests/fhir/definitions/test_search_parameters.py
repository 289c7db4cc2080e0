"""The SearchParameters this server defines, read-only at /SearchParameter
(http://hl7.org/fhir/R4/searchparameter.html)."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.searchparameter import SearchParameter

from app.errors import Invalid
from app.fhir.definitions.search_parameters import SEARCH, definitions, search_parameter
from app.fhir.definitions.selection import select
from app.registry import SearchParam, custom_params
from tests.conftest import BASE
from tests.http import FHIR_JSON, client_under

CUSTOM = {param.definition.rsplit("/", 1)[-1]: (base, param) for base, param in custom_params()}
OTHER_BASE = "https://fhir.example.org/safeguard"


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [
        entry["resource"]["id"]
        for entry in bundle.get("entry", [])
        if entry["search"]["mode"] == "match"
    ]


def test_every_custom_parameter_is_published() -> None:
    assert set(CUSTOM) == {
        "Flag-status",
        "Flag-category",
        "Flag-code",
        "RelatedPerson-linked-patient",
    }
    assert [r["id"] for r in definitions(BASE)] == list(CUSTOM)


@pytest.mark.parametrize("logical_id", sorted(CUSTOM))
def test_definition_is_a_valid_r4_search_parameter(logical_id: str) -> None:
    base, param = CUSTOM[logical_id]
    resource = search_parameter(base, param, BASE)
    SearchParameter.model_validate(resource)
    assert resource["url"] == f"{BASE}/SearchParameter/{logical_id}"
    assert resource["base"] == [logical_id.split("-", 1)[0]]
    assert resource["code"] == resource["name"] == param.code
    assert resource["expression"] == param.expression
    assert (resource["status"], resource["experimental"]) == ("active", False)
    assert resource["xpathUsage"] == "normal"
    if logical_id.startswith("Flag-"):
        assert resource["type"] == "token"
        assert resource["modifier"] == ["missing", "not", "text"]
    else:
        assert (resource["type"], resource["target"]) == ("reference", ["Patient"])
        assert resource["modifier"] == ["identifier", "missing", "type"]
    assert "comparator" not in resource
    assert resource["version"] and resource["publisher"] and resource["description"]


def test_reference_parameters_name_their_targets() -> None:
    param = SearchParam(
        "about",
        "reference",
        ("Flag.subject",),
        "Whom the flag is about",
        "Flag.subject",
        targets=("Patient",),
        custom=True,
        definition="SearchParameter/Flag-about",
    )
    resource = search_parameter("Flag", param, BASE)
    SearchParameter.model_validate(resource)
    assert resource["target"] == ["Patient"]
    assert resource["modifier"] == ["identifier", "missing", "type"]
    assert "comparator" not in resource


def test_date_parameters_list_their_comparators() -> None:
    param = SearchParam(
        "reviewed",
        "date",
        ("Flag.period.end",),
        "When the flag was last reviewed",
        "Flag.period.end",
        custom=True,
        definition="SearchParameter/Flag-reviewed",
    )
    resource = search_parameter("Flag", param, BASE)
    SearchParameter.model_validate(resource)
    assert resource["comparator"] == ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
    assert resource["modifier"] == ["missing"]


@pytest.mark.parametrize("logical_id", sorted(CUSTOM))
async def test_read_returns_the_definition(client: httpx.AsyncClient, logical_id: str) -> None:
    response = await client.get(f"/SearchParameter/{logical_id}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    assert body == search_parameter(*CUSTOM[logical_id], BASE)
    SearchParameter.model_validate(body)


@pytest.mark.parametrize("logical_id", ["Flag-author", "Patient-status", "nope", "a" * 80])
async def test_read_unknown_id_is_404_outcome(client: httpx.AsyncClient, logical_id: str) -> None:
    response = await client.get(f"/SearchParameter/{logical_id}")
    assert response.status_code == 404
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found"


async def test_read_honours_accept_and_pretty(client: httpx.AsyncClient) -> None:
    xml = await client.get("/SearchParameter/Flag-code", headers={"accept": "application/xml"})
    assert xml.status_code == 406
    pretty = await client.get("/SearchParameter/Flag-code", params={"_pretty": "true"})
    assert pretty.status_code == 200
    assert b'\n  "resourceType"' in pretty.content


async def test_search_without_parameters_returns_every_definition(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/SearchParameter")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FHIR_JSON)
    bundle = response.json()
    assert (bundle["resourceType"], bundle["type"], bundle["total"]) == ("Bundle", "searchset", 4)
    assert bundle["link"] == [{"relation": "self", "url": f"{BASE}/SearchParameter"}]
    for entry in bundle.get("entry", []):
        assert entry["fullUrl"] == f"{BASE}/SearchParameter/{entry['resource']['id']}"
        assert entry["search"] == {"mode": "match"}
        SearchParameter.model_validate(entry["resource"])
    assert _ids(bundle) == list(CUSTOM)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"url": f"{BASE}/SearchParameter/Flag-status"}, ["Flag-status"]),
        ({"url": f"{BASE}/SearchParameter/Flag-stat"}, []),
        ({"url": "http://hl7.org/fhir/SearchParameter/Flag-author"}, []),
        ({"code": "category"}, ["Flag-category"]),
        ({"code": "status,code"}, ["Flag-status", "Flag-code"]),
        ({"code": "|code"}, ["Flag-code"]),
        ({"code": "http://example.org|code"}, []),
        ({"code": "author"}, []),
        ({"base": "Flag"}, ["Flag-status", "Flag-category", "Flag-code"]),
        ({"base": "Patient"}, []),
        ({"_id": "Flag-code,Flag-status"}, ["Flag-status", "Flag-code"]),
        ({"base": "Flag", "code": "status"}, ["Flag-status"]),
        ({"base": "Patient", "code": "status"}, []),
    ],
)
async def test_search_by_url_code_base_and_id(
    client: httpx.AsyncClient, query: dict[str, str], expected: list[str]
) -> None:
    response = await client.get("/SearchParameter", params=query)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert _ids(bundle) == expected
    assert bundle["total"] == len(expected)


async def test_search_parameters_repeated_are_all_applied(client: httpx.AsyncClient) -> None:
    response = await client.get("/SearchParameter?code=status,code&code=code,category")
    assert _ids(response.json()) == ["Flag-code"]


async def test_unknown_parameters_are_ignored_and_reported(client: httpx.AsyncClient) -> None:
    response = await client.get("/SearchParameter", params={"code": "status", "name": "x"})
    assert response.status_code == 200
    bundle = response.json()
    assert _ids(bundle) == ["Flag-status"]
    assert bundle["link"][0]["url"] == f"{BASE}/SearchParameter?code=status"
    outcomes = [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome"]
    assert outcomes[0]["issue"][0]["expression"] == ["name"]
    strict = await client.get(
        "/SearchParameter", params={"name": "x"}, headers={"prefer": "handling=strict"}
    )
    assert strict.status_code == 400
    assert strict.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("query", ["url:below=http://x", "code:missing=true", "code=", "base=,"])
async def test_unsupported_modifiers_and_empty_values_are_400(
    client: httpx.AsyncClient, query: str
) -> None:
    response = await client.get(f"/SearchParameter?{query}")
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_select_is_pure_and_ignores_result_parameters() -> None:
    resources = definitions(BASE)
    matched, applied, ignored = select(SEARCH, resources, [("_count", "1"), ("code", "code")])
    assert [r["id"] for r in matched] == ["Flag-code"]
    assert (applied, ignored) == ([("code", "code")], [])
    with pytest.raises(Invalid):
        select(SEARCH, resources, [("_id:not", "Flag-code")])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/SearchParameter"),
        ("PUT", "/SearchParameter"),
        ("DELETE", "/SearchParameter"),
        ("PUT", "/SearchParameter/Flag-status"),
        ("PATCH", "/SearchParameter/Flag-status"),
        ("DELETE", "/SearchParameter/Flag-status"),
        ("POST", "/SearchParameter/Flag-status"),
        ("DELETE", "/SearchParameter/unknown"),
    ],
)
async def test_writes_are_405_outcome(client: httpx.AsyncClient, method: str, path: str) -> None:
    body = search_parameter(*CUSTOM["Flag-status"], BASE)
    content = None if method == "DELETE" else httpx.Request("POST", "/", json=body).content
    response = await client.request(
        method, path, content=content, headers={"content-type": FHIR_JSON}
    )
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "GET, HEAD"
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-supported"
    assert (await client.get("/SearchParameter/Flag-status")).json() == body


@pytest.fixture
async def elsewhere(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app whose definitions are published under another canonical base."""
    async with client_under(database_url, f"{OTHER_BASE}/") as http:
        yield http


async def test_canonical_base_url_setting_names_the_definitions(
    elsewhere: httpx.AsyncClient,
) -> None:
    url = f"{OTHER_BASE}/SearchParameter/Flag-status"
    read = (await elsewhere.get("/SearchParameter/Flag-status")).json()
    assert read["url"] == url
    found = (await elsewhere.get("/SearchParameter", params={"url": url})).json()
    assert _ids(found) == ["Flag-status"]
    assert found.get("entry", [])[0]["fullUrl"] == f"{BASE}/SearchParameter/Flag-status"
    statement = (await elsewhere.get("/metadata")).json()
    flag = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Flag")
    definitions_named = {p["name"]: p["definition"] for p in flag["searchParam"]}
    assert definitions_named["status"] == url
