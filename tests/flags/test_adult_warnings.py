"""A parent's or carer's summary (`app.flags.adult_warnings` and the adult's side of
`app.flags.summary`): the children whose records link the adult, their plans, and an authority
of another district; each warning firing on its evidence and only then."""

from datetime import date
from typing import Any

import orjson
import pytest

from app.flags import codes
from app.flags import summary_warnings as sw
from app.flags.adult_warnings import (
    address_district,
    adult_findings,
    child_on_register_elsewhere,
    child_subject_to_plan,
)
from app.flags.summary_warnings import Family, Held, Relative
from app.flags.warning_rules import findings, is_adult
from tests import factories as f

BASE = "http://test/fhir"
VOCABULARY = codes.vocabulary(BASE)
TODAY = date(2026, 11, 27)
LEEDS_COUNCIL, BRADFORD_COUNCIL = "Organization/leeds", "Organization/bradford"
NAMES = {LEEDS_COUNCIL: "Leeds City Council", BRADFORD_COUNCIL: "City of Bradford Council"}
DISTRICTS = {LEEDS_COUNCIL: "Leeds", BRADFORD_COUNCIL: "Bradford"}


def held(resource: dict[str, Any], logical_id: str) -> Held:
    stored = resource | {"id": logical_id}
    return Held(resource["resourceType"], logical_id, orjson.dumps(stored), stored)


def home(district: str | None) -> dict[str, Any]:
    return {"address": [{"use": "home", "district": district}]} if district else {}


def mother(district: str | None = "Leeds") -> Held:
    body = f.patient(nhs=f.nhs_number(510), given="Jane", birth_date="1990-02-03") | home(district)
    return held(body, "mum")


def child(logical_id: str = "amy", authority: str | None = None, code: str = "MTH") -> Relative:
    body = f.patient(nhs=f.nhs_number(520), given=logical_id)
    if authority is not None:
        url = VOCABULARY.responsible_local_authority_extension
        body["extension"] = [{"url": url, "valueReference": {"reference": authority}}]
    return Relative(held(body, logical_id), "child", code, f"RelatedPerson/{logical_id}-{code}")


def flag(flag_type: str, subject: str, author: str = LEEDS_COUNCIL) -> Held:
    body = f.project_flag(
        vocabulary=VOCABULARY, subject=subject, author=author, flag_type=flag_type
    )
    return held(body, f"{flag_type}-on-{subject.rpartition('/')[2]}")


def family(adult: Held, relatives: tuple[Relative, ...], flags: tuple[Held, ...]) -> Family:
    return Family(
        adult,
        BASE,
        relatives=relatives,
        relative_flags=flags,
        organizations=NAMES,
        districts=DISTRICTS,
    )


# child-subject-to-plan


@pytest.mark.parametrize(
    "flag_type",
    [codes.CHILD_PROTECTION_PLAN, codes.UNBORN_CHILD_PROTECTION_PLAN, codes.LOOKED_AFTER_CHILD],
)
def test_a_child_on_a_plan_or_looked_after_is_a_warning_naming_child_flag_and_recorder(
    flag_type: str,
) -> None:
    plan = flag(flag_type, "Patient/amy")
    found = child_subject_to_plan(family(mother(), (child(),), (plan,)), VOCABULARY)

    assert [(x.code, x.about) for x in found] == [
        ("child-subject-to-plan", ("Patient/amy", plan.reference))
    ]
    display = next(c.display for c in VOCABULARY.flag_types if c.code == flag_type)
    assert found[0].text == (
        "amy Smith (Patient/amy), whose record names Jane Smith (Patient/mum) as MTH "
        f"(RelatedPerson/amy-MTH), has an active flag '{display}' since 2026-01-10 "
        f"({plan.reference}, recorded by Leeds City Council (Organization/leeds))."
    )


def test_a_child_with_other_safeguarding_flags_is_no_plan_warning() -> None:
    flags = (
        flag(codes.ELECTIVE_HOME_EDUCATION, "Patient/amy"),
        flag("child-in-need", "Patient/amy"),
    )
    assert child_subject_to_plan(family(mother(), (child(),), flags), VOCABULARY) == []


def test_a_sibling_on_a_plan_is_not_a_child_of_the_subject() -> None:
    sister = Relative(child("sis").patient, "sibling", "SIS", "RelatedPerson/sis")
    plan = flag(codes.CHILD_PROTECTION_PLAN, "Patient/sis")
    assert adult_findings(family(mother(), (sister,), (plan,)), VOCABULARY) == []


# child-on-register-elsewhere


def test_a_child_on_a_plan_of_another_districts_authority_is_a_warning() -> None:
    amy = child(authority=BRADFORD_COUNCIL)
    plan = flag(codes.CHILD_PROTECTION_PLAN, "Patient/amy", author=BRADFORD_COUNCIL)

    found = child_on_register_elsewhere(family(mother("Leeds"), (amy,), (plan,)), VOCABULARY)

    assert [(x.code, x.about) for x in found] == [
        ("child-on-register-elsewhere", ("Patient/amy", plan.reference))
    ]
    assert "is the responsibility of City of Bradford Council (Organization/bradford, " in (
        found[0].text
    )
    assert "Bradford), while Jane Smith (Patient/mum) lives in Leeds" in found[0].text
    assert "since 2026-01-10" in found[0].text and "recorded by City of Bradford" in found[0].text


