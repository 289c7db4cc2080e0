"""The CapabilityStatement describes what the routes do (http://hl7.org/fhir/R4/http.html#capabilities)."""

from typing import Any

import httpx
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from app.registry import COMMON_PARAMS, RESOURCE_TYPES
from tests.conftest import BASE

HL7 = "http://hl7.org/fhir/SearchParameter/"


async def _resources(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    statement = (await client.get("/metadata")).json()
    return {r["type"]: r for r in statement["rest"][0]["resource"]}


async def test_metadata_lists_every_type_with_interactions_and_search_params(
    client: httpx.AsyncClient,
) -> None:
    statement = (await client.get("/metadata")).json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["format"] == ["json"]
    rest = statement["rest"][0]
    resources = {r["type"]: r for r in rest["resource"]}
    assert set(resources) == set(RESOURCE_TYPES) | {
        "SearchParameter",
        "CodeSystem",
        "ValueSet",
        "OperationDefinition",
        "AuditEvent",
    }
    for name, rtype in RESOURCE_TYPES.items():
        declared = resources[name]
        assert {i["code"] for i in declared["interaction"]} >= {
            "read",
            "vread",
            "update",
            "patch",
            "delete",
            "create",
            "search-type",
            "history-instance",
            "history-type",
        }
        assert declared["versioning"] == "versioned-update"
        assert declared["conditionalCreate"] is True
        assert declared["conditionalUpdate"] is True
        assert declared["conditionalDelete"] == "single"
        assert declared["updateCreate"] is True
        params = {p["name"] for p in declared["searchParam"]}
        assert params == set(rtype.params) | set(COMMON_PARAMS)
        for param in declared.get("searchParam", []):  # none on a read-only type
            assert param["documentation"], (name, param["name"])
    assert {"code": "history-system"} in rest["interaction"]
    assert {"code": "transaction"} in rest["interaction"]
    assert {"code": "batch"} in rest["interaction"]


async def test_metadata_is_a_valid_capability_statement(client: httpx.AsyncClient) -> None:
    CapabilityStatement.model_validate((await client.get("/metadata")).json())


async def test_standard_parameters_are_defined_by_hl7(client: httpx.AsyncClient) -> None:
    for name, declared in (await _resources(client)).items():
        custom = (
            {p.name for p in RESOURCE_TYPES[name].params.values() if p.custom}
            if (name in RESOURCE_TYPES)
            else set()
        )
        for param in declared.get("searchParam", []):  # none on a read-only type
            if param["name"] not in custom:
                assert param["definition"].startswith(HL7), (name, param)


async def test_custom_parameters_are_defined_by_readable_search_parameters(
    client: httpx.AsyncClient,
) -> None:
    flag = (await _resources(client))["Flag"]
    custom = {p.name for p in RESOURCE_TYPES["Flag"].params.values() if p.custom}
    assert custom == {"status", "category", "code"}
    for param in flag["searchParam"]:
        if param["name"] not in custom:
            continue
        definition = param["definition"]
        assert definition == f"{BASE}/SearchParameter/Flag-{param['name']}"
        response = await client.get(definition.removeprefix(BASE))
        assert response.status_code == 200, response.text
        published = response.json()
        assert published["url"] == definition
        assert (published["code"], published["type"]) == (param["name"], param["type"])
        assert published["base"] == ["Flag"]


async def test_search_parameters_are_read_and_search_only(client: httpx.AsyncClient) -> None:
    declared = (await _resources(client))["SearchParameter"]
    assert [i["code"] for i in declared["interaction"]] == ["read", "search-type"]
    assert declared["documentation"]
    assert declared["conditionalCreate"] is False
    assert declared["conditionalUpdate"] is False
    assert declared["conditionalDelete"] == "not-supported"
    assert declared["updateCreate"] is False
    params = {p["name"]: p["definition"] for p in declared["searchParam"]}
    assert params == {
        "_id": f"{HL7}Resource-id",
        "base": f"{HL7}SearchParameter-base",
        "code": f"{HL7}SearchParameter-code",
        "url": f"{HL7}conformance-url",
    }


async def test_includes_declared_are_the_ones_search_accepts(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/metadata")).json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert "Flag:patient" in resources["Flag"]["searchInclude"]
    assert "Flag:patient" in resources["Patient"]["searchRevInclude"]
    assert "RelatedPerson:patient" in resources["Patient"]["searchRevInclude"]
    for name in RESOURCE_TYPES:
        for value in resources[name]["searchInclude"]:
            response = await client.get(f"/{name}", params={"_include": value})
            assert response.status_code == 200, (name, value, response.text)
        for value in resources[name]["searchRevInclude"]:
            response = await client.get(f"/{name}", params={"_revinclude": value})
            assert response.status_code == 200, (name, value, response.text)


async def test_patient_names_the_safeguarding_summary_operation(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/metadata")).json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    [operation, export] = resources["Patient"]["operation"]
    assert export == {
        "name": "export",
        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
    }
    assert operation["name"] == "safeguarding-summary"
    assert operation["definition"].endswith("/OperationDefinition/Patient-safeguarding-summary")
    summary = await client.get(f"/Patient/${operation['name']}", params={"identifier": "x|y"})
    assert summary.status_code == 404  # the operation is routed: no such child
    assert "operation" not in resources["Flag"]


async def test_the_system_export_operation_is_declared_and_routed(
    client: httpx.AsyncClient,
) -> None:
    statement = (await client.get("/metadata")).json()
    assert (
        "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
        in (statement["instantiates"])
    )
    [export] = statement["rest"][0]["operation"]
    assert export["name"] == "export"
    assert export["definition"].endswith("/OperationDefinition/export")
    kick_off = await client.get(f"/${export['name']}", headers={"Prefer": "respond-async"})
    assert kick_off.status_code == 202


async def test_audit_events_are_read_and_searched_only_by_the_r4_parameters(
    client: httpx.AsyncClient,
) -> None:
    declared = (await _resources(client))["AuditEvent"]
    assert [i["code"] for i in declared["interaction"]] == ["read", "search-type"]
    assert "auditor" in declared["documentation"]
    assert declared["readHistory"] is False
    assert declared["updateCreate"] is False
    assert declared["conditionalCreate"] is False
    assert declared["conditionalUpdate"] is False
    assert declared["conditionalDelete"] == "not-supported"
    params = {p["name"]: (p["type"], p["definition"]) for p in declared["searchParam"]}
    kinds = {"patient": "reference", "agent": "reference", "entity": "reference", "date": "date"}
    kinds |= {"action": "token", "outcome": "token", "subtype": "token"}
    assert params == {name: (kind, f"{HL7}AuditEvent-{name}") for name, kind in kinds.items()}
    for param in declared["searchParam"]:
        assert param["documentation"], param


BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport"


async def test_subscription_topics_are_named_by_canonical_url_with_the_backport_extension(
    client: httpx.AsyncClient,
) -> None:
    statement = (await client.get("/metadata")).json()
    assert (
        f"{BACKPORT}/CapabilityStatement/backport-subscription-server-r4"
        in (statement["instantiates"])
    )
    declared = (await _resources(client))["Subscription"]
    canonical = f"{BACKPORT}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"
    topics = [e["valueCanonical"] for e in declared["extension"] if e["url"] == canonical]
    assert topics == [
        f"http://test/fhir/SubscriptionTopic/{code}"
        for code in ("flag-recorded-elsewhere", "child-seen-elsewhere", "responsibility-changed")
    ]
    assert declared["supportedProfile"] == [f"{BACKPORT}/StructureDefinition/backport-subscription"]
    operations = {o["name"]: o["definition"] for o in declared["operation"]}
    assert operations == {
        name: f"{BACKPORT}/OperationDefinition/backport-subscription-{name}"
        for name in ("status", "events")
    }
