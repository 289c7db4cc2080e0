"""`_summary` and `_elements` (http://hl7.org/fhir/R4/search.html#summary, #elements)."""

import copy
from typing import Any

import orjson
import pytest

from app.errors import Invalid
from app.fhir.elements import parse_elements, parse_summary, shape, shape_bytes
from app.fhir.resources import mandatory_elements, summary_elements
from tests import factories as f

V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
SUBSETTED = {"system": V3, "code": "SUBSETTED", "display": "Resource encoded in summary mode"}
TEXT = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}
META = {"versionId": "3", "lastUpdated": "2026-01-10T09:00:00Z"}


def _stored(resource: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A resource as served: with id, meta and narrative, plus `extra` elements."""
    return {**resource, "id": "r1", "meta": copy.deepcopy(META), "text": TEXT, **extra}


def stored_patient() -> dict[str, Any]:
    """A Patient with summary, non-summary, choice and primitive-extension elements."""
    return _stored(
        f.patient(nhs=f.nhs_number(1)),
        _birthDate={"extension": [{"url": "https://example.org/x", "valueString": "approx"}]},
        deceasedBoolean=False,  # deceased[x]: summary
        multipleBirthBoolean=True,  # multipleBirth[x]: not summary
        maritalStatus={"text": "Never married"},  # not summary
    )


def stored_flag() -> dict[str, Any]:
    """A Flag with an author and one non-summary element besides text."""
    return _stored(f.flag(subject="Patient/p1", author="Organization/o1"), language="en-GB")


PATIENT_ALL = set(stored_patient())
FLAG_ALL = set(stored_flag())
BASE = {"resourceType", "id", "meta"}


@pytest.mark.parametrize(
    ("summary", "elements", "kept"),
    [
        ("true", None, PATIENT_ALL - {"text", "multipleBirthBoolean", "maritalStatus"}),
        ("count", None, PATIENT_ALL - {"text", "multipleBirthBoolean", "maritalStatus"}),
        ("text", None, BASE | {"text"}),
        ("data", None, PATIENT_ALL - {"text"}),
        (None, ("gender",), BASE | {"gender"}),
        (None, ("birthDate", "name"), BASE | {"birthDate", "_birthDate", "name"}),
        (None, ("deceasedBoolean", "contact"), BASE | {"deceasedBoolean"}),
        ("true", ("maritalStatus",), BASE | {"maritalStatus"}),
        ("text", ("gender",), BASE | {"gender"}),
    ],
)
def test_patient_keeps_exactly_the_requested_elements(
    summary: str | None, elements: tuple[str, ...] | None, kept: set[str]
) -> None:
    shaped = shape(stored_patient(), summary=summary, elements=elements)
    assert set(shaped) == kept
    assert shaped["meta"]["tag"] == [SUBSETTED]


@pytest.mark.parametrize(
    ("summary", "elements", "kept"),
    [
        ("true", None, FLAG_ALL - {"text", "language"}),
        ("text", None, BASE | {"text", "status", "code", "subject"}),
        ("data", None, FLAG_ALL - {"text"}),
        (None, ("period",), BASE | {"status", "code", "subject", "period"}),
        (None, ("language", "author"), BASE | {"status", "code", "subject", "language", "author"}),
    ],
)
def test_flag_keeps_exactly_the_requested_and_mandatory_elements(
    summary: str | None, elements: tuple[str, ...] | None, kept: set[str]
) -> None:
    shaped = shape(stored_flag(), summary=summary, elements=elements)
    assert set(shaped) == kept
    assert shaped["meta"]["tag"] == [SUBSETTED]


def test_condition_elements_keep_its_mandatory_subject() -> None:
    condition = _stored(f.condition(subject="Patient/p1"))
    shaped = shape(condition, summary=None, elements=("code",))
    assert set(shaped) == BASE | {"code", "subject"}


def test_kept_values_are_unchanged_and_meta_keeps_its_other_members() -> None:
    patient = stored_patient()
    shaped = shape(patient, summary="true", elements=None)
    assert shaped["name"] == patient["name"]
    assert shaped["_birthDate"] == patient["_birthDate"]
    assert shaped["meta"] == {**META, "tag": [SUBSETTED]}


@pytest.mark.parametrize(
    ("summary", "elements"),
    [("true", None), ("text", None), ("data", None), (None, ("gender",)), ("false", None)],
)
def test_shape_never_mutates_its_input(
    summary: str | None, elements: tuple[str, ...] | None
) -> None:
    patient = stored_patient()
    patient["meta"]["tag"] = [{"system": "https://example.org/tags", "code": "a"}]
    before = copy.deepcopy(patient)
    shaped = shape(patient, summary=summary, elements=elements)
    assert patient == before
    assert shaped is not patient


def test_subsetted_is_added_after_existing_tags_and_never_twice() -> None:
    other = {"system": "https://example.org/tags", "code": "a"}
    patient = stored_patient()
    patient["meta"]["tag"] = [other]
    once = shape(patient, summary="text", elements=None)
    assert once["meta"]["tag"] == [other, SUBSETTED]
    twice = shape({**once, "gender": "female"}, summary="text", elements=None)
    assert twice["meta"]["tag"] == [other, SUBSETTED]


def test_subsetted_creates_meta_when_the_resource_has_none() -> None:
    shaped = shape(f.patient(), summary="text", elements=None)
    assert shaped == {"resourceType": "Patient", "meta": {"tag": [SUBSETTED]}}


@pytest.mark.parametrize(
    ("resource", "summary", "elements"),
    [
        (_stored(f.patient()), None, None),
        (_stored(f.patient()), "false", None),
        (_stored(f.patient()), "false", ("text", "name", "gender", "birthDate")),
        ({**f.patient(), "id": "r1"}, "data", None),
        ({**f.organization(), "id": "o1"}, "true", None),
        ({**f.flag(subject="Patient/p1"), "id": "f1"}, "true", None),
    ],
)
def test_nothing_removed_means_no_tag(
    resource: dict[str, Any], summary: str | None, elements: tuple[str, ...] | None
) -> None:
    assert shape(resource, summary=summary, elements=elements) == resource


def test_shape_bytes_returns_the_same_bytes_when_nothing_is_asked() -> None:
    body = orjson.dumps(stored_patient())
    assert shape_bytes(body, summary=None, elements=None) is body
    assert shape_bytes(body, summary="false", elements=None) is body


@pytest.mark.parametrize(
    ("summary", "elements"), [("true", None), ("text", None), ("data", None), (None, ("name",))]
)
def test_shape_bytes_shapes_the_json(summary: str | None, elements: tuple[str, ...] | None) -> None:
    patient = stored_patient()
    shaped = shape_bytes(orjson.dumps(patient), summary=summary, elements=elements)
    assert orjson.loads(shaped) == shape(patient, summary=summary, elements=elements)
    assert "text" not in orjson.loads(shaped) or summary == "text"


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (None, None),
        ("true", "true"),
        ("text", "text"),
        ("data", "data"),
        ("count", "count"),
        ("false", "false"),
    ],
)
def test_summary_values(raw: str | None, parsed: str | None) -> None:
    assert parse_summary(raw) == parsed


@pytest.mark.parametrize("raw", ["TRUE", "True", "", " true", "yes", "1", "summary"])
def test_unknown_summary_is_400(raw: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_summary(raw)
    assert caught.value.status == 400
    assert [issue.expression for issue in caught.value.issues] == [("_summary",)]


@pytest.mark.parametrize(
    ("raw_values", "parsed"),
    [
        ([], None),
        ([""], None),
        ([" , ,"], None),
        (["name"], ("name",)),
        (["name,gender"], ("name", "gender")),
        (["name, gender ,", "birthDate"], ("name", "gender", "birthDate")),
        (["name", "gender,name"], ("name", "gender")),
        (["Patient.name,Flag.status"], ("name", "status")),
        (["deceasedBoolean"], ("deceasedBoolean",)),
    ],
)
def test_elements_values(raw_values: list[str], parsed: tuple[str, ...] | None) -> None:
    assert parse_elements(raw_values) == parsed


@pytest.mark.parametrize(
    "bad",
    [
        "name.family",
        "Patient.name.family",
        "_birthDate",
        "deceased[x]",
        "1name",
        "Patient.",
        "*",
        "name-x",
        "patient.name",
        ".name",
        "na me",
    ],
)
def test_malformed_element_name_is_400(bad: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_elements(["gender", f"name,{bad}"])
    assert caught.value.status == 400
    assert [issue.expression for issue in caught.value.issues] == [("_elements",)]


@pytest.mark.parametrize(
    ("resource_type", "mandatory"),
    [
        ("Flag", {"status", "code", "subject"}),
        ("Condition", {"subject"}),
        ("RelatedPerson", {"patient"}),
        ("Patient", set()),
        ("Organization", set()),
    ],
)
def test_mandatory_elements(resource_type: str, mandatory: set[str]) -> None:
    assert mandatory_elements(resource_type) == mandatory


@pytest.mark.parametrize(
    ("resource_type", "summary", "not_summary"),
    [
        (
            "Patient",
            {"id", "meta", "birthDate", "deceasedBoolean", "deceasedDateTime", "gender", "name"},
            {"text", "contact", "maritalStatus", "multipleBirthBoolean", "_birthDate"},
        ),
        ("Flag", {"status", "code", "subject", "period", "author"}, {"text", "language"}),
        ("Condition", {"subject", "onsetDateTime", "onsetAge"}, {"abatementDateTime", "note"}),
    ],
)
def test_summary_elements(resource_type: str, summary: set[str], not_summary: set[str]) -> None:
    elements = summary_elements(resource_type)
    assert summary <= elements
    assert not (not_summary & elements)
