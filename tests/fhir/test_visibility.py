"""The caller-bound read path: every statement that reads `resource` or `resource_version` is
filtered for the caller (`Sql.visible`), on every route.

Until clients authenticate every caller sees everything, so these tests serve the same
database through a second app whose callers may read only some resource types (what a
SMART scope will give): whatever they may not read must be absent from every answer, and
every statement run for them must carry the filter, on every alias of those tables.
"""

import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from app.access import Caller
from app.main import create_app
from app.registry import RESOURCE_TYPES
from app.settings import Settings
from app.storage import repository
from app.storage.db import PgConnection
from app.storage.sqlite import SqliteConnection
from tests import factories as f
from tests.conftest import BASE
from tests.http import FHIR_JSON, create, post_bundle, reference

TABLE = re.compile(r"\b(?:FROM|JOIN)\s+(resource|resource_version)\b(?:\s+(?!WHERE\b)(\w+))?")
WRITES = re.compile(r"^\s*(?:INSERT|UPDATE|DELETE)\b|^\s*WITH\s+\w+\s+AS\s+\(\s*(?:INSERT|UPDATE)")
# Integrity checks of writes see every live resource whoever writes (`every_live`).
INTEGRITY = (
    "WITH t (resource_type, logical_id) AS (VALUES",  # repository.live_among
    "FROM nhs_number_claim c JOIN resource r",  # claims: who holds an NHS number
    "FROM flag_claim c JOIN resource r",  # claims: who holds a child's one active flag
    "SELECT COALESCE(MAX(pk), 0) FROM resource",  # SQLite: the next pks of creates together
    # outbox: who is to be told of a health client's look (the child's plans); nothing of it
    # is answered to the caller
    "SELECT f.patient_id, f.logical_id, f.author_org FROM resource f WHERE",
)
PLACEHOLDER = "urn:uuid:6b2e0d3c-0f4b-4c7e-9d0f-8a1d5c3e2b11"
METHODS = ("fetch", "fetchrow", "fetchrow_final", "execute", "executemany")


def _restricted(types: frozenset[str]) -> Callable[[Request], Caller]:
    return lambda request: Caller(subject=f"reads {sorted(types)}", readable_types=types)


@pytest.fixture
async def reader_of(
    settings: Settings, client: httpx.AsyncClient
) -> AsyncIterator[Callable[..., Any]]:
    """Clients of an app over the same database whose callers read only the given types."""
    async with AsyncExitStack() as stack:

        async def open_client(*types: str) -> httpx.AsyncClient:
            app = create_app(settings, identify=_restricted(frozenset(types)))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url=BASE)
            )

        yield open_client


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement run while the test does, on either database (each still runs).

    The integrity checks of conditional writes search as a caller who sees every type; here
    that caller names the types too, so that their filter shows in the SQL like any other."""
    every_type = Caller(subject="integrity checks", readable_types=frozenset(RESOURCE_TYPES))
    monkeypatch.setattr(repository, "EVERYONE", every_type)
    seen: list[str] = []
    for cls in (SqliteConnection, PgConnection):
        for name in METHODS:
            monkeypatch.setattr(cls, name, _recording(getattr(cls, name), seen))
    yield seen


def _recording(method: Any, seen: list[str]) -> Any:
    async def record(self: Any, sql: str, *args: Any) -> Any:
        seen.append(sql)
        return await method(self, sql, *args)

    return record


def unfiltered(sql: str) -> list[str]:
    """The aliases of `resource`/`resource_version` in a statement that reads them for a
    restricted caller without that caller's filter."""
    if WRITES.match(sql) or any(fragment in sql for fragment in INTEGRITY):
        return []
    return [
        alias or table
        for table, alias in TABLE.findall(sql)
        if not alias or f"{alias}.resource_type IN (" not in sql
    ]


async def _family(client: httpx.AsyncClient) -> dict[str, str]:
    """A child with an NHS number, a practice, a flag, a condition and a mother."""
    org = await create(client, f.organization())
    child = await create(client, f.patient(nhs=f.nhs_number(11)))
    flag = await create(client, f.flag(subject=reference(child), author=reference(org)))
    await create(client, f.condition(subject=reference(child)))
    mother = f.related_person(patient=reference(child), relationship="MTH")
    await create(client, mother)
    updated = await client.put(
        f"/Flag/{flag['id']}", json=flag | {"status": "inactive"}, headers={"If-Match": 'W/"1"'}
    )
    assert updated.status_code == 200, updated.text
    return {"org": org["id"], "child": child["id"], "flag": flag["id"], "nhs": f.nhs_number(11)}


