"""AuditEvent search parameters as tests on the trail (`app.audit.search.parse`), table-driven."""

import pytest

from app.audit.search import Identifier, parse
from app.errors import Invalid
from app.storage.audit_search import LinkTest

BASE = "http://test/fhir"
CLIENTS = f"{BASE}/clients"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"


@pytest.mark.parametrize(
    ("key", "value", "links"),
    [
        ("patient", "Patient/p1", (LinkTest("patient", "Patient/p1"),)),
        (
            "patient",
            "p1,p2",
            (LinkTest("patient", "Patient/p1"), LinkTest("patient", "Patient/p2")),
        ),
        ("patient", f"{BASE}/Patient/p1", (LinkTest("patient", "Patient/p1"),)),
        ("agent", "Organization/o1", (LinkTest("agent", "Organization/o1"),)),
        ("agent", "o1", (LinkTest("agent", "o1", suffix=True),)),
        ("agent:Organization", "o1", (LinkTest("agent", "Organization/o1"),)),
        ("agent:identifier", f"{CLIENTS}|gp", (LinkTest("client", "gp"),)),
        ("agent:identifier", "gp", (LinkTest("client", "gp"),)),
        ("agent:identifier", f"{CLIENTS}|", (LinkTest("client", None),)),
        ("agent:identifier", "https://elsewhere.org|gp,|gp", ()),
        ("entity", "Flag/f1/_history/2", (LinkTest("entity", "Flag/f1"),)),
        ("entity", "f1", (LinkTest("entity", "f1", suffix=True),)),
        ("entity:Condition", "c1", (LinkTest("entity", "Condition/c1"),)),
        (
            "entity",
            "https://elsewhere.org/Flag/1",
            (LinkTest("entity", "https://elsewhere.org/Flag/1"),),
        ),
    ],
)
def test_references_become_link_tests(key: str, value: str, links: tuple[LinkTest, ...]) -> None:
    assert parse([(key, value)], BASE, CLIENTS).links == [links]


@pytest.mark.parametrize(
    ("key", "value", "codes"),
    [
        ("action", "R", ("R",)),
        ("action", "C,D", ("C", "D")),
        ("action", "http://hl7.org/fhir/audit-event-action|U", ("U",)),
        ("action", "http://hl7.org/fhir/audit-event-action|", ("C", "R", "U", "D", "E")),
        ("action", "https://elsewhere.org|U", ()),
        ("outcome", "http://hl7.org/fhir/audit-event-outcome|8", ("8",)),
        ("outcome", "|0", ()),
        ("subtype", "read,vread", ("read", "vread")),
        ("subtype", f"{DCM}|110122", ("110122",)),
        ("subtype", f"{INTERACTION}|110122", ()),
        ("subtype", f"{DCM}|read", ()),
        ("subtype", f"{DCM}|", ("110122",)),
    ],
)
def test_tokens_become_the_column_values_they_allow(
    key: str, value: str, codes: tuple[str, ...]
) -> None:
    assert parse([(key, value)], BASE, CLIENTS).columns == [(key, codes)]


def test_subtype_by_its_system_alone_is_every_interaction_but_login() -> None:
    ((_, codes),) = parse([("subtype", f"{INTERACTION}|")], BASE, CLIENTS).columns
    assert "read" in codes and "search-type" in codes and "110122" not in codes


def test_patients_named_and_chains_left_to_resolve() -> None:
    found = parse(
        [
            ("patient", "p1"),
            ("entity", "Patient/p2"),
            ("patient.identifier", "https://fhir.nhs.uk/Id/nhs-number|9449306753,|x,y"),
        ],
        BASE,
        CLIENTS,
    )
    assert found.patients == ["p1", "p2"]
    assert found.identifiers == [
        (
            Identifier("https://fhir.nhs.uk/Id/nhs-number", "9449306753", True),
            Identifier(None, "x", True),
            Identifier(None, "y", False),
        )
    ]


def test_result_parameters_are_not_criteria_and_unknown_ones_are_ignored() -> None:
    pairs = [("_count", "5"), ("_sort", "date"), ("_include", "x"), ("status", "active")]
    found = parse(pairs, BASE, CLIENTS)
    assert found.applied == [] and found.links == []
    assert [issue.expression for issue in found.ignored] == [("_include",), ("status",)]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("patient", "Organization/o1"),
        ("patient:missing", "true"),
        ("action:not", "R"),
        ("subtype:text", "read"),
        ("entity:identifier", "x|y"),
        ("patient.name", "Smith"),
        ("agent.identifier", "x"),
        ("patient.identifier", "a|b|c"),
        ("patient.identifier", "system|"),
        ("date", "2026-13"),
        ("date", "soon"),
        ("outcome", "0\x00"),
    ],
)
def test_malformed_or_unsupported_parameters_are_400(key: str, value: str) -> None:
    with pytest.raises(Invalid) as raised:
        parse([(key, value)], BASE, CLIENTS)
    assert raised.value.issues[0].expression == (key,)


def test_a_search_is_bounded_in_values() -> None:
    with pytest.raises(Invalid) as raised:
        parse([("patient", ",".join(f"p{i}" for i in range(101)))], BASE, CLIENTS)
    assert raised.value.issues[0].code == "too-costly"
