"""Dates at the edges of what FHIR R4 allows (years 0001 and 9999, offsets -14:00 to +14:00,
partial dates): stored, indexed and searched with every prefix, never a 5xx; values that are
not FHIR dates (year 0000, month 13, offset +15:00) stay 400 naming the parameter.

Spec: http://hl7.org/fhir/R4/datatypes.html#dateTime, http://hl7.org/fhir/R4/search.html#date
"""

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, note
from hypothesis import strategies as st

from app.normalise import EARLIEST, LATEST
from tests import factories as f
from tests.conftest import empty_database
from tests.dates import CHECKED, HYPOTHESIS, PREFIXES, dates, edge_values, matches, moments, span
from tests.http import create, outcome_expressions, reference

SEARCHES = (("Patient", "birthdate"), ("Patient", "_lastUpdated"), ("Flag", "date"))


async def _found(client: httpx.AsyncClient, path: str, key: str, value: str) -> set[str]:
    response = await client.get(path, params={key: value, "_count": "100"})
    assert response.status_code == 200, f"{path}?{key}={value}: {response.text}"
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


@HYPOTHESIS
@given(prefix=st.sampled_from(PREFIXES), value=edge_values())
async def test_every_prefix_on_an_edge_value_answers(
    client: httpx.AsyncClient, prefix: str, value: str
) -> None:
    """Every prefix with any date, dateTime or instant FHIR allows: a searchset, never a 5xx."""
    for resource_type, key in SEARCHES:
        await _found(client, f"/{resource_type}", key, prefix + value)


@HYPOTHESIS
@given(
    born=dates(),
    ends=moments() | dates(),
    queries=st.lists(st.tuples(st.sampled_from(CHECKED), edge_values()), min_size=4, max_size=4),
)
async def test_stored_edge_values_match_by_the_prefix_rules(
    app: FastAPI,
    client: httpx.AsyncClient,
    born: str,
    ends: str,
    queries: list[tuple[str, str]],
) -> None:
    """A birthDate and an open-started Flag.period.end at the edges are found exactly when the
    spec's range rules say so (search.html#prefix)."""
    await empty_database(app)
    patient = await create(client, f.patient(birth_date=born))
    flag = f.flag(subject=reference(patient)) | {"period": {"end": ends}}
    flag_id = (await create(client, flag))["id"]
    targets = [
        ("Patient", "birthdate", patient["id"], span(born)),
        ("Flag", "date", flag_id, (EARLIEST, span(ends)[1])),  # no start: open before
    ]
    for prefix, value in queries:
        for resource_type, key, resource_id, target in targets:
            note(f"{resource_type}?{key}={prefix}{value}")
            found = await _found(client, f"/{resource_type}", key, prefix + value)
            assert (resource_id in found) == matches(prefix, target, span(value))


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("birthdate=9999-12-31", True),
        ("birthdate=9999", True),
        ("birthdate=ge9999", True),
        ("birthdate=le9999-12-31", True),
        ("birthdate=eb9999-12-31", False),
        ("birthdate=sa9999-12-30", True),
        ("birthdate=gt9999-12-31T23:59:59-14:00", False),
        ("birthdate=lt9999-12-31T23:59:59-14:00", True),
        ("birthdate=ne9999-12-31", False),
        ("birthdate=lt0001-01-01T00:00:00%2B14:00", False),
        ("birthdate=gt0001-01-01T00:00:00%2B14:00", True),
        ("birthdate=ap9999-12-31", True),
    ],
)
async def test_a_birth_date_on_the_last_day_is_stored_and_found(
    client: httpx.AsyncClient, query: str, found: bool
) -> None:
    patient = await create(client, f.patient(birth_date="9999-12-31"))
    assert patient["birthDate"] == "9999-12-31"
    response = await client.get(f"/Patient?{query}")
    assert response.status_code == 200, response.text
    assert (response.json().get("total") == 1) == found, response.text


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("_lastUpdated=lt9999", True),
        ("_lastUpdated=gt9999-12-31T23:59:59-14:00", False),
        ("_lastUpdated=eb9999-12-31", True),
        ("_lastUpdated=gt0001-01-01T00:00:00%2B14:00", True),
        ("_lastUpdated=lt0001-01-01T00:00:00%2B14:00", False),
        ("_lastUpdated=sa0001", True),
        ("_lastUpdated=9999", False),
        ("_lastUpdated=ap0001-01-01", False),
    ],
)
async def test_last_updated_at_the_edges(
    client: httpx.AsyncClient, query: str, found: bool
) -> None:
    await create(client, f.patient())
    response = await client.get(f"/Patient?{query}")
    assert response.status_code == 200, response.text
    assert (response.json().get("total") == 1) == found, response.text


async def test_an_open_ended_flag_until_9999_is_stored_and_found(
    client: httpx.AsyncClient,
) -> None:
    child = reference(await create(client, f.patient()))
    flag = f.flag(subject=child) | {"period": {"start": "2026-01-10", "end": "9999-12-31"}}
    stored = await create(client, flag)
    assert stored["period"]["end"] == "9999-12-31"
    for query, found in (
        ("date=gt9999", False),
        ("date=ge9999-12-31", False),
        ("date=lt9999", True),
    ):
        assert await _found(client, "/Flag", *query.split("=")) == (
            {stored["id"]} if found else set()
        )
    assert await _found(client, "/Flag", "date", "sa2026-01-09") == {stored["id"]}
    assert await _found(client, "/Flag", "date", "eb9999-12-31") == set()
    assert span("9999-12-31T23:59:59-14:00")[1] < LATEST


@pytest.mark.parametrize(
    "value",
    [
        "0000",
        "0000-01-01",
        "2020-13",
        "2020-02-30",
        "2020-01-01T00:00:00%2B15:00",
        "2020-01-01T00:00:00-14:30",
        "2020-01-01T25:00:00Z",
        "10000",
        "gt0000-12-31",
    ],
)
@pytest.mark.parametrize(("resource_type", "key"), SEARCHES)
async def test_what_is_not_a_fhir_date_is_400_naming_the_parameter(
    client: httpx.AsyncClient, resource_type: str, key: str, value: str
) -> None:
    response = await client.get(f"/{resource_type}?{key}={value}")
    assert response.status_code == 400, response.text
    assert outcome_expressions(response) == [key]


@pytest.mark.parametrize(
    ("element", "value"),
    [
        ("birthDate", "0000-01-01"),
        ("birthDate", "9999-13-01"),
        ("birthDate", "10000-01-01"),
    ],
)
async def test_a_patient_birth_date_that_is_not_a_fhir_date_is_refused(
    client: httpx.AsyncClient, element: str, value: str
) -> None:
    response = await client.post("/Patient", json=f.patient() | {element: value})
    assert response.status_code in (400, 422), response.text
    assert any(element in e for e in outcome_expressions(response)), response.text


@pytest.mark.parametrize("end", ["0000-01-01", "2020-01-01T00:00:00+15:00", "9999-12-31T24:00:00Z"])
async def test_a_flag_period_end_that_is_not_a_fhir_date_is_refused(
    client: httpx.AsyncClient, end: str
) -> None:
    child = reference(await create(client, f.patient()))
    flag = f.flag(subject=child) | {"period": {"start": "2026-01-10", "end": end}}
    response = await client.post("/Flag", json=flag)
    assert response.status_code in (400, 422), response.text
    assert any("period" in e for e in outcome_expressions(response)), response.text
