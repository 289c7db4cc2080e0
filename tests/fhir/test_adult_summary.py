"""`$safeguarding-summary` of a parent or carer through HTTP: the children whose records link
the adult, with their active safeguarding flags, the warnings about their plans and an
authority of another district, and what a local authority not responsible for a child may not
see of it through the adult's summary."""

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.flags import codes
from app.settings import Settings
from tests import factories as f
from tests.callers import app_client_for, scoped
from tests.conftest import app_context
from tests.fhir.summaries import entry_of, members, summarise, summary_url, warnings
from tests.http import create, reference


def _with_district(body: dict[str, Any], district: str) -> dict[str, Any]:
    return body | {"address": [{"use": "home", "line": ["1 High Street"], "district": district}]}


@dataclass
class Household:
    """A mother in Leeds, her daughter on Bradford's child protection plan, her son with no
    flag, and the two councils."""

    mother: dict[str, Any]
    daughter: dict[str, Any]
    son: dict[str, Any]
    plan: dict[str, Any]
    leeds: dict[str, Any]
    bradford: dict[str, Any]


async def _household(client: httpx.AsyncClient, app: FastAPI, plan: str) -> Household:
    vocabulary = app_context(app).vocabulary
    leeds = await create(
        client, _with_district(f.organization(ods="9LE", name="Leeds City Council"), "Leeds")
    )
    bradford = await create(
        client, _with_district(f.organization(ods="9BD", name="Bradford Council"), "Bradford")
    )
    mum_nhs = f.nhs_number(610)
    adult = f.patient(nhs=mum_nhs, given="Jane", birth_date="1991-05-02")
    mother = await create(client, _with_district(adult, "Leeds"))
    extension = {
        "url": vocabulary.responsible_local_authority_extension,
        "valueReference": {"reference": reference(bradford)},
    }
    daughter = await create(
        client, f.patient(nhs=f.nhs_number(620), given="Amy") | {"extension": [extension]}
    )
    son = await create(client, f.patient(nhs=f.nhs_number(630), given="Ben", gender="male"))
    for child, code in ((daughter, "MTH"), (son, "NMTH")):
        await create(
            client, f.related_person(patient=reference(child), relationship=code, nhs=mum_nhs)
        )
    flag = f.project_flag(
        vocabulary=vocabulary,
        subject=reference(daughter),
        author=reference(bradford),
        flag_type=plan,
    )
    return Household(mother, daughter, son, await create(client, flag), leeds, bradford)


@pytest.mark.parametrize(
    "plan",
    [codes.CHILD_PROTECTION_PLAN, codes.UNBORN_CHILD_PROTECTION_PLAN, codes.LOOKED_AFTER_CHILD],
)
async def test_a_mothers_summary_lists_her_children_and_warns_of_a_plan_elsewhere(
    client: httpx.AsyncClient, app: FastAPI, plan: str
) -> None:
    home = await _household(client, app, plan)

    bundle = await summarise(client, summary_url(home.mother))

    assert members(bundle, "Patient") == {home.mother["id"], home.daughter["id"], home.son["id"]}
    assert members(bundle, "Flag") == {home.plan["id"]}
    found = warnings(bundle)
    assert sorted(found) == ["child-on-register-elsewhere", "child-subject-to-plan"]
    [subject_to_plan] = found["child-subject-to-plan"]
    text = subject_to_plan["details"]["text"]
    assert text.startswith(f"Amy Smith (Patient/{home.daughter['id']}), whose record names Jane")
    assert f"since 2026-01-10 (Flag/{home.plan['id']}, recorded by Bradford Council" in text
    pointed = [entry_of(bundle, e)["id"] for e in subject_to_plan["expression"]]
    assert pointed == [home.daughter["id"], home.plan["id"]]
    [elsewhere] = found["child-on-register-elsewhere"]
    assert "while Jane Smith" in elsewhere["details"]["text"]
    assert "lives in Leeds" in elsewhere["details"]["text"]


async def test_a_mother_whose_children_have_no_plan_has_no_warning(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    home = await _household(client, app, "child-in-need")

    bundle = await summarise(client, summary_url(home.mother))

    assert members(bundle, "Patient") == {home.mother["id"], home.daughter["id"], home.son["id"]}
    assert warnings(bundle) == {}


async def test_the_childs_summary_is_unchanged_by_the_mothers_link(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    home = await _household(client, app, codes.CHILD_PROTECTION_PLAN)

    bundle = await summarise(client, summary_url(home.daughter))

    assert "child-subject-to-plan" not in warnings(bundle)
    assert home.son["id"] not in members(bundle, "Patient")  # a sibling only through the mother


async def test_an_authority_sees_no_child_it_is_not_responsible_for_through_the_adult(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    home = await _household(client, app, codes.CHILD_PROTECTION_PLAN)
    vocabulary = app_context(app).vocabulary
    risk = f.project_flag(
        vocabulary=vocabulary,
        subject=reference(home.mother),
        author=reference(home.leeds),
        flag_type=codes.DOMESTIC_ABUSE,
    )
    await create(client, risk)  # Leeds is responsible for the mother, not for Amy or Ben
    leeds = scoped("system/*.rs", "local-authority", home.leeds["id"])
    bradford = scoped("system/*.rs", "local-authority", home.bradford["id"])

    async with app_client_for(settings, leeds) as as_leeds:
        seen_by_leeds = await summarise(as_leeds, summary_url(home.mother))
    async with app_client_for(settings, bradford) as as_bradford:
        refused = await as_bradford.get(summary_url(home.mother))

    assert members(seen_by_leeds, "Patient") == {home.mother["id"]}
    assert home.plan["id"] not in members(seen_by_leeds, "Flag")
    assert sorted(warnings(seen_by_leeds)) == ["household-risk"]
    assert refused.status_code == 404  # Bradford is not responsible for the mother
