"""SMART scopes on every FHIR interaction (`app.fhir.permissions`): what each needs, the 403
that names the scope missing, and that a refused write writes nothing.

The database is seeded through the default app (whose caller may do everything); the requests
under test go through an app whose caller holds only the scopes a test names.
"""

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import orjson
import pytest

from app.settings import Settings
from tests import factories as f
from tests.callers import app_client_for, scoped
from tests.http import FHIR_JSON, answered_entries, create, outcome_expressions, post_bundle

AsScopes = Callable[[str], Awaitable[httpx.AsyncClient]]
FLAG_ID = "https://example.org/flags"


@pytest.fixture
async def with_scopes(settings: Settings, client: httpx.AsyncClient) -> AsyncIterator[AsScopes]:
    """Clients, on the test database (emptied by `client`), of callers granted given scopes."""
    async with AsyncExitStack() as stack:

        async def open_client(scopes: str) -> httpx.AsyncClient:
            return await stack.enter_async_context(app_client_for(settings, scoped(scopes)))

        yield open_client


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> dict[str, Any]:
    """A Patient and a clinical Flag about it (identifier f1), written with every scope."""
    patient = await create(client, f.patient(family="Seeded"))
    flag = await create(client, f.flag(subject=f"Patient/{patient['id']}", identifier="f1"))
    return {"patient": patient, "flag": flag}


def refused(response: httpx.Response, interaction: str, resource_type: str, letter: str) -> None:
    """A 403 OperationOutcome naming the interaction, the type and the scope it needs."""
    assert response.status_code == 403, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "forbidden"
    assert issue["diagnostics"] == (
        f"this client's scopes do not allow {interaction} on {resource_type}: "
        f"it needs system/{resource_type}.{letter}"
    )


async def count(client: httpx.AsyncClient, resource_type: str) -> int:
    """How many live resources of a type there are (seen with every scope)."""
    response = await client.get(f"/{resource_type}", params={"_summary": "count"})
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def _flag_urls(seeded: dict[str, Any]) -> dict[str, str]:
    flag_id = seeded["flag"]["id"]
    return {
        "read": f"/Flag/{flag_id}",
        "vread": f"/Flag/{flag_id}/_history/1",
        "history-instance": f"/Flag/{flag_id}/_history",
        "history-type": "/Flag/_history",
    }


@pytest.mark.parametrize("interaction", ["read", "vread", "history-instance", "history-type"])
async def test_reads_and_history_need_read(
    with_scopes: AsScopes, seeded: dict[str, Any], interaction: str
) -> None:
    url = _flag_urls(seeded)[interaction]
    assert (await (await with_scopes("system/Flag.r")).get(url)).status_code == 200
    refused(await (await with_scopes("system/Flag.s")).get(url), interaction, "Flag", "r")


async def test_searches_need_search(with_scopes: AsScopes, seeded: dict[str, Any]) -> None:
    searcher, reader = await with_scopes("system/Flag.rs"), await with_scopes("system/Flag.r")
    found = await searcher.get("/Flag", params={"identifier": f"{FLAG_ID}|f1"})
    assert found.status_code == 200 and found.json()["total"] == 1
    posted = await searcher.post("/Flag/_search", data={"identifier": f"{FLAG_ID}|f1"})
    assert posted.status_code == 200 and posted.json()["total"] == 1
    refused(await reader.get("/Flag"), "search-type", "Flag", "s")
    refused(await reader.post("/Flag/_search", data={"_id": "x"}), "search-type", "Flag", "s")


async def test_a_compartment_search_needs_search_on_its_member_type(
    with_scopes: AsScopes, seeded: dict[str, Any]
) -> None:
    url = f"/Patient/{seeded['patient']['id']}/Flag"
    found = await (await with_scopes("system/Flag.rs")).get(url)  # nothing on Patient
    assert found.status_code == 200 and found.json()["total"] == 1
    refused(await (await with_scopes("system/Patient.rs")).get(url), "search-type", "Flag", "s")