def test_the_childs_responsible_authority_counts_before_the_flags_author() -> None:
    amy = child(authority=LEEDS_COUNCIL)  # the plan raised by Bradford, Leeds responsible
    plan = flag(codes.CHILD_PROTECTION_PLAN, "Patient/amy", author=BRADFORD_COUNCIL)
    assert child_on_register_elsewhere(family(mother("Leeds"), (amy,), (plan,)), VOCABULARY) == []


def test_without_an_extension_the_plans_author_is_the_authority() -> None:
    plan = flag(codes.LOOKED_AFTER_CHILD, "Patient/amy", author=BRADFORD_COUNCIL)
    found = adult_findings(family(mother("leeds "), (child(),), (plan,)), VOCABULARY)
    assert [x.code for x in found] == ["child-subject-to-plan", "child-on-register-elsewhere"]


@pytest.mark.parametrize(
    ("lives_in", "authority"),
    [
        ("LEEDS", LEEDS_COUNCIL),  # the same district, however written
        (None, BRADFORD_COUNCIL),  # the adult's district unknown
        ("Leeds", "Organization/unknown"),  # the authority's district unknown
    ],
)
def test_no_register_elsewhere_warning_unless_both_districts_are_known_and_differ(
    lives_in: str | None, authority: str
) -> None:
    plan = flag(codes.CHILD_PROTECTION_PLAN, "Patient/amy", author=authority)
    found = child_on_register_elsewhere(family(mother(lives_in), (child(),), (plan,)), VOCABULARY)
    assert found == []


def test_no_register_elsewhere_warning_for_a_child_without_a_plan() -> None:
    risk = flag("child-in-need", "Patient/amy", author=BRADFORD_COUNCIL)
    assert child_on_register_elsewhere(family(mother(), (child(),), (risk,)), VOCABULARY) == []


def test_the_district_is_the_current_home_address_s() -> None:
    addresses = [
        {"use": "home", "district": "Wakefield", "period": {"end": "2020-01-01"}},
        {"use": "work", "district": "York"},
        {"use": "home", "district": "Leeds"},
    ]
    assert address_district(held(f.patient() | {"address": addresses}, "p")) == "Leeds"
    assert address_district(held(f.patient(), "p")) is None


# adults are not warned of a missing father


@pytest.mark.parametrize(
    ("born", "adult"),
    [
        ("2008-11-27", True),
        ("2008-11-28", False),
        ("2007", True),
        ("2008", False),  # perhaps born on 31 December 2008: not surely of age yet
        ("2008-10", True),
        ("2008-11", False),
        ("2008-02-29", True),  # of age on 1 March 2026
        (None, False),
        ("not a date", False),
    ],
)
def test_an_adult_is_eighteen_or_more_on_the_day(born: str | None, adult: bool) -> None:
    body = f.patient() | {"birthDate": born}
    assert is_adult(held(body, "p"), TODAY) is adult


def test_an_adults_summary_does_not_warn_of_a_missing_father() -> None:
    limits = sw.Limits(threshold=2, window_days=365, today=TODAY)
    alone = Family(mother(), BASE)
    assert findings(alone, VOCABULARY, limits) == ()
    as_child = Family(held(f.patient(nhs=f.nhs_number(530)), "amy"), BASE)
    assert [x.code for x in findings(as_child, VOCABULARY, limits)] == ["no-father-recorded"]


def test_a_subject_without_birth_date_with_a_linked_child_is_read_as_an_adult() -> None:
    limits = sw.Limits(threshold=2, window_days=365, today=TODAY)
    undated = held({k: v for k, v in mother().resource.items() if k != "birthDate"}, "mum")
    assert [x.code for x in findings(Family(undated, BASE), VOCABULARY, limits)] == [
        "no-father-recorded"
    ]
    with_child = Family(undated, BASE, relatives=(child(),))
    assert findings(with_child, VOCABULARY, limits) == ()


@pytest.mark.parametrize("code", ["ADOPTM", "GUARD", "PRNFOST", "STPPRN"])
def test_adoptive_and_foster_parents_and_guardians_are_carers(code: str) -> None:
    body = f.related_person(patient="Patient/amy", relationship=code, nhs=f.nhs_number(510))
    assert sw.carer_code(body) == code


def test_a_carer_in_uk_cores_roles_is_a_carer() -> None:
    body = f.related_person(patient="Patient/amy", nhs=f.nhs_number(510))
    body["relationship"] = [{"coding": [{"system": sw.UK_ROLE, "code": "Carer"}]}]
    assert sw.carer_code(body) == "Carer"


@pytest.mark.parametrize(
    "addresses",
    [
        [{"use": "old", "district": "Leeds"}],
        [{"use": "home", "district": "Leeds", "period": {"end": "2026-01-01"}}],
        [{"use": "work", "district": "Leeds"}],
    ],
)
def test_an_old_ended_or_work_address_is_not_home(addresses: list[dict[str, Any]]) -> None:
    patient = held(f.patient() | {"address": addresses}, "p")
    assert address_district(patient, TODAY) is None


def test_a_home_address_ending_later_is_still_home() -> None:
    later = [{"use": "home", "district": "Leeds", "period": {"end": "2027-01-01"}}]
    assert address_district(held(f.patient() | {"address": later}, "p"), TODAY) == "Leeds"
