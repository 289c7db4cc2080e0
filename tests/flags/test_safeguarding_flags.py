"""Safeguarding Flag rules on every write path (create, update, patch, conditional update,
transaction and batch entries), on both databases: each refusal is 422 (409 for a second
active plan) naming the element, and writes nothing."""

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from tests import factories as f
from tests.http import create, outcome_expressions, post_bundle, reference, refusal_kind

BASE = "http://test/fhir"
REMOVAL_URL = f"{BASE}/StructureDefinition/flag-removal-reason"
PLAN_ENDED = (REMOVAL_URL, f"{BASE}/CodeSystem/flag-removal-reason|plan-ended")
FLAG_TYPES = f"{BASE}/CodeSystem/safeguarding-flag-type"
JSON_PATCH = {"content-type": "application/json-patch+json"}


async def _family(client: httpx.AsyncClient) -> tuple[str, str]:
    """A child and a local authority: (Patient reference, Organization reference)."""
    child = await create(client, f.patient())
    council = await create(client, f.organization(ods="E1000", name="County Council"))
    return reference(child), reference(council)


def _project(code: str, display: str) -> dict[str, str]:
    return {"system": FLAG_TYPES, "code": code, "display": display}


def _with(flag: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The flag with elements replaced (None removes one)."""
    changed = {**flag, **changes}
    return {k: v for k, v in changed.items() if v is not None}


BROKEN: list[tuple[str, Any, str]] = [
    (
        "category-not-safety",
        lambda fl: _with(
            fl, category=[{"coding": [{"system": f.FLAG_CATEGORY, "code": "clinical"}]}]
        ),
        "Flag.category",
    ),
    (
        "code-not-safeguarding",
        lambda fl: _with(fl, code={"coding": [{"system": FLAG_TYPES, "code": "no-such-type"}]}),
        "Flag.code",
    ),
    (
        "code-of-two-types",
        lambda fl: _with(
            fl,
            code={
                "coding": [
                    *fl["code"]["coding"],
                    {"system": FLAG_TYPES, "code": "safeguarding-concern"},
                ]
            },
        ),
        "Flag.code",
    ),
    ("author-missing", lambda fl: _with(fl, author=None), "Flag.author"),
    ("author-a-patient", lambda fl: _with(fl, author=fl["subject"]), "Flag.author"),
    ("subject-an-organization", lambda fl: _with(fl, subject=fl["author"]), "Flag.subject"),
    ("no-period-start", lambda fl: _with(fl, period={"end": "2026-02-01"}), "Flag.period.start"),
    (
        "inactive-without-end",
        lambda fl: _with(fl, status="inactive", extension=_reason("plan-ended")),
        "Flag.period.end",
    ),
    (
        "inactive-without-reason",
        lambda fl: _with(
            fl, status="inactive", period={"start": "2026-01-10", "end": "2026-02-01"}
        ),
        "Flag.extension",
    ),
    (
        "entered-in-error-without-reason",
        lambda fl: _with(fl, status="entered-in-error"),
        "Flag.extension",
    ),
    (
        "unknown-removal-reason",
        lambda fl: _with(fl, status="entered-in-error", extension=_reason("bored")),
        "Flag.extension[0].valueCodeableConcept",
    ),
]


def _reason(code: str) -> list[dict[str, Any]]:
    coding = {"system": f"{BASE}/CodeSystem/flag-removal-reason", "code": code}
    return [{"url": REMOVAL_URL, "valueCodeableConcept": {"coding": [coding]}}]


@pytest.mark.parametrize(("name", "breaks", "expression"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_a_broken_safeguarding_flag_is_refused_on_create(
    client: httpx.AsyncClient, name: str, breaks: Any, expression: str
) -> None:
    child, council = await _family(client)
    flag = breaks(f.safeguarding_flag(subject=child, author=council))
    response = await client.post("/Flag", json=flag)
    assert response.status_code == 422, response.text
    assert expression in outcome_expressions(response)
    assert (await client.get("/Flag")).json()["total"] == 0


@pytest.mark.parametrize(("name", "breaks", "expression"), BROKEN, ids=[b[0] for b in BROKEN])
async def test_a_broken_safeguarding_flag_fails_its_transaction(
    client: httpx.AsyncClient, name: str, breaks: Any, expression: str
) -> None:
    child, council = await _family(client)
    good = f.safeguarding_flag(
        subject=child, author=council, code="764841000000100", display="Looked after child"
    )
    flag = breaks(f.safeguarding_flag(subject=child, author=council))
    entries = [
        f.entry(method="POST", url="Flag", resource=good),
        f.entry(method="POST", url="Flag", resource=flag),
    ]
    response = await post_bundle(client, f.bundle(entries=entries))
    assert response.status_code == 422, response.text
    assert f"Bundle.entry[1].resource{expression.removeprefix('Flag')}" in outcome_expressions(
        response
    )
    assert (await client.get("/Flag")).json()["total"] == 0


async def test_valid_safeguarding_flags_by_snomed_and_project_code_are_accepted(
    client: httpx.AsyncClient,
) -> None:
    child, council = await _family(client)
    snomed = f.safeguarding_flag(subject=child, author=council)
    ehe = f.safeguarding_flag(subject=child, author=council)
    ehe["code"] = {"coding": [_project("elective-home-education", "Elective home education")]}
    wnb = f.safeguarding_flag(
        subject=child,
        author=council,
        status="inactive",
        start="2026-03-02",
        end="2026-03-09",
        removal=PLAN_ENDED,
    )
    wnb["code"] = {"coding": [_project("was-not-brought", "Was not brought to appointment")]}
    for flag in (snomed, ehe, wnb):
        response = await client.post("/Flag", json=flag)
        assert response.status_code == 201, response.text
    clinical = await client.post("/Flag", json=f.flag(subject=child))  # not safeguarding
    assert clinical.status_code == 201, clinical.text


@pytest.mark.parametrize("change", ["code", "subject"])
async def test_code_and_subject_cannot_change(client: httpx.AsyncClient, change: str) -> None:
    child, council = await _family(client)
    other_child = reference(await create(client, f.patient(given="Ben")))
    flag = await create(client, f.safeguarding_flag(subject=child, author=council))
    changed = (
        {**flag, "subject": {"reference": other_child}}
        if change == "subject"
        else {**flag, "code": {"coding": [_project("neglect-concern", "Neglect concern")]}}
    )
    response = await client.put(f"/Flag/{flag['id']}", json=changed)
    assert response.status_code == 422, response.text
    assert outcome_expressions(response) == [f"Flag.{change}"]
    patch = [{"op": "replace", "path": f"/{change}", "value": changed[change]}]
    patched = await client.patch(
        f"/Flag/{flag['id']}", content=orjson.dumps(patch), headers=JSON_PATCH
    )
    assert patched.status_code == 422, patched.text
    assert (await client.get(f"/Flag/{flag['id']}")).json()["meta"]["versionId"] == "1"


async def test_ending_a_flag_is_a_status_change_with_end_and_reason(
    client: httpx.AsyncClient,
) -> None:
    child, council = await _family(client)
    flag = await create(client, f.safeguarding_flag(subject=child, author=council))
    ended = f.safeguarding_flag(
        subject=child, author=council, status="inactive", end="2026-05-01", removal=PLAN_ENDED
    )
    response = await client.put(f"/Flag/{flag['id']}", json=ended | {"id": flag["id"]})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "inactive"


ONE_ACTIVE = [("child-protection-plan", "342191000000101"), ("elective-home-education", None)]


def _one_active(kind: str, snomed: str | None, child: str, council: str) -> dict[str, Any]:
    flag = f.safeguarding_flag(subject=child, author=council)
    if snomed is None:
        flag["code"] = {"coding": [_project(kind, kind.replace("-", " ").capitalize())]}
    return flag


@pytest.mark.parametrize(("kind", "snomed"), ONE_ACTIVE, ids=[k for k, _ in ONE_ACTIVE])
async def test_a_second_active_plan_or_home_education_flag_is_409_naming_the_first(
    client: httpx.AsyncClient, kind: str, snomed: str | None
) -> None:
    child, council = await _family(client)
    first = await create(client, _one_active(kind, snomed, child, council))
    second = await client.post("/Flag", json=_one_active(kind, snomed, child, council))
    assert second.status_code == 409, second.text
    assert f"Flag/{first['id']}" in second.text
    assert outcome_expressions(second) == ["Flag.code"]
    assert refusal_kind(second) == ("duplicate", "DUPLICATE_REJECTED", None)  # not to retry
    in_bundle = await post_bundle(
        client,
        f.bundle(
            entries=[
                f.entry(
                    method="POST", url="Flag", resource=_one_active(kind, snomed, child, council)
                )
            ]
        ),
    )
    assert in_bundle.status_code == 409, in_bundle.text
    ended = _with(
        first,
        status="inactive",
        period={"start": "2026-01-10", "end": "2026-04-01"},
        extension=_reason("plan-ended"),
    )
    assert (await client.put(f"/Flag/{first['id']}", json=ended)).status_code == 200
    again = await client.post("/Flag", json=_one_active(kind, snomed, child, council))
    assert again.status_code == 201, again.text
    other_child = reference(await create(client, f.patient(given="Ben")))
    theirs = await client.post("/Flag", json=_one_active(kind, snomed, other_child, council))
    assert theirs.status_code == 201, theirs.text


async def test_a_safeguarding_flag_is_ended_never_deleted(client: httpx.AsyncClient) -> None:
    child, council = await _family(client)
    plan = await create(client, f.safeguarding_flag(subject=child, author=council))
    deleted = await client.delete(f"/Flag/{plan['id']}")
    assert deleted.status_code == 409, deleted.text
    assert refusal_kind(deleted) == ("business-rule", None, None)  # nothing is duplicated
    assert (await client.get(f"/Flag/{plan['id']}")).status_code == 200
    in_bundle = await post_bundle(
        client, f.bundle(entries=[f.entry(method="DELETE", url=f"Flag/{plan['id']}")])
    )
    assert in_bundle.status_code == 409, in_bundle.text
    withdrawn = _with(plan, status="entered-in-error", extension=_reason("entered-in-error"))
    assert (await client.put(f"/Flag/{plan['id']}", json=withdrawn)).status_code == 200
    again = await client.post("/Flag", json=f.safeguarding_flag(subject=child, author=council))
    assert again.status_code == 201, again.text  # entered-in-error released the claim
    clinical = await create(client, f.flag(subject=child))
    assert (await client.delete(f"/Flag/{clinical['id']}")).status_code == 200


async def test_two_plans_in_one_transaction_fail_it(client: httpx.AsyncClient) -> None:
    child, council = await _family(client)
    plan = f.safeguarding_flag(subject=child, author=council)
    entries = [
        f.entry(method="POST", url="Flag", resource=plan),
        f.entry(method="POST", url="Flag", resource=plan),
    ]
    response = await post_bundle(client, f.bundle(entries=entries))
    assert response.status_code == 409, response.text
    assert (await client.get("/Flag")).json()["total"] == 0


async def test_concurrent_plans_for_one_child_give_exactly_one(client: httpx.AsyncClient) -> None:
    child, council = await _family(client)
    plan = f.safeguarding_flag(subject=child, author=council)
    answers = await asyncio.gather(*(client.post("/Flag", json=plan) for _ in range(10)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 9
    assert (await client.get("/Flag", params={"status": "active"})).json()["total"] == 1
