"""Transaction Bundles: all or nothing, processed in the spec's order.

Spec: http://hl7.org/fhir/R4/http.html#transaction
"""

import base64
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests import factories as f
from tests.conftest import seal_interval
from tests.http import (
    BASE,
    FHIR_JSON,
    answered_entries,
    create,
    outcome_expressions,
    post_bundle,
    reference,
    stale_if_match,
)
from tests.tokens import bearer

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
LOCATION = re.compile(
    r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})/_history/(?P<v>\d+)$"
)
RESPONSE = "transaction-response"
FLAGS = "https://example.org/flags"
RELATIVE_EXTENSION = "https://example.org/fhir/StructureDefinition/flag-related-person"


def urn_uuid() -> str:
    """A fresh urn:uuid for an entry's fullUrl."""
    return f"urn:uuid:{uuid.uuid4()}"


def urn_oid() -> str:
    """A fresh urn:oid for an entry's fullUrl."""
    return f"urn:oid:2.25.{uuid.uuid4().int}"


def nhs_query(number: str) -> str:
    """The conditional query of a Patient's NHS number."""
    return f"identifier={f.NHS}|{number}"


def statuses(entries: list[dict[str, Any]]) -> list[str]:
    """response.status of each answered entry."""
    return [e["response"]["status"] for e in entries]


def located(entry: dict[str, Any]) -> tuple[str, str, int]:
    """(type, id, version) named by an answered entry's response.location."""
    match = LOCATION.match(entry["response"]["location"])
    assert match is not None, entry["response"]
    return match["type"], match["id"], int(match["v"])


def json_patch(operations: list[dict[str, Any]]) -> dict[str, Any]:
    """A JSON Patch document carried in a Binary, as a transaction entry holds it."""
    return {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(json.dumps(operations).encode()).decode(),
    }


async def transaction(
    client: httpx.AsyncClient, *entries: dict[str, Any], **headers: str
) -> httpx.Response:
    """POST a transaction Bundle of these entries."""
    return await post_bundle(client, f.bundle(entries=list(entries)), **headers)


