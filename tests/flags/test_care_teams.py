"""A child's lead professional as a CareTeam (`app.flags.care_teams`) through HTTP: written
under the writer's organisation, searched and versioned like the other types, at most one
active lead per child even between concurrent writers, its rules refused with where, and
another organisation unable to reach or change it."""

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.flags.codes import LEAD_PROFESSIONAL, Vocabulary
from app.settings import Settings
from tests import factories as f
from tests.callers import app_client_for, scoped
from tests.conftest import app_context
from tests.http import FHIR_JSON, create, post_bundle, reference


def care_team(
    vocabulary: Vocabulary,
    *,
    subject: str,
    member: dict[str, Any],
    status: str = "active",
    roles: int = 1,
) -> dict[str, Any]:
    """A CareTeam naming `member` lead professional `roles` times (0: as a plain member)."""
    role = {"coding": [{"system": vocabulary.care_team_role_system, "code": LEAD_PROFESSIONAL}]}
    participants = [{"role": [role], "member": member} for _ in range(roles)]
    return {
        "resourceType": "CareTeam",
        "status": status,
        "subject": {"reference": subject},
        "period": {"start": "2026-02-01"},
        "participant": participants or [{"member": member}],
    }


@pytest.fixture
def vocabulary(app: FastAPI) -> Vocabulary:
    return app_context(app).vocabulary


async def _child_and_services(
    client: httpx.AsyncClient, serial: int = 700
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    child = reference(await create(client, f.patient(nhs=f.nhs_number(serial))))
    gp = await create(client, f.organization(ods="A81001", name="Riverside Surgery"))
    school_nurse = await create(client, f.organization(ods="RY9", name="Community Health"))
    return child, gp, school_nurse


async def test_a_lead_professional_is_recorded_under_the_writers_organisation(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings, vocabulary: Vocabulary
) -> None:
    child, gp, _ = await _child_and_services(client)
    body = care_team(vocabulary, subject=child, member={"reference": reference(gp)})

    async with app_client_for(settings, scoped("system/*.cruds", "health", gp["id"])) as as_gp:
        made = await create(as_gp, body)
        found = (await as_gp.get("/CareTeam", params={"patient": child, "status": "active"})).json()
        history = (await as_gp.get(f"/CareTeam/{made['id']}/_history")).json()
        in_compartment = (await as_gp.get(f"/{child}/CareTeam")).json()

    assert made["managingOrganization"] == [{"reference": reference(gp)}]
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [made["id"]]
    assert [e["resource"]["id"] for e in in_compartment.get("entry", [])] == [made["id"]]
    assert [e["resource"]["id"] for e in history.get("entry", [])] == [made["id"]]


async def test_a_second_active_lead_for_a_child_is_refused_until_the_first_ends(
    client: httpx.AsyncClient, vocabulary: Vocabulary
) -> None:
    child, gp, nurse = await _child_and_services(client)
    first = await create(
        client, care_team(vocabulary, subject=child, member={"reference": reference(gp)})
    )
    second = care_team(vocabulary, subject=child, member={"reference": reference(nurse)})

    refused = await client.post("/CareTeam", json=second, headers={"Content-Type": FHIR_JSON})
    ended = first | {"status": "inactive", "period": {"start": "2026-02-01", "end": "2026-06-01"}}
    put = await client.put(
        f"/CareTeam/{first['id']}", json=ended, headers={"Content-Type": FHIR_JSON}
    )
    accepted = await client.post("/CareTeam", json=second, headers={"Content-Type": FHIR_JSON})

    assert refused.status_code == 409, refused.text
    issue = refused.json()["issue"][0]
    assert f"CareTeam/{first['id']}" in issue["diagnostics"]
    assert issue["expression"] == ["CareTeam.participant"]
    assert (put.status_code, accepted.status_code) == (200, 201)


async def test_a_team_without_a_lead_claims_nothing(
    client: httpx.AsyncClient, vocabulary: Vocabulary
) -> None:
    child, gp, nurse = await _child_and_services(client)
    await create(
        client, care_team(vocabulary, subject=child, member={"reference": reference(gp)}, roles=0)
    )
    await create(
        client, care_team(vocabulary, subject=child, member={"reference": reference(nurse)})
    )


async def test_of_two_concurrent_leads_for_a_child_one_is_refused(
    client: httpx.AsyncClient, vocabulary: Vocabulary
) -> None:
    child, gp, nurse = await _child_and_services(client)
    bodies = [
        care_team(vocabulary, subject=child, member={"reference": reference(service)})
        for service in (gp, nurse)
    ]
    answers = await asyncio.gather(
        *(client.post("/CareTeam", json=b, headers={"Content-Type": FHIR_JSON}) for b in bodies)
    )
    assert sorted(a.status_code for a in answers) == [201, 409]


async def test_a_practitioner_elsewhere_may_lead(
    client: httpx.AsyncClient, vocabulary: Vocabulary
) -> None:
    child, _, _ = await _child_and_services(client)
    for member in (
        {"reference": "Practitioner/hcpc-sw12345"},
        {"reference": "https://directory.example.nhs.uk/fhir/Practitioner/77"},
        {
            "type": "Practitioner",
            "identifier": {"system": "https://www.hcpc-uk.org", "value": "SW1"},
        },
    ):
        made = await create(
            client, care_team(vocabulary, subject=child, member=member, status="proposed")
        )
        assert made["participant"][0]["member"] == member


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        ({"member": "Patient"}, "CareTeam.participant[0].member"),
        ({"roles": 2}, "CareTeam.participant[1].role"),
        ({"subject": "Organization/x"}, "CareTeam.subject"),
    ],
)
async def test_a_care_team_breaking_a_rule_is_422_saying_where(
    client: httpx.AsyncClient, vocabulary: Vocabulary, change: dict[str, Any], expression: str
) -> None:
    child, gp, _ = await _child_and_services(client)
    member = {"reference": child if change.get("member") else reference(gp)}
    body = care_team(
        vocabulary,
        subject=change.get("subject", child),
        member=member,
        roles=change.get("roles", 1),
    )
    response = await client.post("/CareTeam", json=body, headers={"Content-Type": FHIR_JSON})
    assert response.status_code in (400, 422), response.text
    assert any(expression in i.get("expression", []) for i in response.json()["issue"])
    assert (await client.get("/CareTeam")).json().get("entry", []) == []


