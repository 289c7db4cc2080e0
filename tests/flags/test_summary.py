"""The safeguarding summary's warning rules: each fires on its evidence and only then."""

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.flags import codes
from app.flags import summary_warnings as sw
from app.flags.summary_outcome import outcome
from app.flags.summary_warnings import Family, Held, Limits, Relative
from app.flags.warning_rules import findings
from tests import factories as f
from tests.conftest import app_context
from tests.http import create, reference

BASE = "http://test/fhir"
VOCABULARY = codes.vocabulary(BASE)
TODAY = date(2026, 11, 27)
LIMITS = Limits(threshold=2, window_days=365, today=TODAY)


def held(resource: dict[str, Any], logical_id: str) -> Held:
    """A stored resource as the summary reads it."""
    stored = resource | {"id": logical_id}
    return Held(resource["resourceType"], logical_id, orjson.dumps(stored), stored)


def flag(
    flag_type: str,
    *,
    subject: str = "Patient/child",
    status: str = "active",
    start: str = "2026-01-10",
    author: str = "Organization/la",
    name: str = "",
) -> Held:
    body = f.project_flag(
        vocabulary=VOCABULARY,
        subject=subject,
        author=author,
        flag_type=flag_type,
        status=status,
        start=start,
    )
    return held(body, name or f"{flag_type}-{status}-{start}")


def rp(code: str, *, nhs: str | None = None, name: str = "") -> Held:
    return held(f.related_person(patient="Patient/child", relationship=code, nhs=nhs), name or code)


def relative(kind: str, code: str, logical_id: str) -> Relative:
    patient = held(f.patient(given=logical_id), logical_id)
    return Relative(patient, kind, code, f"RelatedPerson/{code}")


def family(**parts: Any) -> Family:
    child = held(f.patient(nhs=f.nhs_number(1), given="Amy"), "child")
    names = {"Organization/la": "Shire County Council", "Organization/gp": "Riverside Surgery"}
    return Family(child, BASE, organizations=names, **parts)


def codes_of(found: list[sw.Finding]) -> list[str]:
    return [finding.code for finding in found]