def _read_paths(ids: dict[str, str]) -> list[str]:
    child, flag, nhs = ids["child"], ids["flag"], ids["nhs"]
    return [
        f"/Patient/{child}",
        f"/Flag/{flag}",
        f"/Flag/{flag}/_history/1",
        f"/Flag/{flag}/_history",
        "/Flag/_history",
        "/_history",
        f"/Flag?patient={child}&_total=accurate",
        "/Flag?_summary=count",
        "/Flag?_total=estimate",
        f"/Flag?patient.identifier={f.NHS}|{nhs}",
        f"/Flag?subject:Patient.identifier={f.NHS}|{nhs}&_sort=-date",
        "/Patient?_has:Flag:patient:status=inactive&_revinclude=Flag:patient",
        f"/Patient?identifier={f.NHS}|{nhs}&_revinclude:iterate=RelatedPerson:patient",
        f"/Flag?_id={flag}&_include=Flag:patient&_include:iterate=Patient:organization",
        "/Flag?_include=*&_sort=_lastUpdated",
        f"/Patient/{child}/Flag",
        f"/Patient/{child}/Condition?_count=1",
        f"/Patient/{child}/$safeguarding-summary",
        f"/Patient/$safeguarding-summary?identifier={f.NHS}|{nhs}",
    ]


async def test_every_read_statement_carries_the_callers_filter(
    client: httpx.AsyncClient, reader_of: Callable[..., Any], statements: list[str]
) -> None:
    ids = await _family(client)
    restricted = await reader_of("Flag", "Organization")
    statements.clear()
    for path in _read_paths(ids):
        response = await restricted.get(path)
        assert response.status_code in (200, 404), (path, response.text)
    assert statements
    leaks = {sql: unfiltered(sql) for sql in statements if unfiltered(sql)}
    assert not leaks, leaks


async def test_every_write_path_matches_and_reads_through_the_filter(
    client: httpx.AsyncClient, reader_of: Callable[..., Any], statements: list[str]
) -> None:
    ids = await _family(client)
    restricted = await reader_of("Flag", "Patient", "Organization")
    statements.clear()
    flag = f.flag(subject=f"Patient/{ids['child']}", author=f"Organization/{ids['org']}")
    headers = {"content-type": FHIR_JSON}
    once = {"If-None-Exist": "identifier=F-9"}
    marked = flag | {"identifier": [{"system": "https://example.org/flags", "value": "F-9"}]}
    found = f"Patient?identifier={f.NHS}|{ids['nhs']}"  # a conditional reference
    in_transaction = [
        f.entry(method="POST", url="Flag", resource=flag, full_url=PLACEHOLDER),
        f.entry(method="POST", url="Flag", resource=flag | {"subject": {"reference": found}}),
        f.entry(method="GET", url=f"Flag?patient={ids['child']}&_revinclude=Flag:subject"),
        f.entry(method="GET", url=f"Patient/{ids['child']}"),
    ]
    in_batch = [
        f.entry(method="GET", url=f"Flag/{ids['flag']}/_history/1"),
        f.entry(method="DELETE", url="Flag?identifier=none"),
    ]
    answers = [
        await restricted.post("/Flag", json=marked, headers={**headers, **once}),
        await restricted.post("/Flag", json=marked, headers={**headers, **once}),
        await restricted.put("/Flag?identifier=F-9", json=marked | {"status": "inactive"}),
        await restricted.patch(
            f"/Flag/{ids['flag']}",
            content=b'[{"op": "replace", "path": "/status", "value": "active"}]',
            headers={"content-type": "application/json-patch+json"},
        ),
        await restricted.delete("/Flag?identifier=F-9"),
        await post_bundle(restricted, f.bundle(entries=in_transaction)),
        await post_bundle(restricted, f.bundle(kind="batch", entries=in_batch)),
    ]
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 200, 200, 200], [
        a.text for a in answers
    ]
    leaks = {sql: unfiltered(sql) for sql in statements if unfiltered(sql)}
    assert not leaks, leaks


