"""`$safeguarding-summary` through HTTP: who is in the Bundle, the warnings, and the errors."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.flags import codes
from app.flags.codes import Vocabulary
from app.storage import query as storage_query
from tests import factories as f
from tests.conftest import app_context
from tests.fhir.summaries import entry_of, members, summarise, summary_url, warnings
from tests.http import create, outcome_expressions, reference


@pytest.fixture
def vocabulary(app: FastAPI) -> Vocabulary:
    """The vocabulary under the app's canonical base."""
    return app_context(app).vocabulary


def days_ago(days: int) -> str:
    """A date `days` before today (UTC)."""
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


def clinical_flag(*, subject: str) -> dict[str, Any]:
    """A Flag outside the safeguarding vocabulary (an EHR's own clinical alert)."""
    return {
        "resourceType": "Flag",
        "status": "active",
        "code": {"coding": [{"system": "https://example.org/alerts", "code": "hearing-aid"}]},
        "subject": {"reference": subject},
    }


async def test_summary_of_a_child_alone_has_only_information(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(1)))
    father = await create(client, f.related_person(patient=reference(child), nhs=f.nhs_number(2)))
    bundle = await summarise(client, summary_url(child))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert bundle["id"] and bundle["timestamp"]
    assert [e["fullUrl"] for e in bundle.get("entry", [])[:2]] == [
        f"http://test/fhir/Patient/{child['id']}",
        f"http://test/fhir/RelatedPerson/{father['id']}",
    ]
    assert bundle.get("entry", [])[0]["resource"] == child
    outcome = bundle.get("entry", [])[-1]
    assert outcome["fullUrl"].startswith("urn:uuid:")
    assert outcome["resource"]["issue"] == [
        {
            "severity": "information",
            "code": "informational",
            "details": {"text": "No safeguarding warnings"},
        }
    ]