def days_before(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


# no-father-recorded


def test_no_father_fires_without_a_father_relationship() -> None:
    found = sw.no_father(family(related_persons=(rp("MTH"), rp("GRFTH"))))
    assert codes_of(found) == ["no-father-recorded"]
    assert found[0].about == ("Patient/child",)
    assert "Amy Smith (Patient/child)" in found[0].text


@pytest.mark.parametrize("code", ["FTH", "NFTH", "STPFTH"])
def test_no_father_is_quiet_with_any_father_code(code: str) -> None:
    assert sw.no_father(family(related_persons=(rp("MTH"), rp(code)))) == []


# father-not-identified


def test_father_without_identifier_is_not_identified() -> None:
    found = sw.father_not_identified(family(related_persons=(rp("FTH", name="dad"),)))
    assert codes_of(found) == ["father-not-identified"]
    assert found[0].about == ("RelatedPerson/dad",)
    assert "RelatedPerson/dad" in found[0].text


def test_father_with_an_identifier_or_no_father_is_quiet() -> None:
    identified = family(related_persons=(rp("FTH", nhs=f.nhs_number(2)), rp("MTH")))
    assert sw.father_not_identified(identified) == []
    assert sw.father_not_identified(family(related_persons=(rp("MTH"),))) == []


# elective-home-education


def test_home_education_names_who_recorded_it_and_since_when() -> None:
    education = flag(codes.ELECTIVE_HOME_EDUCATION, start="2026-02-01", name="ehe")
    [finding] = sw.home_education(family(flags=(education,)), VOCABULARY)
    assert finding.code == "elective-home-education"
    assert finding.about == ("Flag/ehe",)
    assert "Shire County Council (Organization/la)" in finding.text
    assert "since 2026-02-01" in finding.text
    assert "no statutory agency is required to visit the home" in finding.text


def test_home_education_by_an_unknown_author_names_the_reference() -> None:
    education = flag(codes.ELECTIVE_HOME_EDUCATION, author="Organization/elsewhere")
    [finding] = sw.home_education(family(flags=(education,)), VOCABULARY)
    assert "Organization/elsewhere" in finding.text


def test_no_home_education_flag_is_quiet() -> None:
    assert sw.home_education(family(flags=(flag("child-in-need"),)), VOCABULARY) == []


# repeated-was-not-brought


def test_two_not_brought_within_the_window_fire() -> None:
    episodes = (
        flag(codes.WAS_NOT_BROUGHT, start=days_before(10), name="a"),
        flag(codes.WAS_NOT_BROUGHT, status="inactive", start=days_before(300), name="b"),
    )
    [finding] = sw.not_brought(family(not_brought=episodes), VOCABULARY, LIMITS)
    assert finding.code == "repeated-was-not-brought"
    assert finding.about == ("Flag/b", "Flag/a", "Patient/child")
    assert days_before(10) in finding.text and "Shire County Council" in finding.text


def test_not_brought_on_partial_dates_counts_from_their_first_day() -> None:
    this_month, last_year = days_before(0)[:7], str(int(days_before(0)[:4]) - 1)
    episodes = (
        flag(codes.WAS_NOT_BROUGHT, start=this_month, name="month"),
        flag(codes.WAS_NOT_BROUGHT, start=days_before(20), name="day"),
    )
    [finding] = sw.not_brought(family(not_brought=episodes), VOCABULARY, LIMITS)
    assert "Flag/month" in finding.about
    old = (
        flag(codes.WAS_NOT_BROUGHT, start=str(int(last_year) - 1), name="year"),
        flag(codes.WAS_NOT_BROUGHT, start=days_before(20), name="day"),
    )
    assert sw.not_brought(family(not_brought=old), VOCABULARY, LIMITS) == []


def test_not_brought_outside_the_window_or_below_threshold_is_quiet() -> None:
    old = flag(codes.WAS_NOT_BROUGHT, start=days_before(400), name="old")
    recent = flag(codes.WAS_NOT_BROUGHT, start=days_before(5), name="recent")
    assert sw.not_brought(family(not_brought=(old, recent)), VOCABULARY, LIMITS) == []
    higher = replace(LIMITS, threshold=3)
    pair = (recent, flag(codes.WAS_NOT_BROUGHT, start=days_before(6), name="other"))
    assert sw.not_brought(family(not_brought=pair), VOCABULARY, higher) == []


@pytest.mark.parametrize("state", [codes.CHILD_PROTECTION_PLAN, codes.LOOKED_AFTER_CHILD])
def test_one_not_brought_fires_while_protected(state: str) -> None:
    once = (flag(codes.WAS_NOT_BROUGHT, start=days_before(30), name="once"),)
    protected = family(not_brought=once, flags=(flag(state, name="plan"),))
    [finding] = sw.not_brought(protected, VOCABULARY, LIMITS)
    assert "Flag/plan" in finding.text
    assert sw.not_brought(family(not_brought=once), VOCABULARY, LIMITS) == []


# sibling-subject-to-plan


@pytest.mark.parametrize("plan", [codes.CHILD_PROTECTION_PLAN, codes.UNBORN_CHILD_PROTECTION_PLAN])
def test_sibling_on_a_plan_fires(plan: str) -> None:
    sibling = relative("sibling", "HSIB", "half")
    on_plan = flag(plan, subject="Patient/half", name="plan")
    found = sw.sibling_plan(family(relatives=(sibling,), relative_flags=(on_plan,)), VOCABULARY)
    assert codes_of(found) == ["sibling-subject-to-plan"]
    assert found[0].about == ("Patient/half", "Flag/plan")


def test_parent_on_a_plan_or_sibling_without_one_is_quiet() -> None:
    mother = relative("parent", "MTH", "mum")
    sibling = relative("sibling", "SIB", "sis")
    flags = (
        flag(codes.UNBORN_CHILD_PROTECTION_PLAN, subject="Patient/mum"),
        flag(codes.LOOKED_AFTER_CHILD, subject="Patient/sis"),
    )
    quiet = family(relatives=(mother, sibling), relative_flags=flags)
    assert sw.sibling_plan(quiet, VOCABULARY) == []


# multiple-services-same-condition


def condition(organization: str | None, name: str, code: str = "35489007") -> Held:
    body = f.recorded_condition(
        vocabulary=VOCABULARY, subject="Patient/child", organization=organization or "", code=code
    )
    if organization is None:
        del body["extension"]
    return held(body, name)


def test_same_condition_from_two_organizations_fires() -> None:
    both = (condition("Organization/gp", "c1"), condition("Organization/camhs", "c2"))
    [finding] = sw.multiple_services(family(conditions=both), VOCABULARY)
    assert finding.code == "multiple-services-same-condition"
    assert finding.about == ("Condition/c1", "Condition/c2")
    assert "Riverside Surgery (Organization/gp)" in finding.text
    assert "Confirm which service leads" in finding.text


def test_one_organization_or_different_codes_are_quiet() -> None:
    same = (condition("Organization/gp", "c1"), condition("Organization/gp", "c2"))
    assert sw.multiple_services(family(conditions=same), VOCABULARY) == []
    different = (
        condition("Organization/gp", "c1"),
        condition("Organization/camhs", "c2", code="14760008"),
    )
    assert sw.multiple_services(family(conditions=different), VOCABULARY) == []
    unrecorded = (condition(None, "c1"), condition("Organization/camhs", "c2"))
    assert sw.multiple_services(family(conditions=unrecorded), VOCABULARY) == []
    uncoded = (condition("Organization/gp", "c1"), condition("Organization/camhs", "c2"))
    for held_condition, text in zip(uncoded, ("asthma", "eczema"), strict=True):
        held_condition.resource["code"] = {"coding": [{"display": text}]}
    assert sw.multiple_services(family(conditions=uncoded), VOCABULARY) == []


# household-risk


@pytest.mark.parametrize("risk", codes.HOUSEHOLD_RISKS)
def test_household_risk_on_a_parent_fires(risk: str) -> None:
    father = relative("parent", "FTH", "dad")
    on_dad = flag(risk, subject="Patient/dad", name="risk")
    found = sw.household_risk(family(relatives=(father,), relative_flags=(on_dad,)), VOCABULARY)
    assert codes_of(found) == ["household-risk"]
    assert found[0].about == ("Flag/risk",)
    assert "a parent (FTH)" in found[0].text


def test_household_risk_on_the_child_fires() -> None:
    own = flag(codes.DOMESTIC_ABUSE, name="own")
    found = sw.household_risk(family(flags=(own,)), VOCABULARY)
    assert codes_of(found) == ["household-risk"] and "own record" in found[0].text


def test_household_risk_on_a_sibling_or_other_flags_is_quiet() -> None:
    sibling = relative("sibling", "SIB", "sis")
    mother = relative("parent", "MTH", "mum")
    flags = (
        flag(codes.DOMESTIC_ABUSE, subject="Patient/sis"),
        flag("young-carer", subject="Patient/mum"),
    )
    quiet = family(relatives=(sibling, mother), relative_flags=flags)
    assert sw.household_risk(quiet, VOCABULARY) == []


# the outcome


def test_outcome_without_warnings_is_one_information_issue() -> None:
    rendered = outcome([], VOCABULARY, {})
    assert rendered["issue"] == [
        {
            "severity": "information",
            "code": "informational",
            "details": {"text": "No safeguarding warnings"},
        }
    ]


def test_outcome_issue_is_coded_and_points_at_entries() -> None:
    finding = sw.Finding("household-risk", "text", ("Flag/a", "Flag/not-in-bundle"))
    [issue] = outcome([finding], VOCABULARY, {"Flag/a": "Bundle.entry[3].resource"})["issue"]
    assert issue["severity"] == "warning" and issue["code"] == "informational"
    assert issue["details"]["coding"][0]["system"] == (
        "http://test/fhir/CodeSystem/safeguarding-summary-warning"
    )
    assert issue["details"]["coding"][0]["code"] == "household-risk"
    assert issue["details"]["text"] == "text"
    assert issue["expression"] == ["Bundle.entry[3].resource"]


def test_findings_run_every_rule_in_order() -> None:
    busy = family(
        related_persons=(rp("FTH"),),
        flags=(flag(codes.ELECTIVE_HOME_EDUCATION), flag(codes.DOMESTIC_ABUSE)),
    )
    assert codes_of(list(findings(busy, VOCABULARY, LIMITS))) == [
        "father-not-identified",
        "elective-home-education",
        "household-risk",
    ]


# through HTTP


def _warning_codes(bundle: dict[str, Any]) -> list[str]:
    issues = bundle.get("entry", [])[-1]["resource"]["issue"]
    return [i["details"]["coding"][0]["code"] for i in issues if i["severity"] == "warning"]


async def test_unidentified_father_and_own_household_risk_through_http(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    vocabulary = app_context(app).vocabulary
    child = await create(client, f.patient())
    council = await create(client, f.organization(name="Shire County Council"))
    await create(client, f.related_person(patient=reference(child), relationship="NFTH"))
    await create(
        client,
        f.project_flag(
            vocabulary=vocabulary,
            subject=reference(child),
            author=reference(council),
            flag_type=codes.PARENTAL_SUBSTANCE_MISUSE,
        ),
    )
    bundle = (await client.get(f"/Patient/{child['id']}/$safeguarding-summary")).json()
    assert _warning_codes(bundle) == ["father-not-identified", "household-risk"]


async def test_ended_flags_raise_no_warning_through_http(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    vocabulary = app_context(app).vocabulary
    child = await create(client, f.patient(nhs=f.nhs_number(70)))
    council = await create(client, f.organization(name="Shire County Council"))
    await create(client, f.related_person(patient=reference(child), nhs=f.nhs_number(71)))
    for flag_type in (codes.ELECTIVE_HOME_EDUCATION, codes.DOMESTIC_ABUSE):
        await create(
            client,
            f.project_flag(
                vocabulary=vocabulary,
                subject=reference(child),
                author=reference(council),
                flag_type=flag_type,
                status="inactive",
            ),
        )
    not_brought = f.project_flag(
        vocabulary=vocabulary,
        subject=reference(child),
        author=reference(council),
        flag_type=codes.WAS_NOT_BROUGHT,
        status="entered-in-error",
        reason="entered-in-error",
    )
    await create(client, not_brought)
    await create(client, not_brought | {"status": "inactive"})
    bundle = (await client.get(f"/Patient/{child['id']}/$safeguarding-summary")).json()
    assert _warning_codes(bundle) == []
    assert bundle.get("entry", [])[-1]["resource"]["issue"][0]["severity"] == "information"
