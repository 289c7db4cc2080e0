"""The safeguarding vocabulary served read-only as CodeSystem and ValueSet, and $validate-code
(http://hl7.org/fhir/R4/valueset-operation-validate-code.html)."""

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.valueset import ValueSet

from app.fhir.definitions.artefacts import SEARCH, catalogue
from app.fhir.definitions.selection import select
from app.flags.codes import CARE_TEAM_ROLES, FLAG_TYPES, REMOVAL_REASONS, SNOMED, vocabulary
from tests.conftest import BASE
from tests.http import FHIR_JSON, client_under, outcome_expressions

VOCABULARY = vocabulary(BASE)
FLAG_SYSTEM = VOCABULARY.flag_type_system
REASON_SYSTEM = VOCABULARY.removal_reason_system
FLAG_SET = VOCABULARY.url("ValueSet", FLAG_TYPES)
REASON_SET = VOCABULARY.url("ValueSet", REMOVAL_REASONS)
CONFIRMED = {c.snomed: c.snomed_display for c in VOCABULARY.flag_types if c.snomed}
PLAN = next(c for c in VOCABULARY.flag_types if c.code == "child-protection-plan")
HOME_EDUCATION = next(c for c in VOCABULARY.flag_types if c.code == "elective-home-education")
REASON = VOCABULARY.removal_reasons[0]
PUBLISHED = catalogue(VOCABULARY, "2026-01-01T00:00:00.000000+00:00", 0)
OTHER_BASE = "https://terminology.example.org/safeguard"
VALIDATE = "/ValueSet/$validate-code"
HL7_SEARCH = "http://hl7.org/fhir/SearchParameter/"