async def test_summary_by_nhs_number_is_the_summary_by_id(client: httpx.AsyncClient) -> None:
    number = f.nhs_number(3)
    child = await create(client, f.patient(nhs=number))
    await create(client, f.patient(nhs=f.nhs_number(4)))
    by_identifier = await summarise(
        client, f"/Patient/$safeguarding-summary?identifier={f.NHS}|{number}"
    )
    by_id = await summarise(client, summary_url(child))
    assert by_identifier.get("entry", [])[0]["resource"] == child
    assert [e["fullUrl"] for e in by_identifier.get("entry", [])[:-1]] == [
        e["fullUrl"] for e in by_id.get("entry", [])[:-1]
    ]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?identifier=9449306753",
        f"?identifier={f.NHS}|",
        "?identifier=|9449306753",
        f"?identifier={f.NHS}|9000000000",
        f"?identifier={f.NHS}|9449306753&identifier={f.NHS}|9449306753",
        "?identifier=%00|%00",
    ],
)
async def test_malformed_identifier_is_400_naming_it(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/Patient/$safeguarding-summary{query}")
    assert response.status_code == 400
    assert outcome_expressions(response) == ["identifier"]


async def test_unknown_identifier_is_404_naming_it(client: httpx.AsyncClient) -> None:
    url = f"/Patient/$safeguarding-summary?identifier={f.NHS}|{f.nhs_number(5)}"
    response = await client.get(url)
    assert response.status_code == 404
    assert outcome_expressions(response) == ["identifier"]


async def test_identifier_matching_two_patients_is_412_naming_it(
    client: httpx.AsyncClient,
) -> None:
    local = {"system": "https://example.org/mrn", "value": "K-1"}
    await create(client, f.patient() | {"identifier": [local]})
    await create(client, f.patient(given="Bea") | {"identifier": [local]})
    response = await client.get(
        "/Patient/$safeguarding-summary?identifier=https://example.org/mrn|K-1"
    )
    assert response.status_code == 412
    assert outcome_expressions(response) == ["identifier"]
    assert response.json()["issue"][0]["code"] == "multiple-matches"


async def test_unknown_patient_is_404_and_deleted_410(client: httpx.AsyncClient) -> None:
    assert (await client.get("/Patient/nobody/$safeguarding-summary")).status_code == 404
    child = await create(client, f.patient())
    await client.delete(f"/Patient/{child['id']}")
    assert (await client.get(summary_url(child))).status_code == 410
    gone = await client.get(
        f"/Patient/$safeguarding-summary?identifier=https://x.org|{child['id']}"
    )
    assert gone.status_code == 404


async def test_summary_is_read_only(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient())
    before = (await client.get("/_history")).json().get("entry", [])
    await summarise(client, summary_url(child))
    assert (await client.get("/_history")).json().get("entry", []) == before
    posted = await client.post(summary_url(child), json={})
    assert posted.status_code == 405


async def _family_of_eight(
    client: httpx.AsyncClient, vocabulary: Vocabulary
) -> dict[str, dict[str, Any]]:
    """Child, father, mother, step-father, two siblings and a step-sibling linked from the
    child's record, a half-sibling whose own record names the child; 40 flags in all."""
    people: dict[str, dict[str, Any]] = {}
    roles = ["child", "father", "mother", "stepfather", "sister", "brother", "stepsister", "half"]
    for serial, role in enumerate(roles):
        nhs = f.nhs_number(100 + 10 * serial)
        people[role] = await create(client, f.patient(nhs=nhs, given=role))
    people["stranger"] = await create(client, f.patient(nhs=f.nhs_number(190), given="X"))
    people["school"] = await create(client, f.organization(ods="X1", name="Hill School"))
    child = reference(people["child"])
    codes_by_role = {
        "father": "FTH",
        "mother": "MTH",
        "stepfather": "STPFTH",
        "sister": "SIS",
        "brother": "BRO",
        "stepsister": "STPSIB",
    }
    for role, code in codes_by_role.items():
        nhs = people[role]["identifier"][0]["value"]
        people[f"rp-{role}"] = await create(
            client, f.related_person(patient=child, relationship=code, nhs=nhs)
        )
    people["rp-gran"] = await create(client, f.related_person(patient=child, relationship="GRMTH"))
    child_nhs = people["child"]["identifier"][0]["value"]
    people["rp-half"] = await create(
        client,
        f.related_person(patient=reference(people["half"]), relationship="HSIB", nhs=child_nhs),
    )
    await _forty_flags(client, vocabulary, people)
    return people


# Per person: (flag type, status); every person gets five.
FLAGS = {
    "child": [
        ("child-in-need", "active"),
        ("was-not-brought", "active"),
        ("was-not-brought", "inactive"),
        ("young-carer", "inactive"),
        ("safeguarding-concern", "entered-in-error"),
    ],
    "father": [
        ("parental-substance-misuse", "inactive"),
        ("young-carer", "active"),
        ("neglect-concern", "inactive"),
        ("child-in-need", "inactive"),
        ("child-at-risk", "inactive"),
    ],
    "mother": [
        ("domestic-abuse-in-household", "active"),
        ("child-in-need", "inactive"),
        ("neglect-concern", "inactive"),
        ("young-carer", "inactive"),
        ("child-at-risk", "inactive"),
    ],
    "stepfather": [
        ("parental-mental-health-concern", "inactive"),
        ("young-carer", "inactive"),
        ("neglect-concern", "inactive"),
        ("child-in-need", "inactive"),
        ("child-at-risk", "inactive"),
    ],
    "sister": [
        ("child-protection-plan", "active"),
        ("child-in-need", "active"),
        ("neglect-concern", "inactive"),
        ("young-carer", "inactive"),
        ("child-at-risk", "inactive"),
    ],
    "brother": [
        ("child-protection-plan", "inactive"),
        ("child-in-need", "inactive"),
        ("neglect-concern", "inactive"),
        ("young-carer", "active"),
        ("child-at-risk", "inactive"),
    ],
    "stepsister": [
        ("looked-after-child", "active"),
        ("child-in-need", "inactive"),
        ("neglect-concern", "inactive"),
        ("young-carer", "inactive"),
        ("child-at-risk", "inactive"),
    ],
    "half": [
        ("unborn-child-protection-plan", "active"),
        ("child-in-need", "inactive"),
        ("neglect-concern", "inactive"),
        ("young-carer", "inactive"),
        ("child-at-risk", "inactive"),
    ],
}


async def _forty_flags(
    client: httpx.AsyncClient, vocabulary: Vocabulary, people: dict[str, dict[str, Any]]
) -> None:
    school = reference(people["school"])
    for role, flags in FLAGS.items():
        made = []
        for index, (flag_type, status) in enumerate(flags):
            body = f.project_flag(
                vocabulary=vocabulary,
                subject=reference(people[role]),
                author=school,
                flag_type=flag_type,
                status=status,
                start=days_ago(300 - index * 10),
                reason="entered-in-error" if status == "entered-in-error" else "plan-ended",
            )
            made.append((await create(client, body))["id"])
        people[f"flags-{role}"] = {"ids": made}
    stray = f.project_flag(
        vocabulary=vocabulary,
        subject=reference(people["stranger"]),
        author=school,
        flag_type="domestic-abuse-in-household",
    )
    await create(client, stray)


def _active_flags(people: dict[str, dict[str, Any]], role: str) -> set[str]:
    ids = people[f"flags-{role}"]["ids"]
    return {ids[i] for i, (_, status) in enumerate(FLAGS[role]) if status == "active"}


async def test_family_of_eight_with_forty_flags_in_one_request(
    client: httpx.AsyncClient, vocabulary: Vocabulary, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = await _family_of_eight(client, vocabulary)
    searches = []
    real_search = storage_query.search

    async def counted(*args: Any) -> Any:
        searches.append(args[1].resource_type)
        return await real_search(*args)

    monkeypatch.setattr(storage_query, "search", counted)
    bundle = await summarise(client, summary_url(people["child"]))
    monkeypatch.undo()
    assert len(searches) <= 9, searches
    relatives = ["father", "mother", "stepfather", "sister", "brother", "stepsister", "half"]
    assert members(bundle, "Patient") == {people[r]["id"] for r in ["child", *relatives]}
    expected_flags = _active_flags(people, "child").union(
        *(_active_flags(people, r) for r in relatives)
    )
    assert members(bundle, "Flag") == expected_flags
    assert members(bundle, "RelatedPerson") == {
        people[f"rp-{r}"]["id"]
        for r in ["father", "mother", "stepfather", "sister", "brother", "stepsister", "gran"]
    }
    urls = [e["fullUrl"] for e in bundle.get("entry", [])]
    assert len(urls) == len(set(urls))
    found = warnings(bundle)
    assert set(found) == {"repeated-was-not-brought", "household-risk", "sibling-subject-to-plan"}
    siblings_flagged = {
        entry_of(bundle, e)["id"] for i in found["sibling-subject-to-plan"] for e in i["expression"]
    }
    plans = {people["flags-sister"]["ids"][0], people["flags-half"]["ids"][0]}
    assert plans <= siblings_flagged
    assert people["half"]["id"] in siblings_flagged


async def test_sibling_is_found_from_either_child(client: httpx.AsyncClient) -> None:
    amy = await create(client, f.patient(nhs=f.nhs_number(40)))
    ben = await create(client, f.patient(nhs=f.nhs_number(41), given="Ben"))
    await create(
        client,
        f.related_person(patient=reference(amy), relationship="HBRO", nhs=f.nhs_number(41)),
    )
    from_amy = await summarise(client, summary_url(amy))
    from_ben = await summarise(client, summary_url(ben))
    assert members(from_amy, "Patient") == {amy["id"], ben["id"]}
    assert members(from_ben, "Patient") == {amy["id"], ben["id"]}
    assert members(from_ben, "RelatedPerson") == set()


async def test_deleted_and_inactive_records_are_left_out(
    client: httpx.AsyncClient, vocabulary: Vocabulary
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(50)))
    sister = await create(client, f.patient(nhs=f.nhs_number(51), given="Sis"))
    brother = await create(client, f.patient(nhs=f.nhs_number(52), given="Bro"))
    practice = await create(client, f.organization())
    for relative, code in ((sister, "SIS"), (brother, "BRO")):
        nhs = relative["identifier"][0]["value"]
        await create(client, f.related_person(patient=reference(child), relationship=code, nhs=nhs))
    gone_rp = await create(client, f.related_person(patient=reference(child), relationship="MTH"))
    gone_flag = await create(client, clinical_flag(subject=reference(child)))
    gone_condition = await create(client, f.condition(subject=reference(child)))
    ended = await create(
        client,
        f.project_flag(
            vocabulary=vocabulary,
            subject=reference(sister),
            author=reference(practice),
            flag_type=codes.CHILD_PROTECTION_PLAN,
            status="inactive",
            end=days_ago(1),
        ),
    )
    resolved = await create(
        client,
        f.condition(subject=reference(child))
        | {
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "resolved",
                    }
                ]
            }
        },
    )
    kept = await create(client, clinical_flag(subject=reference(child)))
    for deleted in (brother, gone_rp, gone_flag, gone_condition):
        response = await client.delete(f"/{deleted['resourceType']}/{deleted['id']}")
        assert response.status_code == 200, response.text
    bundle = await summarise(client, summary_url(child))
    assert members(bundle, "Patient") == {child["id"], sister["id"]}
    assert members(bundle, "Flag") == {kept["id"]}
    assert ended["id"] not in members(bundle, "Flag")
    assert members(bundle, "Condition") == set()
    assert resolved["id"] not in members(bundle, "Condition")
    assert gone_rp["id"] not in members(bundle, "RelatedPerson")
    assert "sibling-subject-to-plan" not in warnings(bundle)