async def test_create_needs_create_and_is_refused_before_its_body_is_read(
    with_scopes: AsScopes, client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    flag = f.flag(subject=f"Patient/{seeded['patient']['id']}")
    headers = {"content-type": FHIR_JSON}
    created = await (await with_scopes("system/Flag.c")).post("/Flag", json=flag, headers=headers)
    assert created.status_code == 201, created.text
    reader = await with_scopes("system/Flag.rus")
    refused(await reader.post("/Flag", json=flag, headers=headers), "create", "Flag", "c")
    malformed = await reader.post("/Flag", content=b"{not json", headers=headers)
    refused(malformed, "create", "Flag", "c")
    assert await count(client, "Flag") == 2


async def test_conditional_create_needs_create_even_when_it_matches(
    with_scopes: AsScopes, seeded: dict[str, Any]
) -> None:
    flag = f.flag(subject=f"Patient/{seeded['patient']['id']}", identifier="f1")
    headers = {"content-type": FHIR_JSON, "if-none-exist": f"identifier={FLAG_ID}|f1"}
    creator = await with_scopes("system/Flag.cr")  # no search: the condition is not one
    found = await creator.post("/Flag", json=flag, headers=headers)
    assert found.status_code == 200, found.text  # the existing one
    searcher = await with_scopes("system/Flag.rs")
    refused(await searcher.post("/Flag", json=flag, headers=headers), "create", "Flag", "c")


async def test_update_needs_update(
    with_scopes: AsScopes, client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    flag = seeded["flag"] | {"status": "inactive"}
    url, headers = f"/Flag/{flag['id']}", {"content-type": FHIR_JSON}
    refused(
        await (await with_scopes("system/Flag.crd")).put(url, json=flag, headers=headers),
        "update",
        "Flag",
        "u",
    )
    assert (await client.get(url)).json()["status"] == "active"
    updater = await with_scopes("system/Flag.ru")  # what it may not read, it cannot find
    updated = await updater.put(url, json=flag, headers=headers)
    assert updated.status_code == 200 and updated.json()["status"] == "inactive"


async def test_update_as_create_needs_create_too_and_writes_nothing_without_it(
    with_scopes: AsScopes, client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    flag = f.flag(subject=f"Patient/{seeded['patient']['id']}") | {"id": "new-flag"}
    headers = {"content-type": FHIR_JSON}
    response = await (await with_scopes("system/Flag.u")).put(
        "/Flag/new-flag", json=flag, headers=headers
    )
    assert response.status_code == 403, response.text
    issue = response.json()["issue"][0]
    assert issue["code"] == "forbidden"
    assert issue["diagnostics"] == (
        "this client's scopes do not allow create on Flag (this update would create "
        "Flag/new-flag): it needs system/Flag.c"
    )
    assert (await client.get("/Flag/new-flag")).status_code == 404
    writer = await with_scopes("system/Flag.cu")
    created = await writer.put("/Flag/new-flag", json=flag, headers=headers)
    assert created.status_code == 201, created.text


async def test_conditional_update_needs_update_and_create_only_when_it_creates(
    with_scopes: AsScopes, client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    subject = f"Patient/{seeded['patient']['id']}"
    headers = {"content-type": FHIR_JSON}
    updater = await with_scopes("system/Flag.ru")
    matched = f.flag(subject=subject, identifier="f1", status="inactive")
    response = await updater.put(f"/Flag?identifier={FLAG_ID}|f1", json=matched, headers=headers)
    assert response.status_code == 200, response.text
    fresh = f.flag(subject=subject, identifier="f2")
    url = f"/Flag?identifier={FLAG_ID}|f2"
    response = await updater.put(url, json=fresh, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["issue"][0]["diagnostics"].endswith("it needs system/Flag.c")
    assert await count(client, "Flag") == 1
    refused(
        await (await with_scopes("system/Flag.c")).put(url, json=fresh, headers=headers),
        "update",
        "Flag",
        "u",
    )
    both = await with_scopes("system/Flag.cru")
    assert (await both.put(url, json=fresh, headers=headers)).status_code == 201


async def test_patch_needs_update(with_scopes: AsScopes, seeded: dict[str, Any]) -> None:
    url = f"/Flag/{seeded['flag']['id']}"
    operations = [{"op": "replace", "path": "/status", "value": "inactive"}]
    headers = {"content-type": "application/json-patch+json"}
    reader = await with_scopes("system/Flag.crds")
    refused(await reader.patch(url, json=operations, headers=headers), "patch", "Flag", "u")
    malformed = await reader.patch(url, content=b"[{", headers=headers)
    refused(malformed, "patch", "Flag", "u")
    patcher = await with_scopes("system/Flag.ru")
    patched = await patcher.patch(url, json=operations, headers=headers)
    assert patched.status_code == 200 and patched.json()["status"] == "inactive"


async def test_delete_and_conditional_delete_need_delete(
    with_scopes: AsScopes, client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    url, conditional = f"/Flag/{seeded['flag']['id']}", f"/Flag?identifier={FLAG_ID}|f1"
    keeper = await with_scopes("system/Flag.crus")
    refused(await keeper.delete(url), "delete", "Flag", "d")
    refused(await keeper.delete(conditional), "delete", "Flag", "d")
    assert await count(client, "Flag") == 1
    deleter = await with_scopes("system/Flag.rd")
    assert (await deleter.delete(conditional)).status_code == 200
    assert (await deleter.delete(url)).status_code == 200
    assert await count(client, "Flag") == 0


async def test_v1_read_and_write_scopes(with_scopes: AsScopes, seeded: dict[str, Any]) -> None:
    flag, headers = seeded["flag"], {"content-type": FHIR_JSON}
    reader = await with_scopes("system/Flag.read")
    assert (await reader.get(f"/Flag/{flag['id']}")).status_code == 200
    assert (await reader.get("/Flag")).status_code == 200
    refused(await reader.post("/Flag", json=flag, headers=headers), "create", "Flag", "c")
    writer = await with_scopes("system/Flag.write")
    assert (await writer.post("/Flag", json=flag, headers=headers)).status_code == 201
    refused(await writer.get(f"/Flag/{flag['id']}"), "read", "Flag", "r")
    refused(await writer.get("/Flag"), "search-type", "Flag", "s")


async def test_wildcard_scopes(with_scopes: AsScopes, seeded: dict[str, Any]) -> None:
    everything, reads = await with_scopes("system/*.cruds"), await with_scopes("system/*.rs")
    patient = f.patient(family="Wildcard")
    assert (await create(everything, patient))["name"][0]["family"] == "Wildcard"
    assert (await reads.get(f"/Patient/{seeded['patient']['id']}")).status_code == 200
    headers = {"content-type": FHIR_JSON}
    refused(await reads.post("/Patient", json=patient, headers=headers), "create", "Patient", "c")


async def test_conformance_and_system_history_need_no_scope(
    with_scopes: AsScopes, seeded: dict[str, Any]
) -> None:
    nothing = await with_scopes("openid")  # grants nothing here
    assert (await nothing.get("/metadata")).status_code == 200
    assert (await nothing.get("/CodeSystem")).status_code == 200
    assert (await nothing.get("/SearchParameter")).status_code == 200
    history = await nothing.get("/_history")
    assert history.status_code == 200 and history.json().get("entry", []) == []
    flags_only = await (await with_scopes("system/Flag.r")).get("/_history")
    types = {e["request"]["url"].split("/")[0] for e in flags_only.json().get("entry", [])}
    assert types == {"Flag"}


def _patch_entry(url: str) -> dict[str, Any]:
    operations = [{"op": "replace", "path": "/status", "value": "inactive"}]
    data = base64.b64encode(orjson.dumps(operations)).decode()
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data}
    return f.entry(method="PATCH", url=url, resource=binary)


async def test_a_transaction_with_a_forbidden_entry_is_refused_whole_writing_nothing(
    with_scopes: AsScopes, client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    flag_url = f"Flag/{seeded['flag']['id']}"
    bundle = f.bundle(
        entries=[
            f.entry(method="POST", url="Patient", resource=f.patient(family="Never")),
            f.entry(method="GET", url=flag_url),
            _patch_entry(flag_url),
        ]
    )
    response = await post_bundle(await with_scopes("system/Patient.c system/Flag.r"), bundle)
    refused(response, "patch", "Flag", "u")
    assert outcome_expressions(response) == ["Bundle.entry[2]"]
    assert await count(client, "Patient") == 1
    assert (await client.get(f"/{flag_url}")).json()["status"] == "active"


async def test_a_transaction_creating_by_update_needs_create(
    with_scopes: AsScopes, client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    subject = f"Patient/{seeded['patient']['id']}"
    bundle = f.bundle(
        entries=[
            f.entry(method="POST", url="Patient", resource=f.patient(family="Never")),
            f.entry(method="PUT", url="Flag/new-flag", resource=f.flag(subject=subject)),
        ]
    )
    response = await post_bundle(await with_scopes("system/Patient.c system/Flag.u"), bundle)
    assert response.status_code == 403, response.text
    assert outcome_expressions(response) == ["Bundle.entry[1]"]
    assert await count(client, "Patient") == 1
    assert (await client.get("/Flag/new-flag")).status_code == 404


async def test_a_batch_answers_a_forbidden_entry_with_403_and_runs_the_others(
    with_scopes: AsScopes, client: httpx.AsyncClient, seeded: dict[str, Any]
) -> None:
    flag_url = f"Flag/{seeded['flag']['id']}"
    bundle = f.bundle(
        kind="batch",
        entries=[
            f.entry(method="POST", url="Patient", resource=f.patient(family="Batched")),
            f.entry(method="DELETE", url=flag_url),
            f.entry(method="GET", url=f"Flag?identifier={FLAG_ID}|f1"),
            f.entry(method="GET", url=flag_url),
            f.entry(method="POST", url="Flag", resource={"resourceType": "Flag"}),  # invalid too
        ],
    )
    response = await post_bundle(await with_scopes("system/Patient.c system/Flag.r"), bundle)
    entries = answered_entries(response, "batch-response")
    statuses = [e["response"]["status"] for e in entries]
    assert statuses == ["201 Created", "403 Forbidden", "403 Forbidden", "200 OK", "403 Forbidden"]
    deleting, searching = (entries[i]["response"]["outcome"]["issue"][0] for i in (1, 2))
    assert deleting["code"] == "forbidden" and deleting["expression"] == ["Bundle.entry[1]"]
    assert deleting["diagnostics"].endswith("it needs system/Flag.d")
    assert searching["diagnostics"].endswith("it needs system/Flag.s")
    assert await count(client, "Patient") == 2
    assert (await client.get(f"/{flag_url}")).status_code == 200


async def test_the_summary_needs_the_child_and_a_search_of_flags(
    with_scopes: AsScopes, seeded: dict[str, Any]
) -> None:
    url = f"/Patient/{seeded['patient']['id']}/$safeguarding-summary"
    allowed = await with_scopes("system/Patient.r system/Flag.rs")
    summary = await allowed.get(url)
    assert summary.status_code == 200, summary.text
    kinds = [e["resource"]["resourceType"] for e in summary.json().get("entry", [])]
    assert kinds[:2] == ["Patient", "Flag"]
    refused(await (await with_scopes("system/Patient.r")).get(url), "search-type", "Flag", "s")
    refused(await (await with_scopes("system/Flag.rs")).get(url), "read", "Patient", "r")


async def test_the_summary_by_identifier_needs_a_search_of_patients(
    with_scopes: AsScopes, client: httpx.AsyncClient
) -> None:
    nhs = f.nhs_number(4242)
    await create(client, f.patient(nhs=nhs))
    url = "/Patient/$safeguarding-summary"
    params = {"identifier": f"{f.NHS}|{nhs}"}
    allowed = await with_scopes("system/Patient.s system/Patient.r system/Flag.rs")
    assert (await allowed.get(url, params=params)).status_code == 200
    reader = await with_scopes("system/Patient.r system/Flag.rs")
    refused(await reader.get(url, params=params), "search-type", "Patient", "s")
    refused(await reader.get(url), "search-type", "Patient", "s")  # before the 400
