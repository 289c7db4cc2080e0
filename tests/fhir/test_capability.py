"""The CapabilityStatement describes what the routes do (http://hl7.org/fhir/R4/http.html#capabilities)."""

import httpx

from app.registry import COMMON_PARAMS, RESOURCE_TYPES


async def test_metadata_lists_every_type_with_interactions_and_search_params(
    client: httpx.AsyncClient,
) -> None:
    statement = (await client.get("/metadata")).json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["format"] == ["json"]
    rest = statement["rest"][0]
    resources = {r["type"]: r for r in rest["resource"]}
    assert set(resources) == set(RESOURCE_TYPES)
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
    assert {"code": "history-system"} in rest["interaction"]