async def test_warnings_point_at_their_entries(
    client: httpx.AsyncClient, vocabulary: Vocabulary
) -> None:
    child = await create(client, f.patient(nhs=f.nhs_number(60)))
    council = await create(client, f.organization(ods="LA1", name="Shire County Council"))
    clinic = await create(client, f.organization(ods="C1", name="Child Mental Health Service"))
    surgery = await create(client, f.organization(ods="G1", name="Riverside Surgery"))
    home = await create(
        client,
        f.project_flag(
            vocabulary=vocabulary,
            subject=reference(child),
            author=reference(council),
            flag_type=codes.ELECTIVE_HOME_EDUCATION,
            start="2026-02-01",
        ),
    )
    for organization in (clinic, surgery):
        await create(
            client,
            f.recorded_condition(
                vocabulary=vocabulary,
                subject=reference(child),
                organization=reference(organization),
            ),
        )
    for days in (20, 90):
        await create(
            client,
            f.project_flag(
                vocabulary=vocabulary,
                subject=reference(child),
                author=reference(surgery),
                flag_type=codes.WAS_NOT_BROUGHT,
                status="inactive",
                start=days_ago(days),
            ),
        )
    bundle = await summarise(client, summary_url(child))
    found = warnings(bundle)
    assert set(found) == {
        "no-father-recorded",
        "elective-home-education",
        "repeated-was-not-brought",
        "multiple-services-same-condition",
        "no-lead-professional",  # the council, the clinic and the surgery, and no lead
    }
    [no_lead] = found["no-lead-professional"]
    pointed = {entry_of(bundle, e)["id"] for e in no_lead["expression"]}
    assert {child["id"], home["id"]} <= pointed
    assert "recorded by 3 services" in no_lead["details"]["text"]
    [education] = found["elective-home-education"]
    assert entry_of(bundle, education["expression"][0])["id"] == home["id"]
    assert "Shire County Council" in education["details"]["text"]
    assert "2026-02-01" in education["details"]["text"]
    [services] = found["multiple-services-same-condition"]
    assert {entry_of(bundle, e)["resourceType"] for e in services["expression"]} == {"Condition"}
    assert "Riverside Surgery" in services["details"]["text"]
    [not_brought] = found["repeated-was-not-brought"]
    assert days_ago(20) in not_brought["details"]["text"]
    assert not_brought["expression"] == ["Bundle.entry[0].resource"]  # ended flags: not entries
    assert [entry_of(bundle, e)["id"] for e in found["no-father-recorded"][0]["expression"]] == [
        child["id"]
    ]