async def test_another_organisation_cannot_reach_or_change_a_childs_care_team(
    client: httpx.AsyncClient, settings: Settings, vocabulary: Vocabulary
) -> None:
    child, gp, nurse = await _child_and_services(client)
    council = await create(client, f.organization(ods="9LE", name="Leeds City Council"))
    async with app_client_for(settings, scoped("system/*.cruds", "health", gp["id"])) as as_gp:
        made = await create(
            as_gp, care_team(vocabulary, subject=child, member={"reference": reference(gp)})
        )
    ended = made | {"status": "inactive"}
    async with app_client_for(
        settings, scoped("system/*.cruds", "health", nurse["id"])
    ) as as_nurse:
        changed = await as_nurse.put(
            f"/CareTeam/{made['id']}", json=ended, headers={"Content-Type": FHIR_JSON}
        )
    council_caller = scoped("system/*.cruds", "local-authority", council["id"])
    async with app_client_for(settings, council_caller) as as_council:
        read = await as_council.get(f"/CareTeam/{made['id']}")
        searched = (await as_council.get("/CareTeam", params={"patient": child})).json()
        history = await as_council.get(f"/CareTeam/{made['id']}/_history")

    assert changed.status_code == 403
    assert read.status_code == 404  # the council is not responsible for the child
    assert searched.get("entry", []) == []
    assert history.status_code == 404


# the summary: the active CareTeam, and no-lead-professional


