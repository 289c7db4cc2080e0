"""The structural fast path never vouches for what the fhir.resources model refuses: checked on
valid resources of every hosted type and on thousands of seeded random mutations of them."""

import copy
import random
from typing import Any

import pydantic
import pytest

from app.fhir.resources import MODELS
from app.fhir.shapes import surely_valid
from tests import factories

EXTENSION = "https://example.org/StructureDefinition/note"


def _rich_patient() -> dict[str, Any]:
    patient = factories.patient(nhs=factories.nhs_number(7))
    return patient | {
        "meta": {"tag": [{"system": "https://example.org/tags", "code": "t"}]},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        "extension": [
            {"url": EXTENSION, "valueString": "note"},
            {"url": EXTENSION, "valueBoolean": True},
            {"url": EXTENSION, "valueReference": {"reference": "Organization/o1"}},
            {"url": EXTENSION, "valueCodeableConcept": {"text": "c"}},
            {"url": EXTENSION, "valueInteger": -3},
            {"url": EXTENSION, "valueDecimal": 1.25},
            {"url": EXTENSION, "valueDateTime": "2024-02-29T23:59:59.5+14:00"},
        ],
        "active": True,
        "telecom": [{"system": "phone", "value": "0113 496 0000", "use": "home"}],
        "address": [{"line": ["1 High St"], "city": "Leeds", "postalCode": "LS1 1AA"}],
        "deceasedBoolean": False,
        "multipleBirthInteger": 2,
        "contact": [{"relationship": [{"text": "aunt"}], "name": {"family": "Jones"}}],
        "generalPractitioner": [{"reference": "Organization/o1", "display": "Surgery"}],
        "managingOrganization": {"reference": "Organization/o1"},
        "communication": [{"language": {"text": "English"}, "preferred": True}],
    }


def _corpus() -> list[dict[str, Any]]:
    """Valid resources of every hosted type, plain and with many elements."""
    return [
        factories.patient(),
        _rich_patient(),
        factories.organization(),
        factories.flag(subject="Patient/p1", author="Organization/o1", identifier="f-1"),
        factories.safeguarding_flag(
            subject="Patient/p1",
            author="Organization/o1",
            end="9999-12-31",
            removal=("https://example.org/removal", "https://example.org/reasons|closed"),
        ),
        factories.condition(subject="Patient/p1")
        | {"onsetDateTime": "2020-05", "abatementString": "resolved", "recordedDate": "2021"},
        factories.related_person(patient="Patient/p1", nhs=factories.nhs_number(9))
        | {"period": {"start": "2020-01-01T00:00:00Z"}, "gender": "male", "active": False},
    ]


def _model_accepts(resource: dict[str, Any]) -> bool:
    try:
        MODELS[resource["resourceType"]].model_validate(copy.deepcopy(resource))
    except (pydantic.ValidationError, ValueError, TypeError, KeyError, AttributeError):
        return False
    return True


def _fast(resource: Any, resource_type: str) -> bool:
    return surely_valid(MODELS[resource_type], resource_type, resource)


@pytest.mark.parametrize("resource", _corpus(), ids=lambda r: r["resourceType"])
def test_valid_resources_take_the_fast_path(resource: dict[str, Any]) -> None:
    assert _model_accepts(resource)
    assert _fast(resource, resource["resourceType"])


ODD_VALUES: list[Any] = [
    None, "", " ", "\t", "\u2003", "\x0b", "x", "a  b", " lead", "trail ", "caf\u00e9", "a\nb",
    "2024-02-30", "2024-13", "2023-02-29", "2015-03-01T10:00:00", "2015-03-01T10:00:00Z",
    "2015-03-01T24:00:00Z", "9999-12-31", "0000", "2015-03-01T10:00:00.1234567+14:00",
    0, -1, 1.5, 1e300, 2**31, -(2**31) - 1, True, False, [], {}, [None], ["x"], [{}], [[]],
    {"x": 1}, {"text": "t"}, {"reference": "Patient/p1"}, "urn:oid:1.2", "1e5", "active",
    "female", "http://example.org/a b", "A" * 65, "Patient/p1",
]  # fmt: skip
ODD_NAMES = [
    "bogus", "_status", "_birthDate", "resourceType", "fhir_comments", "contained",
    "valueString", "valueBoolean", "onsetString", "deceasedDateTime", "class", "id",
]  # fmt: skip


def _containers(node: Any, found: list[Any]) -> list[Any]:
    """Every dict and list inside `node`, `node` included."""
    if isinstance(node, dict | list):
        found.append(node)
        for child in node.values() if isinstance(node, dict) else node:
            _containers(child, found)
    return found


def _mutate(resource: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """`resource` with one to three random changes somewhere inside it."""
    mutated = copy.deepcopy(resource)
    for _ in range(rng.randint(1, 3)):
        target = rng.choice(_containers(mutated, []))
        if isinstance(target, list):
            if target and rng.random() < 0.5:
                target[rng.randrange(len(target))] = rng.choice(ODD_VALUES)
            else:
                target.append(copy.deepcopy(rng.choice(ODD_VALUES)))
            continue
        keys = list(target)
        action = rng.random()
        if keys and action < 0.25:
            del target[rng.choice(keys)]
        elif keys and action < 0.7:
            target[rng.choice(keys)] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif keys and action < 0.8:
            key = rng.choice(keys)
            target[key] = [target[key]] if not isinstance(target[key], list) else target[key][:1]
        else:
            target[rng.choice(ODD_NAMES)] = copy.deepcopy(rng.choice(ODD_VALUES))
    return mutated


def test_no_mutation_the_model_refuses_takes_the_fast_path() -> None:
    rng = random.Random(20261205)
    vouched = refused = 0
    for resource in _corpus():
        for _ in range(800):
            mutated = _mutate(resource, rng)
            if _fast(mutated, resource["resourceType"]):
                vouched += 1
                assert _model_accepts(mutated), mutated
            elif not _model_accepts(mutated):
                refused += 1
    assert vouched > 500 and refused > 2000  # both sides of the line were exercised


@pytest.mark.parametrize(
    ("resource_type", "body"),
    [
        ("Patient", factories.organization() | {"resourceType": "Patient"}),  # wrong elements
        ("Organization", factories.organization() | {"resourceType": "Patient"}),
        ("Patient", factories.patient() | {"_gender": {"extension": []}}),
        ("Condition", factories.condition(subject="p") | {"onsetString": "x", "onsetAge": {}}),
        ("Flag", factories.flag(subject="Patient/p1") | {"bogus": 1}),
        ("Flag", factories.flag(subject="Patient/p1") | {"contained": [factories.patient()]}),
        ("Flag", factories.flag(subject="Patient/p1") | {"category": []}),
        ("Flag", factories.flag(subject="Patient/p1") | {"status": None}),
        ("Patient", ["not", "an", "object"]),
    ],
)
def test_what_the_shape_cannot_vouch_for_is_left_to_the_model(
    resource_type: str, body: Any
) -> None:
    assert not _fast(body, resource_type)
