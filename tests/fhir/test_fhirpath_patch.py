"""FHIRPath Patch (a Parameters body) beside JSON Patch, on every write path that patches.

Spec: http://hl7.org/fhir/R4/fhirpatch.html, http://hl7.org/fhir/R4/http.html#patch
"""

from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.http import FHIR_JSON, create, outcome_expressions, post_bundle, reference

TELECOM = [{"system": "phone", "value": "01632 960001"}, {"system": "email", "value": "a@b.c"}]


def operation(kind: str, path: str, **parts: Any) -> dict[str, Any]:
    """One `operation` parameter; a part's key is its name plus its value[x] (e.g. valueCode)."""
    given = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    for key, value in parts.items():
        name, _, typed = key.partition("__")
        given.append({"name": name, typed: value} if typed else {"name": name, **value})
    return {"name": "operation", "part": given}


def parameters(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(operations)}


async def patched(client: httpx.AsyncClient, url: str, *operations: dict[str, Any]) -> Any:
    response = await client.patch(
        url, json=parameters(*operations), headers={"content-type": FHIR_JSON}
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def child(client: httpx.AsyncClient) -> str:
    stored = await create(client, f.patient(nhs="9434765919") | {"telecom": TELECOM})
    return f"/{reference(stored)}"


async def test_replace_add_insert_move_and_delete(client: httpx.AsyncClient, child: str) -> None:
    identifier = {"system": "https://example.org/case", "value": "CS-1"}
    body = await patched(
        client,
        child,
        operation("replace", "Patient.gender", value__valueCode="male"),
        operation(
            "add", "Patient", name__valueString="identifier", value__valueIdentifier=identifier
        ),
        operation(
            "insert",
            "Patient.name",
            index__valueInteger=0,
            value__valueHumanName={"family": "Older"},
        ),
        operation("move", "Patient.name", source__valueInteger=0, destination__valueInteger=1),
        operation("delete", "Patient.telecom.where(system='phone')"),
        operation("add", "Patient.name[0]", name__valueString="given", value__valueString="Beth"),
    )
    assert body["gender"] == "male" and body["identifier"][-1] == identifier
    assert [n.get("family") for n in body["name"]] == ["Smith", "Older"]
    assert body["name"][0]["given"] == ["Amy", "Beth"]
    assert body["telecom"] == [TELECOM[1]]
    assert body["meta"]["versionId"] == "2"


async def test_choice_elements_and_values_given_in_parts(
    client: httpx.AsyncClient, child: str
) -> None:
    contact = {
        "value": {
            "part": [
                {"name": "gender", "valueCode": "female"},
                {"name": "name", "valueHumanName": {"family": "Gran"}},
            ]
        }
    }
    body = await patched(
        client,
        child,
        operation("add", "Patient", name__valueString="deceased", value__valueBoolean=False),
        operation("replace", "Patient.deceased", value__valueDateTime="2026-01-02"),
        operation("add", "Patient", name__valueString="contact", **contact),
        operation("delete", "Patient.photo"),  # nothing there: not an error
    )
    assert "deceasedBoolean" not in body and body["deceasedDateTime"] == "2026-01-02"
    assert body["contact"] == [{"gender": "female", "name": {"family": "Gran"}}]


@pytest.mark.parametrize(
    ("op", "status", "where"),
    [
        (
            operation("replace", "Patient.name.exists()", value__valueString="x"),
            400,
            "Parameters.parameter[0]",
        ),
        (
            operation("replace", "Patient.telecom", value__valueString="x"),
            422,
            "Parameters.parameter[0]",
        ),
        (
            operation("add", "Patient", name__valueString="gender", value__valueCode="male"),
            422,
            "Parameters.parameter[0]",
        ),
        (
            operation("add", "Patient", name__valueString="colour", value__valueCode="red"),
            422,
            "Parameters.parameter[0]",
        ),
        (
            operation("insert", "Patient.name", index__valueInteger=5, value__valueHumanName={}),
            422,
            "Parameters.parameter[0]",
        ),
        (operation("rename", "Patient.name"), 400, "Parameters.parameter[0]"),
        (
            operation("replace", "Patient.gender", value__valueCode="sometimes"),
            422,
            "Patient.gender",
        ),
        ({"name": "operation", "part": [{"name": "type"}]}, 400, "Parameters.parameter[0].part[0]"),
    ],
)
async def test_a_refused_operation_is_named_and_nothing_is_written(
    client: httpx.AsyncClient, child: str, op: dict[str, Any], status: int, where: str
) -> None:
    refused = await client.patch(child, json=parameters(op), headers={"content-type": FHIR_JSON})
    assert refused.status_code == status, refused.text
    assert outcome_expressions(refused)[0].startswith(where)
    assert "01632" not in refused.text and "Smith" not in refused.text
    assert (await client.get(child)).json()["meta"]["versionId"] == "1"


async def test_a_body_that_is_not_parameters_is_400(client: httpx.AsyncClient, child: str) -> None:
    json_patch_as_json = [{"op": "replace", "path": "/gender", "value": "male"}]
    refused = await client.patch(child, json=json_patch_as_json)
    assert refused.status_code == 400 and outcome_expressions(refused) == ["Parameters"]
    xml = await client.patch(
        child, content=b"<Parameters/>", headers={"content-type": "application/fhir+xml"}
    )
    assert xml.status_code == 415


async def test_safeguarding_rules_hold_for_a_fhirpath_patch(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient())
    council = await create(client, f.organization(ods="E1000", name="County Council"))
    plan = await create(
        client, f.safeguarding_flag(subject=reference(child), author=reference(council))
    )
    recode = operation(
        "replace", "Flag.code.coding[0].code", value__valueCode="elective-home-education"
    )
    refused = await client.patch(f"/{reference(plan)}", json=parameters(recode))
    assert refused.status_code == 422, refused.text


async def test_a_transaction_entry_carries_a_fhirpath_patch(
    client: httpx.AsyncClient, child: str
) -> None:
    entry = f.entry(
        method="PATCH",
        url=child.lstrip("/"),
        resource=parameters(operation("replace", "Patient.gender", value__valueCode="other")),
    )
    answered = await post_bundle(client, f.bundle(entries=[entry]))
    assert answered.status_code == 200, answered.text
    assert (await client.get(child)).json()["gender"] == "other"