async def _seen_by_two_services(
    client: httpx.AsyncClient, vocabulary: Vocabulary, serial: int = 700
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A child with a flag raised by the council and a condition recorded by the GP."""
    child, gp, _ = await _child_and_services(client, serial)
    council = await create(client, f.organization(ods="9LE", name="Leeds City Council"))
    flag = f.project_flag(
        vocabulary=vocabulary, subject=child, author=reference(council), flag_type="child-in-need"
    )
    await create(client, flag)
    recorded = {
        "url": vocabulary.recording_organization_extension,
        "valueReference": {"reference": reference(gp)},
    }
    await create(client, f.condition(subject=child) | {"extension": [recorded]})
    return child, gp, council


async def _summary(client: httpx.AsyncClient, child: str) -> dict[str, Any]:
    response = await client.get(f"/{child}/$safeguarding-summary")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _codes(bundle: dict[str, Any]) -> list[str]:
    outcome = bundle.get("entry", [])[-1]["resource"]
    return [i["details"]["coding"][0]["code"] for i in outcome["issue"] if "coding" in i["details"]]


async def test_a_child_seen_by_two_services_without_a_lead_is_warned_naming_them(
    client: httpx.AsyncClient, vocabulary: Vocabulary
) -> None:
    child, gp, council = await _seen_by_two_services(client, vocabulary)

    bundle = await _summary(client, child)

    assert "no-lead-professional" in _codes(bundle)
    [issue] = [
        i
        for i in bundle.get("entry", [])[-1]["resource"]["issue"]
        if i["details"]["coding"][0]["code"] == "no-lead-professional"
    ]
    text = issue["details"]["text"]
    assert "recorded by 2 services" in text
    assert f"Leeds City Council ({reference(council)}: Flag/" in text
    assert f"Riverside Surgery ({reference(gp)}: Condition/" in text


async def test_an_active_lead_is_in_the_summary_and_quiets_the_warning(
    client: httpx.AsyncClient, vocabulary: Vocabulary
) -> None:
    child, _, council = await _seen_by_two_services(client, vocabulary)
    team = await create(
        client, care_team(vocabulary, subject=child, member={"reference": reference(council)})
    )

    bundle = await _summary(client, child)

    assert "no-lead-professional" not in _codes(bundle)
    teams = [
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e["resource"]["resourceType"] == "CareTeam"
    ]
    assert teams == [team["id"]]


async def test_one_service_or_an_ended_lead_changes_the_warning_as_it_should(
    client: httpx.AsyncClient, vocabulary: Vocabulary
) -> None:
    child, gp, _ = await _child_and_services(client)
    flag = f.project_flag(
        vocabulary=vocabulary, subject=child, author=reference(gp), flag_type="child-in-need"
    )
    await create(client, flag)
    assert "no-lead-professional" not in _codes(await _summary(client, child))  # one service

    child, _, council = await _seen_by_two_services(client, vocabulary, serial=710)
    team = care_team(vocabulary, subject=child, member={"reference": reference(council)})
    await create(client, team | {"status": "inactive"})
    assert "no-lead-professional" in _codes(await _summary(client, child))  # the lead ended


async def test_no_write_path_gives_a_child_a_second_active_lead(
    client: httpx.AsyncClient, vocabulary: Vocabulary
) -> None:
    child, gp, nurse = await _child_and_services(client)
    leads = [
        care_team(vocabulary, subject=child, member={"reference": reference(s)})
        for s in (gp, nurse)
    ]
    together = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": lead, "request": {"method": "POST", "url": "CareTeam"}} for lead in leads
        ],
    }
    in_one_transaction = await post_bundle(client, together)
    assert in_one_transaction.status_code == 409, in_one_transaction.text
    assert (await client.get("/CareTeam")).json().get("entry", []) == []  # nothing half-written

    first = await create(client, leads[0])
    second = await create(client, leads[1] | {"status": "proposed"})
    reactivated = await client.put(
        f"/CareTeam/{second['id']}",
        json=second | {"status": "active"},
        headers={"Content-Type": FHIR_JSON},
    )
    patched = await client.patch(
        f"/CareTeam/{second['id']}",
        json=[{"op": "replace", "path": "/status", "value": "active"}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert (reactivated.status_code, patched.status_code) == (409, 409)
    assert f"CareTeam/{first['id']}" in reactivated.json()["issue"][0]["diagnostics"]