def _resource(kind: str, logical_id: str) -> dict[str, Any]:
    return PUBLISHED.artefacts[(kind, logical_id)].resource


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def _out(response: httpx.Response) -> dict[str, Any]:
    """The out-parameters of a $validate-code answer, by name."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    Parameters.model_validate(body)
    return {p["name"]: next(v for k, v in p.items() if k != "name") for p in body["parameter"]}


def _parameters(*pairs: tuple[str, str, Any]) -> dict[str, Any]:
    """A Parameters body of (name, value[x] key, value)."""
    return {"resourceType": "Parameters", "parameter": [{"name": n, k: v} for n, k, v in pairs]}


async def _post(client: httpx.AsyncClient, path: str, body: Any) -> httpx.Response:
    return await client.post(path, json=body, headers={"content-type": FHIR_JSON})


# --- the artefacts, built from the vocabulary ---


def test_flag_type_code_system_has_every_concept_with_its_properties() -> None:
    resource = _resource("CodeSystem", FLAG_TYPES)
    CodeSystem.model_validate(resource)
    assert resource["url"] == FLAG_SYSTEM
    assert (resource["status"], resource["content"], resource["caseSensitive"]) == (
        "active",
        "complete",
        True,
    )
    assert resource["publisher"] and resource["description"]
    assert resource["meta"]["versionId"] == "1"
    assert resource["count"] == len(VOCABULARY.flag_types) == len(resource["concept"])
    assert {p["code"]: p["type"] for p in resource["property"]} == {
        "source": "string",
        "snomed-ct": "Coding",
    }
    for row, concept in zip(VOCABULARY.flag_types, resource["concept"], strict=True):
        assert (concept["code"], concept["display"]) == (row.code, row.display)
        assert concept["definition"] == row.definition
        properties = {p["code"]: p for p in concept["property"]}
        assert properties["source"]["valueString"] == row.source
        if row.snomed is None:
            assert "snomed-ct" not in properties
        else:
            assert properties["snomed-ct"]["valueCoding"] == {
                "system": SNOMED,
                "code": row.snomed,
                "display": row.snomed_display,
            }


def test_removal_reason_code_system_declares_no_unused_property() -> None:
    resource = _resource("CodeSystem", REMOVAL_REASONS)
    CodeSystem.model_validate(resource)
    assert resource["url"] == REASON_SYSTEM
    assert [c["code"] for c in resource["concept"]] == [r.code for r in VOCABULARY.removal_reasons]
    assert "property" not in resource
    assert all("property" not in concept for concept in resource["concept"])


def test_flag_type_value_set_includes_the_system_and_exactly_the_confirmed_snomed_codes() -> None:
    resource = _resource("ValueSet", FLAG_TYPES)
    ValueSet.model_validate(resource)
    assert resource["url"] == FLAG_SET
    own, snomed = resource["compose"]["include"]
    assert own == {"system": FLAG_SYSTEM}
    assert snomed["system"] == SNOMED
    assert {c["code"]: c["display"] for c in snomed["concept"]} == CONFIRMED
    assert len(snomed["concept"]) == len(CONFIRMED) > 0
    expansion = resource["expansion"]
    assert expansion["total"] == len(VOCABULARY.flag_types) + len(CONFIRMED)
    members = {(c["system"], c["code"]): c["display"] for c in expansion["contains"]}
    assert len(members) == expansion["total"]
    assert members[(FLAG_SYSTEM, PLAN.code)] == PLAN.display
    assert members[(SNOMED, PLAN.snomed)] == PLAN.snomed_display
    assert expansion["timestamp"] == resource["meta"]["lastUpdated"]


def test_removal_reason_value_set_is_the_whole_code_system() -> None:
    resource = _resource("ValueSet", REMOVAL_REASONS)
    ValueSet.model_validate(resource)
    assert resource["compose"] == {"include": [{"system": REASON_SYSTEM}]}
    assert [c["code"] for c in resource["expansion"]["contains"]] == [
        r.code for r in VOCABULARY.removal_reasons
    ]


def test_select_is_pure_and_reports_unknown_parameters() -> None:
    resources = [a.resource for a in PUBLISHED.of_kind("ValueSet")]
    matched, applied, ignored = select(
        SEARCH, resources, [("_count", "1"), ("url", REASON_SET), ("x", "")]
    )
    assert [r["id"] for r in matched] == [REMOVAL_REASONS]
    assert applied == [("url", REASON_SET)]
    assert [issue.expression for issue in ignored] == [("x",)]


# --- read ---


@pytest.mark.parametrize("kind", ["CodeSystem", "ValueSet"])
@pytest.mark.parametrize("logical_id", [FLAG_TYPES, REMOVAL_REASONS, CARE_TEAM_ROLES])
async def test_read_returns_the_published_resource(
    client: httpx.AsyncClient, kind: str, logical_id: str
) -> None:
    response = await client.get(f"/{kind}/{logical_id}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["last-modified"].endswith(" GMT")
    body = response.json()
    published = _resource(kind, logical_id)
    assert body["meta"]["versionId"] == "1"
    assert {k: v for k, v in body.items() if k not in ("meta", "expansion")} == {
        k: v for k, v in published.items() if k not in ("meta", "expansion")
    }
    again = (await client.get(f"/{kind}/{logical_id}")).json()
    assert again["meta"]["lastUpdated"] == body["meta"]["lastUpdated"]  # built once


async def test_every_artefact_has_one_publication_instant(client: httpx.AsyncClient) -> None:
    stamps = {
        (await client.get(f"/{kind}/{logical_id}")).json()["meta"]["lastUpdated"]
        for kind in ("CodeSystem", "ValueSet")
        for logical_id in (FLAG_TYPES, REMOVAL_REASONS)
    }
    assert len(stamps) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/CodeSystem/nope",
        "/ValueSet/nope",
        "/ValueSet/Flag-status",
        "/CodeSystem/" + "a" * 80,
        "/ValueSet/$expand",
    ],
)
async def test_read_unknown_id_is_404_outcome(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found"


async def test_read_honours_accept_and_pretty(client: httpx.AsyncClient) -> None:
    path = f"/ValueSet/{FLAG_TYPES}"
    xml = await client.get(path, headers={"accept": "application/fhir+xml"})
    assert xml.status_code == 406
    assert outcome_expressions(xml) == ["Accept"]
    pretty = await client.get(path, params={"_pretty": "true"})
    assert b'\n  "resourceType"' in pretty.content


# --- search ---


@pytest.mark.parametrize("kind", ["CodeSystem", "ValueSet"])
async def test_search_without_parameters_returns_every_one(
    client: httpx.AsyncClient, kind: str
) -> None:
    response = await client.get(f"/{kind}")
    assert response.status_code == 200
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert (bundle["type"], bundle["total"]) == ("searchset", 3)
    assert _ids(bundle) == [FLAG_TYPES, REMOVAL_REASONS, CARE_TEAM_ROLES]
    for entry in bundle.get("entry", []):
        assert entry["fullUrl"] == f"{BASE}/{kind}/{entry['resource']['id']}"
        assert entry["search"] == {"mode": "match"}
        assert entry["resource"]["resourceType"] == kind


@pytest.mark.parametrize(
    ("kind", "query", "expected"),
    [
        ("ValueSet", {"url": FLAG_SET}, [FLAG_TYPES]),
        ("ValueSet", {"url": REASON_SET}, [REMOVAL_REASONS]),
        ("ValueSet", {"url": FLAG_SYSTEM}, []),  # a code system's url names no value set
        ("CodeSystem", {"url": FLAG_SYSTEM}, [FLAG_TYPES]),
        ("CodeSystem", {"url": f"{FLAG_SYSTEM},{REASON_SYSTEM}"}, [FLAG_TYPES, REMOVAL_REASONS]),
        ("CodeSystem", {"url": FLAG_SYSTEM[:-1]}, []),
        ("CodeSystem", {"_id": REMOVAL_REASONS}, [REMOVAL_REASONS]),
        ("ValueSet", {"_id": "nope"}, []),
        ("ValueSet", {"name": "safeguarding"}, [FLAG_TYPES]),  # starts with, any case
        ("ValueSet", {"name": "FlagType"}, []),
        ("ValueSet", {"name:contains": "flagtype"}, [FLAG_TYPES]),
        ("ValueSet", {"name:exact": "SafeguardingFlagType"}, [FLAG_TYPES]),
        ("ValueSet", {"name:exact": "safeguardingflagtype"}, []),
        ("CodeSystem", {"status": "active"}, [FLAG_TYPES, REMOVAL_REASONS, CARE_TEAM_ROLES]),
        (
            "CodeSystem",
            {"status": "http://hl7.org/fhir/publication-status|active"},
            [FLAG_TYPES, REMOVAL_REASONS, CARE_TEAM_ROLES],
        ),
        ("CodeSystem", {"status": "http://example.org|active"}, []),
        ("CodeSystem", {"status": "draft,retired"}, []),
        ("ValueSet", {"version": "0.1.0", "url": REASON_SET}, [REMOVAL_REASONS]),
        ("ValueSet", {"version": "9"}, []),
    ],
)
async def test_search_by_url_id_name_status_and_version(
    client: httpx.AsyncClient, kind: str, query: dict[str, str], expected: list[str]
) -> None:
    response = await client.get(f"/{kind}", params=query)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert _ids(bundle) == expected
    assert bundle["total"] == len(expected)


async def test_search_pages_with_count_and_follows_next(client: httpx.AsyncClient) -> None:
    first = (await client.get("/ValueSet", params={"_count": "1"})).json()
    assert (first["total"], _ids(first)) == (3, [FLAG_TYPES])
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "previous" not in links
    second = (await client.get(links["next"].removeprefix(BASE))).json()
    assert _ids(second) == [REMOVAL_REASONS]
    links = {link["relation"]: link["url"] for link in second["link"]}
    third = (await client.get(links["next"].removeprefix(BASE))).json()
    assert _ids(third) == [CARE_TEAM_ROLES]
    assert "next" not in {link["relation"] for link in third["link"]}
    back = (await client.get(links["previous"].removeprefix(BASE))).json()
    assert _ids(back) == [FLAG_TYPES]


@pytest.mark.parametrize("query", [{"_summary": "count"}, {"_count": "0"}])
async def test_summary_count_gives_the_total_alone(
    client: httpx.AsyncClient, query: dict[str, str]
) -> None:
    bundle = (await client.get("/CodeSystem", params={"status": "active", **query})).json()
    assert bundle["total"] == 3
    assert bundle.get("entry", []) == []


async def test_summary_and_elements_subset_each_entry(client: httpx.AsyncClient) -> None:
    summary = (await client.get("/CodeSystem", params={"_summary": "true"})).json()
    resource = summary.get("entry", [])[0]["resource"]
    assert "concept" not in resource and "text" not in resource
    assert resource["url"] == FLAG_SYSTEM and resource["property"]
    assert resource["meta"]["tag"][0]["code"] == "SUBSETTED"
    chosen = (await client.get("/ValueSet", params={"_elements": "url"})).json()
    resource = chosen.get("entry", [])[0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "url", "status"}
    text = (await client.get("/CodeSystem", params={"_summary": "text"})).json()
    resource = text.get("entry", [])[0]["resource"]
    assert set(resource) == {"resourceType", "id", "meta", "text", "status", "content"}
    data = (await client.get("/CodeSystem", params={"_summary": "data"})).json()
    resource = data.get("entry", [])[0]["resource"]
    assert "text" not in resource and resource["concept"]
    whole = (await client.get("/ValueSet", params={"_summary": "false"})).json()
    assert "tag" not in whole.get("entry", [])[0]["resource"]["meta"]
    assert whole.get("entry", [])[0]["resource"]["expansion"]["total"] > 0


async def test_unknown_parameters_are_ignored_and_reported(client: httpx.AsyncClient) -> None:
    response = await client.get("/ValueSet", params={"url": FLAG_SET, "publisher": "x"})
    bundle = response.json()
    assert _ids(bundle) == [FLAG_TYPES]
    self_url = urlsplit(bundle["link"][0]["url"])
    assert parse_qsl(self_url.query) == [("url", FLAG_SET), ("_count", "20")]
    outcomes = [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome"]
    assert outcomes[0]["issue"][0]["expression"] == ["publisher"]
    strict = await client.get(
        "/ValueSet", params={"publisher": "x"}, headers={"prefer": "handling=strict"}
    )
    assert strict.status_code == 400
    assert outcome_expressions(strict) == ["publisher"]
    assert {i["severity"] for i in strict.json()["issue"]} == {"error"}


@pytest.mark.parametrize(
    ("query", "expression"),
    [
        ("url:below=http://x", "url:below"),
        ("status:not=active", "status:not"),
        ("url=", "url"),
        ("name=,", "name"),
        ("_count=many", "_count"),
        ("_summary=some", "_summary"),
        ("_cursor=abc", "_cursor"),
        ("_total=all", "_total"),
        ("_elements=a.b", "_elements"),
    ],
)
async def test_malformed_search_is_400_naming_the_parameter(
    client: httpx.AsyncClient, query: str, expression: str
) -> None:
    response = await client.get(f"/CodeSystem?{query}")
    assert response.status_code == 400, response.text
    assert outcome_expressions(response) == [expression]


# --- $validate-code by GET ---


@pytest.mark.parametrize(
    ("params", "display"),
    [
        ({"url": FLAG_SET, "system": FLAG_SYSTEM, "code": PLAN.code}, PLAN.display),
        ({"url": FLAG_SET, "system": SNOMED, "code": PLAN.snomed}, PLAN.snomed_display),
        (
            {
                "url": FLAG_SET,
                "system": FLAG_SYSTEM,
                "code": HOME_EDUCATION.code,
                "display": HOME_EDUCATION.display,
            },
            HOME_EDUCATION.display,
        ),
        ({"url": REASON_SET, "system": REASON_SYSTEM, "code": REASON.code}, REASON.display),
        (
            {"url": f"{REASON_SET}|0.1.0", "system": REASON_SYSTEM, "code": REASON.code},
            REASON.display,
        ),
        (
            {
                "url": REASON_SET,
                "valueSetVersion": "0.1.0",
                "system": REASON_SYSTEM,
                "code": REASON.code,
                "systemVersion": "0.1.0",
            },
            REASON.display,
        ),
    ],
)
async def test_member_codes_are_valid_with_our_display(
    client: httpx.AsyncClient, params: dict[str, str], display: str
) -> None:
    out = _out(await client.get(VALIDATE, params=params))
    assert out == {"result": True, "display": display}


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"url": FLAG_SET, "system": FLAG_SYSTEM, "code": "no-such-flag"}, "no-such-flag"),
        ({"url": FLAG_SET, "system": FLAG_SYSTEM, "code": PLAN.code.upper()}, "CHILD"),
        ({"url": FLAG_SET, "system": SNOMED, "code": "22298006"}, "22298006"),
        ({"url": FLAG_SET, "system": REASON_SYSTEM, "code": REASON.code}, REASON_SYSTEM),
        ({"url": FLAG_SET, "system": "https://snomed.info/sct", "code": PLAN.snomed}, "https"),
        ({"url": REASON_SET, "system": FLAG_SYSTEM, "code": PLAN.code}, FLAG_SYSTEM),
        ({"url": REASON_SET, "system": SNOMED, "code": PLAN.snomed}, SNOMED),
        (
            {
                "url": REASON_SET,
                "system": REASON_SYSTEM,
                "code": REASON.code,
                "systemVersion": "9.9",
            },
            "9.9",
        ),
    ],
)
async def test_codes_outside_the_value_set_are_invalid_with_a_message(
    client: httpx.AsyncClient, params: dict[str, str], said: str
) -> None:
    out = _out(await client.get(VALIDATE, params=params))
    assert out["result"] is False
    assert said in out["message"]
    assert "display" not in out


async def test_a_wrong_display_is_valid_with_a_warning(client: httpx.AsyncClient) -> None:
    params = {"url": FLAG_SET, "system": SNOMED, "code": PLAN.snomed, "display": "CP plan"}
    out = _out(await client.get(VALIDATE, params=params))
    assert out["result"] is True
    assert out["display"] == PLAN.snomed_display
    assert "'CP plan'" in out["message"] and repr(PLAN.snomed_display) in out["message"]


async def test_validate_on_an_instance_needs_no_url(client: httpx.AsyncClient) -> None:
    path = f"/ValueSet/{REMOVAL_REASONS}/$validate-code"
    out = _out(await client.get(path, params={"system": REASON_SYSTEM, "code": REASON.code}))
    assert out == {"result": True, "display": REASON.display}
    named = await client.get(
        path, params={"url": REASON_SET, "system": REASON_SYSTEM, "code": "plan"}
    )
    assert _out(named)["result"] is False


@pytest.mark.parametrize(
    ("path", "params", "result"),
    [
        ("/CodeSystem/$validate-code", {"url": FLAG_SYSTEM, "code": PLAN.code}, True),
        ("/CodeSystem/$validate-code", {"url": FLAG_SYSTEM, "code": "nope"}, False),
        ("/CodeSystem/$validate-code", {"url": REASON_SYSTEM, "code": REASON.code}, True),
        (f"/CodeSystem/{FLAG_TYPES}/$validate-code", {"code": PLAN.code}, True),
        (f"/CodeSystem/{FLAG_TYPES}/$validate-code", {"code": REASON.code}, False),
    ],
)
async def test_code_system_validate_code(
    client: httpx.AsyncClient, path: str, params: dict[str, str], result: bool
) -> None:
    out = _out(await client.get(path, params=params))
    assert out["result"] is result
    assert ("display" in out) is result and ("message" in out) is not result


async def test_validate_code_answers_in_json_only(client: httpx.AsyncClient) -> None:
    params = {"url": FLAG_SET, "system": FLAG_SYSTEM, "code": PLAN.code}
    xml = await client.get(VALIDATE, params=params, headers={"accept": "application/xml"})
    assert xml.status_code == 406
    pretty = await client.get(VALIDATE, params=params | {"_format": "json", "_pretty": "true"})
    assert pretty.status_code == 200 and b'\n  "resourceType"' in pretty.content


# --- $validate-code by POST ---


async def test_post_with_code_and_system(client: httpx.AsyncClient) -> None:
    body = _parameters(
        ("url", "valueUri", FLAG_SET),
        ("system", "valueUri", SNOMED),
        ("code", "valueCode", PLAN.snomed),
    )
    out = _out(await _post(client, VALIDATE, body))
    assert out == {"result": True, "display": PLAN.snomed_display}


async def test_post_with_a_coding_on_an_instance(client: httpx.AsyncClient) -> None:
    coding = {"system": FLAG_SYSTEM, "code": PLAN.code, "display": "Wrong"}
    body = _parameters(("coding", "valueCoding", coding))
    out = _out(await _post(client, f"/ValueSet/{FLAG_TYPES}/$validate-code", body))
    assert (out["result"], out["display"]) == (True, PLAN.display)
    assert "'Wrong'" in out["message"]
    display = ("display", "valueString", PLAN.display)
    overridden = _parameters(("coding", "valueCoding", coding), display)
    out = _out(await _post(client, f"/ValueSet/{FLAG_TYPES}/$validate-code", overridden))
    assert out == {"result": True, "display": PLAN.display}


async def test_post_with_a_codeable_concept_is_valid_if_any_coding_is(
    client: httpx.AsyncClient,
) -> None:
    unknown, member = (
        {"system": "http://example.org", "code": "x"},
        {"system": SNOMED, "code": PLAN.snomed},
    )
    url = ("url", "valueUri", FLAG_SET)
    concept = {"coding": [unknown, member], "text": "CP plan"}
    body = _parameters(url, ("codeableConcept", "valueCodeableConcept", concept))
    out = _out(await _post(client, VALIDATE, body))
    assert out == {"result": True, "display": PLAN.snomed_display}
    concept = {"coding": [unknown]}
    body = _parameters(url, ("codeableConcept", "valueCodeableConcept", concept))
    out = _out(await _post(client, VALIDATE, body))
    assert out["result"] is False
    assert "codeableConcept.coding[0]" in out["message"]


async def test_post_removal_reason_and_code_system(client: httpx.AsyncClient) -> None:
    body = _parameters(
        ("url", "valueUri", REASON_SET),
        ("coding", "valueCoding", {"system": REASON_SYSTEM, "code": REASON.code}),
    )
    assert _out(await _post(client, VALIDATE, body))["result"] is True
    body = _parameters(("coding", "valueCoding", {"system": REASON_SYSTEM, "code": "gone"}))
    out = _out(await _post(client, "/CodeSystem/$validate-code", body))
    assert out["result"] is False and "'gone'" in out["message"]


# --- hostile input: every 4xx names the parameter ---

GOOD = [("url", "valueUri", FLAG_SET), ("system", "valueUri", FLAG_SYSTEM)]
HOSTILE_GET = [
    ({"system": FLAG_SYSTEM, "code": PLAN.code}, 400, "url"),
    ({"url": FLAG_SET, "code": PLAN.code}, 400, "system"),
    ({"url": FLAG_SET, "system": FLAG_SYSTEM}, 400, "code"),
    ({"url": FLAG_SET, "system": FLAG_SYSTEM, "code": ""}, 400, "code"),
    ({"url": "http://example.org/ValueSet/x", "system": FLAG_SYSTEM, "code": "a"}, 404, "url"),
    ({"url": FLAG_SYSTEM, "system": FLAG_SYSTEM, "code": "a"}, 404, "url"),
    ({"url": f"{FLAG_SET}|2.0", "system": FLAG_SYSTEM, "code": "a"}, 404, "url"),
    (
        {"url": FLAG_SET, "valueSetVersion": "2.0", "system": FLAG_SYSTEM, "code": "a"},
        404,
        "valueSetVersion",
    ),
    ({"url": FLAG_SET, "system": FLAG_SYSTEM, "code": "a", "colour": "red"}, 400, "colour"),
    ({"url": FLAG_SET, "coding": f"{FLAG_SYSTEM}|a"}, 400, "coding"),
    ({"url": FLAG_SET, "system": FLAG_SYSTEM, "code": "a", "context": "Flag.code"}, 400, "context"),
    ({"url": FLAG_SET, "system": FLAG_SYSTEM, "code": "a", "abstract": "maybe"}, 400, "abstract"),
    ({"url": FLAG_SET, "system": FLAG_SYSTEM, "code": "a", "version": "1"}, 400, "version"),
]


@pytest.mark.parametrize(("params", "status", "expression"), HOSTILE_GET)
async def test_hostile_get_is_4xx_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, str], status: int, expression: str
) -> None:
    response = await client.get(VALIDATE, params=params)
    assert response.status_code == status, response.text
    assert expression in outcome_expressions(response)


async def test_a_repeated_parameter_is_400(client: httpx.AsyncClient) -> None:
    query = f"url={FLAG_SET}&system={FLAG_SYSTEM}&code=a&code=b"
    response = await client.get(f"{VALIDATE}?{query}")
    assert response.status_code == 400
    assert outcome_expressions(response) == ["code"]


async def test_validate_on_an_unknown_or_mismatched_instance(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/ValueSet/nope/$validate-code", params={"system": "s", "code": "c"})
    assert unknown.status_code == 404
    params = {"url": FLAG_SET, "system": REASON_SYSTEM, "code": REASON.code}
    mismatched = await client.get(f"/ValueSet/{REMOVAL_REASONS}/$validate-code", params=params)
    assert mismatched.status_code == 400
    assert outcome_expressions(mismatched) == ["url"]


# A table, one hostile body per case: formatted, several would take ten lines or more.
# fmt: off
HOSTILE_POST: list[tuple[Any, int, str]] = [
    ({"resourceType": "Patient"}, 400, "resourceType"),
    ([{"name": "code"}], 400, "resourceType"),
    ("code", 400, "resourceType"),
    ({"resourceType": "Parameters", "parameter": {"name": "code"}}, 400, "Parameters.parameter"),
    ({"resourceType": "Parameters", "parameter": ["code"]}, 400, "Parameters.parameter[0].name"),
    ({"resourceType": "Parameters", "parameter": [{"valueCode": "a"}]}, 400,
     "Parameters.parameter[0].name"),
    (_parameters(*GOOD, ("code", "valueInteger", 3)), 400, "code"),
    (_parameters(*GOOD, ("code", "valueCode", 3)), 400, "code"),
    (_parameters(*GOOD, ("code", "valueCode", " ")), 400, "code"),
    (_parameters(*GOOD, ("code", "resource", {"resourceType": "Patient"})), 400, "code"),
    (_parameters(*GOOD[:1], ("code", "valueCode", "a")), 400, "system"),
    (_parameters(*GOOD), 400, "code"),
    (_parameters(*GOOD, ("code", "valueCode", "a"), ("code", "valueCode", "b")), 400, "code"),
    (_parameters(*GOOD, ("code", "valueCode", "a"), ("bogus", "valueString", "x")), 400, "bogus"),
    (_parameters(GOOD[0], ("coding", "valueCoding", "a|b")), 400, "coding"),
    (_parameters(GOOD[0], ("coding", "valueString", "a|b")), 400, "coding"),
    (_parameters(GOOD[0], ("coding", "valueCoding", {"code": "a"})), 400, "coding.system"),
    (_parameters(GOOD[0], ("coding", "valueCoding", {"system": FLAG_SYSTEM})), 400, "coding.code"),
    (_parameters(GOOD[0], ("coding", "valueCoding", {"system": FLAG_SYSTEM, "code": ["a"]})), 400,
     "coding.code"),
    (_parameters(*GOOD, ("coding", "valueCoding", {"system": FLAG_SYSTEM, "code": "a"})), 400,
     "system"),
    (_parameters(GOOD[0], ("code", "valueCode", "a"),
                 ("coding", "valueCoding", {"system": FLAG_SYSTEM, "code": "a"})), 400, "coding"),
    (_parameters(GOOD[0], ("codeableConcept", "valueCodeableConcept", {"text": "x"})), 400,
     "codeableConcept.coding"),
    (_parameters(GOOD[0], ("codeableConcept", "valueCodeableConcept",
                           {"coding": [{"system": SNOMED, "code": "1"}, {"code": "2"}]})), 400,
     "codeableConcept.coding[1].system"),
    (_parameters(GOOD[0], ("display", "valueString", "x"), ("codeableConcept",
     "valueCodeableConcept", {"coding": [{"system": SNOMED, "code": "1"}]})), 400, "display"),
    (_parameters(("url", "valueUri", "urn:nope"), ("coding", "valueCoding",
                 {"system": SNOMED, "code": "1"})), 404, "url"),
    (_parameters(GOOD[0], ("abstract", "valueBoolean", "yes"), ("coding", "valueCoding",
                 {"system": SNOMED, "code": "1"})), 400, "abstract"),
    (_parameters(GOOD[0], ("valueSet", "resource", {"resourceType": "ValueSet"})), 400,
     "valueSet"),
]
# fmt: on


@pytest.mark.parametrize(("body", "status", "expression"), HOSTILE_POST)
async def test_hostile_post_is_4xx_naming_the_parameter(
    client: httpx.AsyncClient, body: Any, status: int, expression: str
) -> None:
    response = await _post(client, VALIDATE, body)
    assert response.status_code == status, response.text
    assert expression in outcome_expressions(response)


@pytest.mark.parametrize(
    ("content", "content_type", "query", "status", "expression"),
    [
        (b"", FHIR_JSON, "", 400, "Parameters"),
        (b"{not json", FHIR_JSON, "", 400, "Parameters"),
        (b"<Parameters/>", "application/fhir+xml", "", 415, "Content-Type"),
        (b"x" * (64 * 1024 + 1), FHIR_JSON, "", 413, "Parameters"),
        (json.dumps(_parameters(*GOOD)).encode(), FHIR_JSON, "?code=a", 400, "code"),
    ],
)
async def test_hostile_post_bodies_are_4xx_naming_the_body(
    client: httpx.AsyncClient,
    content: bytes,
    content_type: str,
    query: str,
    status: int,
    expression: str,
) -> None:
    response = await client.post(
        f"{VALIDATE}{query}", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == status, response.text
    assert outcome_expressions(response) == [expression]


async def test_code_system_validate_code_needs_a_url(client: httpx.AsyncClient) -> None:
    response = await client.get("/CodeSystem/$validate-code", params={"code": PLAN.code})
    assert response.status_code == 400
    assert outcome_expressions(response) == ["url"]
    with_system = await client.get(
        "/CodeSystem/$validate-code", params={"url": FLAG_SYSTEM, "code": "a", "system": SNOMED}
    )
    assert with_system.status_code == 400
    assert outcome_expressions(with_system) == ["system"]


# --- read-only ---


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/CodeSystem", "GET, HEAD"),
        ("PUT", "/CodeSystem", "GET, HEAD"),
        ("DELETE", "/ValueSet", "GET, HEAD"),
        ("PUT", f"/CodeSystem/{FLAG_TYPES}", "GET, HEAD"),
        ("PATCH", f"/ValueSet/{FLAG_TYPES}", "GET, HEAD"),
        ("DELETE", f"/ValueSet/{FLAG_TYPES}", "GET, HEAD"),
        ("POST", f"/ValueSet/{FLAG_TYPES}", "GET, HEAD"),
        ("PUT", "/ValueSet/unknown", "GET, HEAD"),
        ("PUT", VALIDATE, "GET, HEAD, POST"),
        ("DELETE", f"/CodeSystem/{FLAG_TYPES}/$validate-code", "GET, HEAD, POST"),
    ],
)
async def test_writes_are_405_outcome(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    kind = path.split("/")[1]
    body = _resource(kind, FLAG_TYPES)
    content = None if method == "DELETE" else json.dumps(body).encode()
    response = await client.request(
        method, path, content=content, headers={"content-type": FHIR_JSON}
    )
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    assert response.json()["issue"][0]["code"] == "not-supported"
    read = (await client.get(f"/{kind}/{FLAG_TYPES}")).json()
    assert read["url"] == body["url"] and read["meta"]["versionId"] == "1"


async def test_the_operation_path_takes_get_and_post_only(client: httpx.AsyncClient) -> None:
    response = await client.put(VALIDATE, content=b"{}", headers={"content-type": FHIR_JSON})
    assert response.status_code == 405
    assert "$validate-code takes GET or POST" in response.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("kind", ["transaction", "batch"])
async def test_bundle_entries_cannot_write_the_vocabulary(
    client: httpx.AsyncClient, kind: str
) -> None:
    entry = {
        "request": {"method": "PUT", "url": f"CodeSystem/{FLAG_TYPES}"},
        "resource": _resource("CodeSystem", FLAG_TYPES),
    }
    bundle = {"resourceType": "Bundle", "type": kind, "entry": [entry]}
    response = await client.post(BASE, json=bundle, headers={"content-type": FHIR_JSON})
    assert response.status_code < 500, response.text
    if kind == "transaction":
        assert 400 <= response.status_code < 500
        assert outcome_expressions(response) == ["Bundle.entry[0].request.url"]
    else:
        assert response.json().get("entry", [])[0]["response"]["status"].startswith("4")
    read = (await client.get(f"/CodeSystem/{FLAG_TYPES}")).json()
    assert read["meta"]["versionId"] == "1"


async def test_head_reads_are_allowed(client: httpx.AsyncClient) -> None:
    response = await client.head(f"/CodeSystem/{FLAG_TYPES}")
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"1"'


# --- the CapabilityStatement and the canonical base ---


async def test_capability_statement_lists_the_vocabulary(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/metadata")).json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    for kind in ("CodeSystem", "ValueSet"):
        declared = resources[kind]
        assert [i["code"] for i in declared["interaction"]] == ["read", "search-type"]
        params = {p["name"]: p["definition"] for p in declared["searchParam"]}
        assert {"url", "name", "status"} <= set(params)
        assert all(definition.startswith(HL7_SEARCH) for definition in params.values())
        assert declared["operation"] == [
            {
                "name": "validate-code",
                "definition": f"http://hl7.org/fhir/OperationDefinition/{kind}-validate-code",
            }
        ]
        for name in params:  # every declared parameter is one the search applies
            response = await client.get(f"/{kind}", params={name: "x"})
            assert response.status_code == 200
            assert not [
                e for e in response.json().get("entry", []) if e["search"]["mode"] == "outcome"
            ]


@pytest.fixture
async def elsewhere(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app whose vocabulary is published under another canonical base."""
    async with client_under(database_url, f"{OTHER_BASE}/") as http:
        yield http


