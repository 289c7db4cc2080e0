"""Pure write rules: NHS number check digits, required bindings, references, normalisation."""

from typing import Any

import pytest

from app.flags.codes import SNOMED
from app.nhs import nhs_number_is_valid
from app.records import rules
from tests import factories as f


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("9000000009", True),
        ("9449306753", True),
        ("9000000000", False),
        ("900000000", False),
        ("90000000091", False),
        ("900000000X", False),
        ("1000000010", False),  # check digit computes to 10: never issued
    ],
)
def test_nhs_number_modulus_11(number: str, valid: bool) -> None:
    assert nhs_number_is_valid(number) is valid


def test_factory_nhs_numbers_are_valid_and_in_the_test_range() -> None:
    numbers = [f.nhs_number(n) for n in range(200)]
    assert all(nhs_number_is_valid(n) and n.startswith("999") for n in numbers)


@pytest.mark.parametrize(
    ("resource", "expressions"),
    [
        (f.patient(), []),
        (f.patient() | {"gender": "bogus"}, ["Patient.gender"]),
        (f.patient() | {"name": [{"use": "x"}]}, ["Patient.name[0].use"]),
        (f.patient() | {"telecom": [{"system": "pigeon"}]}, ["Patient.telecom[0].system"]),
        (f.flag(subject="Patient/1") | {"status": "bogus"}, ["Flag.status"]),
        ({k: v for k, v in f.flag(subject="Patient/1").items() if k != "status"}, ["Flag.status"]),
        (f.related_person(patient="Patient/1") | {"gender": "x"}, ["RelatedPerson.gender"]),
        (f.condition(subject="Patient/1"), []),
        (
            f.condition(subject="Patient/1")
            | {"clinicalStatus": {"coding": [{"system": rules.CLINICAL_STATUS[0], "code": "x"}]}},
            ["Condition.clinicalStatus"],
        ),
        (
            f.condition(subject="Patient/1") | {"clinicalStatus": {"text": "active"}},
            ["Condition.clinicalStatus"],
        ),
        (
            f.condition(subject="Patient/1")
            | {
                "verificationStatus": {
                    "coding": [{"system": rules.VERIFICATION_STATUS[0], "code": "entered-in-error"}]
                }
            },
            ["Condition.clinicalStatus"],
        ),
    ],
)
def test_binding_issues_name_the_element(resource: dict[str, Any], expressions: list[str]) -> None:
    found = rules.binding_issues(resource["resourceType"], resource)
    assert [e for issue in found for e in issue.expression] == expressions


def test_references_are_found_with_their_expression_outside_contained() -> None:
    resource = f.flag(subject="Patient/1", author="Organization/2") | {
        "contained": [{"resourceType": "Patient", "managingOrganization": {"reference": "X/9"}}],
        "extension": [{"url": "u", "valueReference": {"reference": "Patient/3"}}],
    }
    assert sorted(rules.survey(resource)[1]) == [
        ("Flag.author", "Organization/2"),
        ("Flag.extension[0].valueReference", "Patient/3"),
        ("Flag.subject", "Patient/1"),
    ]


def test_snomed_https_system_is_normalised_to_http() -> None:
    resource = f.flag(subject="Patient/1")
    resource["code"]["coding"][0]["system"] = "https://snomed.info/sct"
    assert rules.survey(resource)[0]["code"]["coding"][0]["system"] == SNOMED