async def stored(client: httpx.AsyncClient, ref: str) -> dict[str, Any]:
    """The current version of `Type/id`, which must exist."""
    response = await client.get(f"/{ref}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def total(client: httpx.AsyncClient, resource_type: str, **params: str) -> int:
    """How many resources of a type match a search (counted exactly)."""
    response = await client.get(f"/{resource_type}", params={**params, "_total": "accurate"})
    assert response.status_code == 200, response.text
    count: int = response.json()["total"]
    return count


async def history_size(client: httpx.AsyncClient, path: str = "_history") -> int:
    """How many versions a history holds (system history by default)."""
    response = await client.get(f"/{path}", params={"_count": "500"})
    assert response.status_code == 200, response.text
    return len(response.json().get("entry", []))


def match_ids(searchset: dict[str, Any]) -> list[str]:
    """Ids of the matches in a searchset Bundle."""
    assert searchset["resourceType"] == "Bundle" and searchset["type"] == "searchset", searchset
    return [
        e["resource"]["id"]
        for e in searchset.get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match"
    ]


def assert_outcome(response: httpx.Response, status: int) -> list[str]:
    """The response is an OperationOutcome with this status; its expressions."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    return outcome_expressions(response)


# --- responses ---------------------------------------------------------------------------


async def test_entries_are_answered_in_request_order_with_each_interactions_status(
    client: httpx.AsyncClient,
) -> None:
    read = await create(client, f.patient(nhs=f.nhs_number(101)))
    updated = await create(client, f.patient(nhs=f.nhs_number(102)))
    matched = await create(client, f.patient(nhs=f.nhs_number(103)))
    kept = await create(client, f.flag(subject=reference(read), identifier="kept"))
    doomed = await create(client, f.flag(subject=reference(read), identifier="doomed"))
    table = [
        (f.entry(method="GET", url=reference(read)), "200 OK"),
        (f.entry(method="DELETE", url=reference(doomed)), "204 No Content"),
        (
            f.entry(
                method="PUT",
                url=reference(updated),
                resource=updated | {"name": [{"family": "Jones"}]},
            ),
            "200 OK",
        ),
        (f.entry(method="POST", url="Patient", resource=f.patient()), "201 Created"),
        (
            f.entry(
                method="POST",
                url="Patient",
                resource=f.patient(nhs=f.nhs_number(103), family="Other"),
                if_none_exist=nhs_query(f.nhs_number(103)),
            ),
            "200 OK",
        ),
        (f.entry(method="GET", url=f"Flag?patient={read['id']}"), "200 OK"),
    ]
    response = await transaction(client, *(e for e, _ in table))
    entries = answered_entries(response, RESPONSE)
    assert statuses(entries) == [status for _, status in table]
    assert entries[0]["resource"]["id"] == read["id"]
    assert entries[2]["resource"]["name"] == [{"family": "Jones"}]
    assert entries[4]["resource"]["id"] == matched["id"]
    assert match_ids(entries[5]["resource"]) == [kept["id"]]


async def test_written_entries_carry_location_etag_last_modified_full_url_and_resource(
    client: httpx.AsyncClient,
) -> None:
    existing = await create(client, f.patient(nhs=f.nhs_number(110)))
    response = await transaction(
        client,
        f.entry(method="POST", url="Patient", full_url=urn_uuid(), resource=f.patient()),
        f.entry(method="PUT", url=reference(existing), resource=existing | {"gender": "unknown"}),
    )
    entries = answered_entries(response, RESPONSE)
    for entry, expected_version in zip(entries, (1, 2), strict=True):
        resource_type, logical_id, version = located(entry)
        assert (resource_type, version) == ("Patient", expected_version)
        assert entry["response"]["etag"] == f'W/"{expected_version}"'
        assert INSTANT.match(entry["response"]["lastModified"]), entry["response"]
        assert entry["fullUrl"] == f"{BASE}/Patient/{logical_id}"
        assert entry["resource"]["id"] == logical_id
        assert entry["resource"]["meta"]["versionId"] == str(expected_version)
        assert await stored(client, f"Patient/{logical_id}") == entry["resource"]
    assert located(entries[1])[1] == existing["id"]


async def test_a_patch_entry_applies_a_json_patch_carried_in_a_binary(
    client: httpx.AsyncClient,
) -> None:
    child = await create(client, f.patient())
    patch = json_patch([{"op": "replace", "path": "/gender", "value": "male"}])
    response = await transaction(
        client, f.entry(method="PATCH", url=reference(child), resource=patch)
    )
    (entry,) = answered_entries(response, RESPONSE)
    assert entry["response"]["status"] == "200 OK"
    assert located(entry) == ("Patient", child["id"], 2)
    assert entry["resource"]["gender"] == "male"
    assert (await stored(client, reference(child)))["gender"] == "male"


@pytest.mark.parametrize(
    ("prefer", "has_resource", "has_outcome"),
    [
        (None, True, False),
        ("return=representation", True, False),
        ("return=minimal", False, False),
        ("return=OperationOutcome", False, True),
    ],
)
async def test_prefer_return_shapes_every_written_entry(
    client: httpx.AsyncClient, prefer: str | None, has_resource: bool, has_outcome: bool
) -> None:
    existing = await create(client, f.patient())
    headers = {} if prefer is None else {"prefer": prefer}
    response = await transaction(
        client,
        f.entry(method="POST", url="Patient", resource=f.patient()),
        f.entry(method="PUT", url=reference(existing), resource=existing | {"gender": "other"}),
        **headers,
    )
    entries = answered_entries(response, RESPONSE)
    assert statuses(entries) == ["201 Created", "200 OK"]
    for entry in entries:
        assert ("resource" in entry) == has_resource, entry
        assert ("outcome" in entry["response"]) == has_outcome, entry
        if has_outcome:
            assert entry["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert located(entry)[0] == "Patient"


# --- urn:uuid and urn:oid references -----------------------------------------------------


@pytest.mark.parametrize("new_urn", [urn_uuid, urn_oid], ids=["uuid", "oid"])
async def test_urn_references_are_rewritten_in_every_entry(
    client: httpx.AsyncClient, new_urn: Callable[[], str]
) -> None:
    child, father = new_urn(), new_urn()
    flag = f.flag(subject=child) | {
        "extension": [{"url": RELATIVE_EXTENSION, "valueReference": {"reference": father}}]
    }
    condition = f.condition(subject=child) | {
        "contained": [f.related_person(patient=child) | {"id": "father"}],
        "asserter": {"reference": "#father"},
    }
    response = await transaction(
        client,
        f.entry(method="POST", url="Patient", full_url=child, resource=f.patient()),
        f.entry(
            method="POST",
            url="RelatedPerson",
            full_url=father,
            resource=f.related_person(patient=child),
        ),
        f.entry(method="POST", url="Condition", full_url=new_urn(), resource=condition),
        f.entry(method="POST", url="Flag", full_url=new_urn(), resource=flag),
    )
    entries = answered_entries(response, RESPONSE)
    assert statuses(entries) == ["201 Created"] * 4
    child_ref, father_ref, condition_ref, flag_ref = (
        f"{t}/{i}" for t, i, _ in map(located, entries)
    )
    assert child_ref.startswith("Patient/") and father_ref.startswith("RelatedPerson/")

    stored_flag = await stored(client, flag_ref)
    assert stored_flag["subject"] == {"reference": child_ref}
    assert stored_flag["extension"][0]["valueReference"] == {"reference": father_ref}
    assert (await stored(client, father_ref))["patient"] == {"reference": child_ref}
    stored_condition = await stored(client, condition_ref)
    assert stored_condition["subject"] == {"reference": child_ref}
    assert stored_condition["contained"][0]["patient"] == {"reference": child_ref}
    assert stored_condition["asserter"] == {"reference": "#father"}
    child_id = child_ref.split("/")[1]
    assert await total(client, "Flag", patient=child_id) == 1
    assert await total(client, "Condition", patient=child_id) == 1


# --- processing order: DELETE, POST, PUT/PATCH, GET ----------------------------------------


async def test_an_entry_may_reference_an_entry_listed_after_it(client: httpx.AsyncClient) -> None:
    child = urn_uuid()
    response = await transaction(
        client,
        f.entry(method="POST", url="Flag", resource=f.flag(subject=child)),
        f.entry(method="POST", url="Patient", full_url=child, resource=f.patient()),
    )
    flag, patient = answered_entries(response, RESPONSE)
    assert statuses([flag, patient]) == ["201 Created", "201 Created"]
    stored_flag = await stored(client, f"Flag/{located(flag)[1]}")
    assert stored_flag["subject"] == {"reference": f"Patient/{located(patient)[1]}"}


async def test_a_search_entry_sees_a_create_listed_after_it(client: httpx.AsyncClient) -> None:
    number = f.nhs_number(120)
    response = await transaction(
        client,
        f.entry(method="GET", url=f"Patient?{nhs_query(number)}"),
        f.entry(method="POST", url="Patient", resource=f.patient(nhs=number)),
    )
    search, created = answered_entries(response, RESPONSE)
    assert statuses([search, created]) == ["200 OK", "201 Created"]
    assert match_ids(search["resource"]) == [located(created)[1]]


async def test_a_delete_runs_before_a_create_listed_before_it(client: httpx.AsyncClient) -> None:
    number = f.nhs_number(121)
    response = await transaction(
        client,
        f.entry(method="POST", url="Patient", resource=f.patient(nhs=number)),
        f.entry(method="DELETE", url=f"Patient?{nhs_query(number)}"),
    )
    entries = answered_entries(response, RESPONSE)
    assert statuses(entries) == ["201 Created", "204 No Content"]
    assert await total(client, "Patient", identifier=f"{f.NHS}|{number}") == 1


async def test_searches_see_the_updates_and_deletes_of_their_transaction(
    client: httpx.AsyncClient,
) -> None:
    number = f.nhs_number(122)
    child = await create(client, f.patient(nhs=number, family="Old"))
    doomed = await create(client, f.flag(subject=reference(child)))
    response = await transaction(
        client,
        f.entry(method="GET", url=f"Patient?{nhs_query(number)}"),
        f.entry(method="GET", url=f"Flag?patient={child['id']}"),
        f.entry(
            method="PUT",
            url=f"Patient?{nhs_query(number)}",
            resource=f.patient(nhs=number, family="New"),
        ),
        f.entry(method="DELETE", url=reference(doomed)),
    )
    patients, flags, _, _ = answered_entries(response, RESPONSE)
    (match,) = patients["resource"].get("entry", [])
    assert match["resource"]["name"][0]["family"] == "New"
    assert match_ids(flags["resource"]) == []


# --- conditional create, update and delete -------------------------------------------------


async def test_conditional_create_with_no_match_creates(client: httpx.AsyncClient) -> None:
    number = f.nhs_number(130)
    response = await transaction(
        client,
        f.entry(
            method="POST",
            url="Patient",
            resource=f.patient(nhs=number),
            if_none_exist=nhs_query(number),
        ),
    )
    assert statuses(answered_entries(response, RESPONSE)) == ["201 Created"]
    assert await total(client, "Patient", identifier=f"{f.NHS}|{number}") == 1


async def test_conditional_create_with_one_match_answers_it_and_references_point_at_it(
    client: httpx.AsyncClient,
) -> None:
    number = f.nhs_number(131)
    existing = await create(client, f.patient(nhs=number))
    child = urn_uuid()
    response = await transaction(
        client,
        f.entry(
            method="POST",
            url="Patient",
            full_url=child,
            resource=f.patient(nhs=number, family="Other"),
            if_none_exist=nhs_query(number),
        ),
        f.entry(method="POST", url="Flag", resource=f.flag(subject=child)),
    )
    matched, flag = answered_entries(response, RESPONSE)
    assert statuses([matched, flag]) == ["200 OK", "201 Created"]
    assert matched["resource"] == existing
    assert await history_size(client, "Patient/_history") == 1
    stored_flag = await stored(client, f"Flag/{located(flag)[1]}")
    assert stored_flag["subject"] == {"reference": reference(existing)}


async def test_conditional_create_with_several_matches_fails_the_transaction_with_412(
    client: httpx.AsyncClient,
) -> None:
    child = await create(client, f.patient())
    for _ in range(2):
        await create(client, f.flag(subject=reference(child), identifier="F-2"))
    response = await transaction(
        client,
        f.entry(method="POST", url="Patient", resource=f.patient(family="New")),
        f.entry(
            method="POST",
            url="Flag",
            resource=f.flag(subject=reference(child), identifier="F-2"),
            if_none_exist=f"identifier={FLAGS}|F-2",
        ),
    )
    assert_outcome(response, 412)
    assert await total(client, "Patient") == 1
    assert await total(client, "Flag") == 2


async def test_conditional_update_updates_the_single_match(client: httpx.AsyncClient) -> None:
    number = f.nhs_number(132)
    existing = await create(client, f.patient(nhs=number))
    response = await transaction(
        client,
        f.entry(
            method="PUT",
            url=f"Patient?{nhs_query(number)}",
            resource=f.patient(nhs=number, family="Jones"),
        ),
    )
    (entry,) = answered_entries(response, RESPONSE)
    assert entry["response"]["status"] == "200 OK"
    assert located(entry) == ("Patient", existing["id"], 2)
    assert (await stored(client, reference(existing)))["name"][0]["family"] == "Jones"


async def test_conditional_delete_deletes_the_single_match(client: httpx.AsyncClient) -> None:
    child = await create(client, f.patient())
    flag = await create(client, f.flag(subject=reference(child), identifier="F-3"))
    response = await transaction(
        client, f.entry(method="DELETE", url=f"Flag?identifier={FLAGS}|F-3")
    )
    assert statuses(answered_entries(response, RESPONSE)) == ["204 No Content"]
    assert (await client.get(f"/{reference(flag)}")).status_code == 410


async def test_if_match_on_a_stale_version_fails_the_transaction_with_412(
    client: httpx.AsyncClient,
) -> None:
    child = await create(client, f.patient(family="First"))
    second = await client.put(f"/{reference(child)}", json=child | {"gender": "other"})
    assert second.status_code == 200
    response = await transaction(
        client,
        f.entry(method="POST", url="Organization", resource=f.organization()),
        f.entry(
            method="PUT",
            url=reference(child),
            resource=child | {"name": [{"family": "Late"}]},
            if_match='W/"1"',
        ),
    )
    assert_outcome(response, 412)
    current = await stored(client, reference(child))
    assert (current["meta"]["versionId"], current["name"][0]["family"]) == ("2", "First")
    assert await total(client, "Organization") == 0


# --- conditional references ----------------------------------------------------------------


@pytest.mark.parametrize("base", ["", f"{BASE}/"], ids=["relative", "absolute"])
async def test_a_conditional_reference_resolves_to_the_single_match(
    client: httpx.AsyncClient, base: str
) -> None:
    number = f.nhs_number(140)
    child = await create(client, f.patient(nhs=number))
    subject = f"{base}Patient?{nhs_query(number)}"
    response = await transaction(
        client, f.entry(method="POST", url="Flag", resource=f.flag(subject=subject))
    )
    (entry,) = answered_entries(response, RESPONSE)
    stored_flag = await stored(client, f"Flag/{located(entry)[1]}")
    assert stored_flag["subject"] == {"reference": reference(child)}


@pytest.mark.parametrize(
    ("query", "twins", "status"),
    [
        (f"Patient?{nhs_query(f.nhs_number(141))}", 0, 422),
        ("Patient?family=Twin", 2, 412),
    ],
    ids=["no-match", "several-matches"],
)
async def test_a_conditional_reference_without_a_single_match_fails_the_transaction(
    client: httpx.AsyncClient, query: str, twins: int, status: int
) -> None:
    for n in range(twins):
        await create(client, f.patient(family="Twin", given=f"Twin{n}"))
    response = await transaction(
        client,
        f.entry(method="POST", url="Organization", resource=f.organization()),
        f.entry(method="POST", url="Flag", resource=f.flag(subject=query)),
    )
    assert "Bundle.entry[1].resource.subject" in assert_outcome(response, status)
    assert await total(client, "Organization") == 0
    assert await total(client, "Flag") == 0


# --- two entries on one identity -----------------------------------------------------------


def _same_full_url(child: dict[str, Any]) -> list[dict[str, Any]]:
    shared = urn_uuid()
    return [
        f.entry(method="POST", url="Patient", full_url=shared, resource=f.patient()),
        f.entry(method="POST", url="Patient", full_url=shared, resource=f.patient()),
    ]


def _two_puts(child: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        f.entry(method="PUT", url=reference(child), resource=child | {"gender": "male"}),
        f.entry(method="PUT", url=reference(child), resource=child | {"gender": "other"}),
    ]


def _put_and_delete(child: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        f.entry(method="PUT", url=reference(child), resource=child | {"gender": "male"}),
        f.entry(method="DELETE", url=reference(child)),
    ]


@pytest.mark.parametrize(
    "pair", [_same_full_url, _two_puts, _put_and_delete], ids=lambda p: p.__name__.strip("_")
)
async def test_two_entries_on_one_identity_are_400_and_write_nothing(
    client: httpx.AsyncClient, pair: Callable[[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    child = await create(client, f.patient())
    response = await transaction(
        client,
        f.entry(method="POST", url="Organization", resource=f.organization()),
        *pair(child),
    )
    expressions = assert_outcome(response, 400)
    assert any(e.startswith("Bundle.entry[2]") for e in expressions), expressions
    assert await total(client, "Organization") == 0
    assert await total(client, "Patient") == 1
    assert (await stored(client, reference(child)))["meta"]["versionId"] == "1"


# --- all or nothing ------------------------------------------------------------------------

FourthEntry = Callable[[httpx.AsyncClient, str], Awaitable[dict[str, Any]]]


async def _flag_on_a_missing_patient(client: httpx.AsyncClient, child: str) -> dict[str, Any]:
    return f.entry(method="POST", url="Flag", resource=f.flag(subject="Patient/absent"))


async def _structurally_invalid_flag(client: httpx.AsyncClient, child: str) -> dict[str, Any]:
    return f.entry(method="POST", url="Flag", resource=f.flag(subject=child) | {"colour": "red"})


async def _flag_breaking_its_status_binding(
    client: httpx.AsyncClient, child: str
) -> dict[str, Any]:
    return f.entry(method="POST", url="Flag", resource=f.flag(subject=child, status="bogus"))


@pytest.mark.parametrize(
    ("fourth", "status", "expression", "exact"),
    [
        (_flag_on_a_missing_patient, 422, "Bundle.entry[3].resource.subject", True),
        (_structurally_invalid_flag, 400, "Bundle.entry[3].resource", False),
        (_flag_breaking_its_status_binding, 422, "Bundle.entry[3].resource.status", True),
        (stale_if_match, 412, None, False),
    ],
    ids=["missing-reference", "invalid-structure", "binding", "if-match"],
)
async def test_one_bad_entry_leaves_no_trace(
    client: httpx.AsyncClient, fourth: FourthEntry, status: int, expression: str | None, exact: bool
) -> None:
    child = urn_uuid()
    bad = await fourth(client, child)
    patients_before = await history_size(client, "Patient/_history")
    response = await transaction(
        client,
        f.entry(method="POST", url="Patient", full_url=child, resource=f.patient()),
        f.entry(method="POST", url="RelatedPerson", resource=f.related_person(patient=child)),
        f.entry(method="POST", url="Condition", resource=f.condition(subject=child)),
        bad,
    )
    expressions = assert_outcome(response, status)
    if exact:
        assert expressions == [expression]
    elif expression is not None:
        assert expressions and all(e.startswith(expression) for e in expressions), expressions
    assert await total(client, "Patient") == patients_before
    assert await history_size(client, "Patient/_history") == patients_before
    for resource_type in ("RelatedPerson", "Condition", "Flag"):
        assert await total(client, resource_type) == 0
        assert await history_size(client, f"{resource_type}/_history") == 0


# --- Bundle-level errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expression"),
    [
        (f.patient(), "resourceType"),
        (
            f.bundle(
                kind="collection",
                entries=[f.entry(method="POST", url="Patient", resource=f.patient())],
            ),
            "Bundle.type",
        ),
        (
            {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": f.patient()}]},
            "Bundle.entry[0].request",
        ),
        (
            f.bundle(entries=[f.entry(method="TRACE", url="Patient", resource=f.patient())]),
            "Bundle.entry[0].request.method",
        ),
        (f.bundle(entries=[f.entry(method="POST", url="Patient")]), "Bundle.entry[0]"),
    ],
    ids=["not-a-bundle", "collection", "no-request", "bad-method", "post-without-resource"],
)
async def test_malformed_bundles_are_400_naming_the_element(
    client: httpx.AsyncClient, body: dict[str, Any], expression: str
) -> None:
    response = await post_bundle(client, body)
    expressions = assert_outcome(response, 400)
    assert any(expression in e for e in expressions), expressions
    assert await history_size(client) == 0


async def test_an_xml_bundle_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        BASE,
        content=b'<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/></Bundle>',
        headers={"content-type": "application/fhir+xml"},
    )
    assert_outcome(response, 415)


async def test_a_bundle_over_the_body_limit_is_413(client: httpx.AsyncClient) -> None:
    large = f.organization() | {"alias": ["x" * 1000] * 100}
    response = await transaction(client, f.entry(method="POST", url="Organization", resource=large))
    assert_outcome(response, 413)
    assert await total(client, "Organization") == 0


@pytest.fixture
async def capped(client: httpx.AsyncClient, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a second app on the same (emptied) database, allowing 3 entries a Bundle."""
    settings = Settings(
        database_url=database_url,
        base_url=BASE,
        max_body_bytes=64 * 1024,
        max_bundle_entries=3,
        audit_seal_interval_seconds=seal_interval(database_url),
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        headers = await bearer(application)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
            yield http


@pytest.mark.parametrize(("count", "status"), [(3, 200), (4, 413)])
async def test_more_entries_than_the_limit_is_413(
    capped: httpx.AsyncClient, count: int, status: int
) -> None:
    entries = [f.entry(method="POST", url="Organization", resource=f.organization())] * count
    response = await transaction(capped, *entries)
    assert response.status_code == status, response.text
    assert await total(capped, "Organization") == (count if status == 200 else 0)


# --- GET entries ---------------------------------------------------------------------------


async def test_a_get_of_an_unknown_id_fails_the_transaction_with_404(
    client: httpx.AsyncClient,
) -> None:
    response = await transaction(
        client,
        f.entry(method="POST", url="Patient", resource=f.patient()),
        f.entry(method="GET", url="Patient/no-such-patient"),
    )
    assert_outcome(response, 404)
    assert await total(client, "Patient") == 0


async def test_the_failure_named_is_the_first_in_processing_order(
    client: httpx.AsyncClient,
) -> None:
    """Every create is checked against the rules and its references before any is written, so
    a later entry's missing reference is found before an earlier entry's held NHS number."""
    held = f.nhs_number(41)
    await create(client, f.patient(nhs=held))
    response = await transaction(
        client,
        f.entry(method="POST", url="Patient", resource=f.patient(nhs=held, family="Twin")),
        f.entry(method="POST", url="Flag", resource=f.flag(subject="Patient/missing")),
    )
    assert assert_outcome(response, 422) == ["Bundle.entry[1].resource.subject"]
    alone = await transaction(
        client, f.entry(method="POST", url="Patient", resource=f.patient(nhs=held, family="Twin"))
    )
    assert assert_outcome(alone, 422) == ["Bundle.entry[0].resource.identifier[0].value"]