async def test_canonical_base_url_setting_names_the_vocabulary(
    elsewhere: httpx.AsyncClient,
) -> None:
    value_set, system = (
        f"{OTHER_BASE}/ValueSet/{FLAG_TYPES}",
        f"{OTHER_BASE}/CodeSystem/{FLAG_TYPES}",
    )
    read = (await elsewhere.get(f"/ValueSet/{FLAG_TYPES}")).json()
    assert read["url"] == value_set
    assert read["compose"]["include"][0] == {"system": system}
    found = (await elsewhere.get("/ValueSet", params={"url": value_set})).json()
    assert _ids(found) == [FLAG_TYPES]
    assert found.get("entry", [])[0]["fullUrl"] == f"{BASE}/ValueSet/{FLAG_TYPES}"
    params = {"url": value_set, "system": system, "code": PLAN.code}
    assert _out(await elsewhere.get(VALIDATE, params=params))["result"] is True
    old = await elsewhere.get(VALIDATE, params={**params, "url": FLAG_SET})
    assert old.status_code == 404
    assert outcome_expressions(old) == ["url"]


async def test_the_care_team_roles_hold_the_lead_professional_with_no_snomed_equivalent(
    client: httpx.AsyncClient,
) -> None:
    found = (await client.get(f"/CodeSystem/{CARE_TEAM_ROLES}")).json()

    assert found["url"] == VOCABULARY.care_team_role_system
    assert [(c["code"], c["display"]) for c in found["concept"]] == [
        ("lead-professional", "Lead professional")
    ]
    declared = [p["code"] for p in found.get("property", [])]
    assert declared == ["source"]  # no SNOMED CT equivalent is confirmed, so none is declared