async def test_a_caller_who_may_read_nothing_finds_nothing_anywhere(
    client: httpx.AsyncClient, reader_of: Callable[..., Any]
) -> None:
    ids = await _family(client)
    nobody = await reader_of()
    for path in _read_paths(ids):
        response = await nobody.get(path)
        body = response.json()
        if response.status_code == 404:
            assert body["resourceType"] == "OperationOutcome", path
            continue
        assert response.status_code == 200, (path, response.text)
        assert body["type"] in ("searchset", "history"), path
        found = [e for e in body.get("entry", []) if e.get("search", {}).get("mode") != "outcome"]
        assert found == [], path
        assert body.get("total", 0) == 0, path


async def test_hidden_types_are_absent_from_every_way_in(
    client: httpx.AsyncClient, reader_of: Callable[..., Any]
) -> None:
    ids = await _family(client)
    child, nhs = ids["child"], ids["nhs"]
    flags_only = await reader_of("Flag")
    patients_only = await reader_of("Patient")

    def types(response: httpx.Response) -> set[str]:
        assert response.status_code == 200, response.text
        entries = response.json().get("entry", [])
        return {e["resource"]["resourceType"] for e in entries if "resource" in e} - {
            "OperationOutcome"
        }

    assert (await flags_only.get(f"/Patient/{child}")).status_code == 404
    assert types(await flags_only.get("/Flag?_include=Flag:patient")) == {"Flag"}
    assert types(await flags_only.get(f"/Flag?patient.identifier={f.NHS}|{nhs}")) == set()
    assert types(await flags_only.get("/_history")) == {"Flag"}
    assert types(await patients_only.get("/Patient?_revinclude=Flag:patient")) == {"Patient"}
    assert types(await patients_only.get("/Patient?_has:Flag:patient:status=inactive")) == set()
    assert types(await patients_only.get(f"/Patient/{child}/Flag")) == set()
    summary = await patients_only.get(f"/Patient/{child}/$safeguarding-summary")
    assert types(summary) == {"Patient"}
    everything = await client.get(f"/Patient/{child}/$safeguarding-summary")
    assert types(everything) == {"Patient", "Condition", "RelatedPerson"}


async def test_writes_treat_what_the_caller_may_not_see_as_absent_without_naming_it(
    client: httpx.AsyncClient, reader_of: Callable[..., Any]
) -> None:
    ids = await _family(client)
    flags_only = await reader_of("Flag", "Organization")
    child = await client.get(f"/Patient/{ids['child']}")
    hidden_child = child.json()
    changed = hidden_child | {"gender": "male"}
    assert (await flags_only.put(f"/Patient/{ids['child']}", json=changed)).status_code == 404
    patch = b'[{"op": "replace", "path": "/gender", "value": "male"}]'
    patched = await flags_only.patch(
        f"/Patient/{ids['child']}",
        content=patch,
        headers={"content-type": "application/json-patch+json"},
    )
    assert patched.status_code == 404
    assert (await flags_only.delete(f"/Patient/{ids['child']}")).status_code == 200
    assert (await client.get(f"/Patient/{ids['child']}")).json() == hidden_child
    twin = f.patient(nhs=ids["nhs"], family="Twin")
    held = await flags_only.post("/Patient", json=twin)
    assert held.status_code == 422
    assert "another Patient" in held.text and ids["child"] not in held.text
    once = {"If-None-Exist": f"identifier={f.NHS}|{ids['nhs']}"}
    again = await flags_only.post("/Patient", json=twin, headers=once)
    assert again.status_code == 412 and ids["child"] not in again.text
    listed = await client.get(f"/Patient?identifier={f.NHS}|{ids['nhs']}")
    assert [e["resource"]["id"] for e in listed.json().get("entry", [])] == [ids["child"]]


async def test_a_one_active_flag_refusal_names_the_holder_only_to_who_may_read_it(
    client: httpx.AsyncClient, reader_of: Callable[..., Any]
) -> None:
    ids = await _family(client)
    subject, author = f"Patient/{ids['child']}", f"Organization/{ids['org']}"
    plan = f.safeguarding_flag(subject=subject, author=author)  # a child protection plan
    holder = await create(client, plan)
    no_flags = await reader_of("Patient", "Organization")
    refused = await no_flags.post("/Flag", json=plan)
    assert refused.status_code == 409 and holder["id"] not in refused.text
    named = await client.post("/Flag", json=plan)
    assert named.status_code == 409 and f"Flag/{holder['id']}" in named.text
