"""Search against an oracle: random populations and single-parameter queries, checked against
an independent evaluation of the spec's rules in plain Python (http://hl7.org/fhir/R4/search.html).
"""

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from tests.conftest import BASE, empty_database
from tests.dates import matches as date_matches
from tests.http import create

SYSTEMS = ("https://example.org/a", "https://example.org/b")
SNOMED = "http://snomed.info/sct"
LOCAL = "https://example.org/codes"
CODES = ((SNOMED, "c1"), (SNOMED, "c2"), (LOCAL, "c1"))
GENDERS = ("male", "female", "other", "unknown")
STATUSES = ("active", "inactive", "entered-in-error")
PREFIXES = ("", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
# Letters that fold to others (case, accents, ß -> ss, the ligature ﬁ -> fi) and LIKE wildcards.
ALPHABET = "aAáÁbBßçÇﬁ_%"
IDENTIFIER_VALUES = ("1", "2", "x")
ZONES = ("Z", "+05:00", "-03:30", "")

Resource = dict[str, Any]
Pair = tuple[str | None, str]


@dataclass(frozen=True)
class Query:
    """One single-parameter search; `{p3}` in the value stands for the id of Patient p3."""

    resource_type: str
    key: str
    value: str

    def __str__(self) -> str:
        return f"{self.resource_type}?{self.key}={self.value}"


# The oracle: the spec's rules, written independently of the server.


def fold(text: str) -> str:
    """Compatibility-decomposed, combining marks dropped, casefolded, whitespace collapsed."""
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


_DATE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Span = tuple[float, float]


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def span(text: str) -> Span:
    """[low, high) in microseconds that a date or dateTime covers (UTC when no zone)."""
    match = _DATE.match(text)
    assert match is not None, text
    year, month, day, hour, minute, second, zone = match.groups()
    low = datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
    if hour is not None:
        low += timedelta(hours=int(hour), minutes=int(minute), seconds=int(second))
        if zone and zone != "Z":
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            low -= offset if zone[0] == "+" else -offset
        return _micros(low), _micros(low + timedelta(seconds=1))
    if day is not None:
        high = low + timedelta(days=1)
    elif month is not None:
        high = low.replace(year=low.year + low.month // 12, month=low.month % 12 + 1)
    else:
        high = low.replace(year=low.year + 1)
    return _micros(low), _micros(high)


def _tokens(resource: Resource, name: str) -> list[Pair]:
    if name == "gender" and "gender" in resource:
        return [(None, resource["gender"])]
    if name == "active" and "active" in resource:
        return [(None, "true" if resource["active"] else "false")]
    if name == "identifier":
        return [(i.get("system"), i["value"]) for i in resource.get("identifier", [])]
    if name == "status":
        return [(None, resource["status"])]
    if name == "code":
        return [(c["system"], c["code"]) for c in resource["code"]["coding"]]
    return []


def _strings(resource: Resource, name: str) -> list[str]:
    parts = []
    for human in resource.get("name", []):
        if name in ("family", "name") and "family" in human:
            parts.append(human["family"])
        if name in ("given", "name"):
            parts.extend(human.get("given", []))
    return parts


def _spans(resource: Resource, name: str) -> list[Span]:
    if name == "birthdate" and "birthDate" in resource:
        return [span(resource["birthDate"])]
    if name == "date" and "period" in resource:
        period = resource["period"]
        low = span(period["start"])[0] if "start" in period else float("-inf")
        high = span(period["end"])[1] if "end" in period else float("inf")
        return [(low, high)]
    return []


def _token_matches(value: str, pair: Pair) -> bool:
    if "|" not in value:
        return pair[1] == value
    system, code = value.split("|")
    if not code:
        return pair[0] == system
    return pair[1] == code and pair[0] == (system or None)


def _string_matches(modifier: str, value: str, part: str) -> bool:
    if modifier == "exact":
        return part == value
    if modifier == "contains":
        return fold(value) in fold(part)
    return fold(part).startswith(fold(value))


def _values(resource: Resource, name: str, ids: dict[str, str]) -> list[Any]:
    if name in ("family", "given", "name"):
        return _strings(resource, name)
    if name in ("birthdate", "date"):
        return _spans(resource, name)
    if name == "patient":
        return [resource["subject"]["reference"]]
    return _tokens(resource, name)


def oracle_matches(query: Query, resource: Resource, ids: dict[str, str]) -> bool:
    """Whether `resource` matches the query, by the spec."""
    name, _, modifier = query.key.partition(":")
    values = _values(resource, name, ids)
    if modifier == "missing":
        return (not values) == (query.value == "true")
    if name in ("family", "given", "name"):
        return any(_string_matches(modifier, query.value, part) for part in values)
    if name in ("birthdate", "date"):
        prefix = query.value[:2] if query.value[:2].isalpha() else "eq"
        searched = span(query.value.removeprefix(prefix))
        return any(date_matches(prefix, target, searched) for target in values)
    if name == "patient":
        target = query.value.format(**ids).removeprefix(f"{BASE}/").removeprefix("Patient/")
        return values == [f"Patient/{target}"]
    hit = any(_token_matches(query.value, pair) for pair in values)
    return not hit if modifier == "not" else hit


# The strategies: a population, then queries built from what it holds.


def _date(year_from: int, year_to: int) -> st.SearchStrategy[str]:
    return st.builds(
        lambda year, month, day, precision: f"{year:04d}-{month:02d}-{day:02d}"[:precision],
        st.integers(year_from, year_to),
        st.integers(1, 12),
        st.integers(1, 28),
        st.sampled_from((4, 7, 10)),
    )


_NAME_TEXT = st.text(ALPHABET, min_size=1, max_size=4)


@st.composite
def _patient(draw: st.DrawFn) -> Resource:
    resource: Resource = {"resourceType": "Patient"}
    names = []
    for _ in range(draw(st.integers(0, 2))):
        human: Resource = {}
        if draw(st.booleans()):
            human["family"] = draw(_NAME_TEXT)
        given = draw(st.lists(_NAME_TEXT, max_size=2))
        if given or not human:
            human["given"] = given or [draw(_NAME_TEXT)]
        names.append(human)
    if names:
        resource["name"] = names
    identifiers = draw(
        st.lists(
            st.tuples(st.sampled_from((*SYSTEMS, None)), st.sampled_from(IDENTIFIER_VALUES)),
            max_size=2,
        )
    )
    if identifiers:
        resource["identifier"] = [
            {"value": value} | ({"system": system} if system else {})
            for system, value in identifiers
        ]
    for key, strategy in (
        ("gender", st.sampled_from(GENDERS)),
        ("active", st.booleans()),
        ("birthDate", _date(2014, 2016)),
    ):
        if draw(st.booleans()):
            resource[key] = draw(strategy)
    return resource


@st.composite
def _flag(draw: st.DrawFn, patients: int) -> Resource:
    system, code = draw(st.sampled_from(CODES))
    resource: Resource = {
        "resourceType": "Flag",
        "status": draw(st.sampled_from(STATUSES)),
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{{p{draw(st.integers(0, patients - 1))}}}"},
    }
    period = {}
    if draw(st.booleans()):
        period["start"] = draw(_date(2025, 2025))
    if draw(st.booleans()):
        period["end"] = draw(_date(2026, 2027))
    if period:
        resource["period"] = period
    return resource


@dataclass(frozen=True)
class Population:
    """Patients p0.., and Flags f0.. whose subjects name a patient label."""

    patients: list[Resource]
    flags: list[Resource]


@st.composite
def _population(draw: st.DrawFn) -> Population:
    patients = draw(st.lists(_patient(), min_size=8, max_size=15))
    flags = draw(st.lists(_flag(len(patients)), min_size=2, max_size=12))
    return Population(patients, flags)


def _probe(draw: st.DrawFn, parts: list[str]) -> str:
    """Text to search for: often a piece of a stored value, sometimes recased; or random."""
    if parts and draw(st.integers(0, 3)) > 0:
        part = draw(st.sampled_from(parts))
        start = draw(st.sampled_from((0, 0, draw(st.integers(0, len(part) - 1)))))
        text = part[start : draw(st.integers(start + 1, len(part)))]
        return draw(st.sampled_from((text, text, text.upper(), text.lower())))
    return draw(st.text(ALPHABET, min_size=1, max_size=3))


def _token_value(draw: st.DrawFn, pairs: list[tuple[str | None, str]]) -> str:
    system, code = draw(st.sampled_from(pairs))
    form = draw(st.sampled_from(("code", "both", "no-system", "system")))
    if form == "code":
        return code
    if form == "no-system":
        return f"|{code}"
    chosen = system or draw(st.sampled_from(SYSTEMS))
    return f"{chosen}|" if form == "system" else f"{chosen}|{code}"


def _date_value(draw: st.DrawFn, years: tuple[int, int]) -> str:
    text = draw(_date(*years))
    if len(text) == 10 and draw(st.booleans()):
        text += f"T{draw(st.integers(0, 23)):02d}:30:00{draw(st.sampled_from(ZONES))}"
    return draw(st.sampled_from(PREFIXES)) + text


@st.composite
def _query(draw: st.DrawFn, population: Population) -> Query:
    patients, kind = population.patients, draw(st.integers(0, 9))
    if kind == 0:
        key = draw(st.sampled_from(("gender", "gender:not")))
        return Query("Patient", key, draw(st.sampled_from(GENDERS)))
    if kind == 1:
        key = draw(st.sampled_from(("active", "active:not")))
        return Query("Patient", key, draw(st.sampled_from(("true", "false"))))
    if kind == 2:
        pairs = [(s, v) for s in (*SYSTEMS, None) for v in IDENTIFIER_VALUES]
        key = draw(st.sampled_from(("identifier", "identifier", "identifier:not")))
        return Query("Patient", key, _token_value(draw, pairs))
    if kind == 3:
        names = ("gender", "active", "identifier", "birthdate", "family", "given", "name")
        key = f"{draw(st.sampled_from(names))}:missing"
        return Query("Patient", key, draw(st.sampled_from(("true", "false"))))
    if kind in (4, 5):
        name = draw(st.sampled_from(("family", "given", "name")))
        modifier = draw(st.sampled_from(("", "", ":exact", ":contains")))
        parts = [part for patient in patients for part in _strings(patient, name)]
        return Query("Patient", name + modifier, _probe(draw, parts))
    if kind == 6:
        return Query("Patient", "birthdate", _date_value(draw, (2013, 2017)))
    if kind == 7:
        label = f"p{draw(st.integers(0, len(patients) - 1))}"
        form = draw(st.sampled_from(("Patient/{%s}", "{%s}", BASE + "/Patient/{%s}")))
        return Query("Flag", "patient", form % label)
    if kind == 8:
        if draw(st.booleans()):
            key = draw(st.sampled_from(("status", "status:not")))
            return Query("Flag", key, draw(st.sampled_from(STATUSES)))
        key = draw(st.sampled_from(("code", "code", "code:not")))
        return Query("Flag", key, _token_value(draw, list(CODES)))
    if draw(st.integers(0, 3)) == 0:
        return Query("Flag", "date:missing", draw(st.sampled_from(("true", "false"))))
    return Query("Flag", "date", _date_value(draw, (2024, 2028)))


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[Population, list[Query]]:
    population = draw(_population())
    return population, draw(st.lists(_query(population), min_size=12, max_size=12))


def _resolve(flag: Resource, ids: dict[str, str]) -> Resource:
    """A generated Flag with its subject label replaced by the patient's id."""
    return flag | {"subject": {"reference": flag["subject"]["reference"].format(**ids)}}


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(scenario=_scenario())
async def test_search_agrees_with_the_spec_oracle(
    app: FastAPI, client: httpx.AsyncClient, scenario: tuple[Population, list[Query]]
) -> None:
    population, queries = scenario
    await empty_database(app)
    ids: dict[str, str] = {}
    for index, patient in enumerate(population.patients):
        ids[f"p{index}"] = (await create(client, patient))["id"]
    stored = {f"p{i}": patient for i, patient in enumerate(population.patients)}
    for index, flag in enumerate(population.flags):
        resolved = _resolve(flag, ids)
        ids[f"f{index}"] = (await create(client, resolved))["id"]
        stored[f"f{index}"] = resolved
    labels = {resource_id: label for label, resource_id in ids.items()}
    note(f"ids: {ids}")
    for query in queries:
        expected = {
            label
            for label, resource in stored.items()
            if resource["resourceType"] == query.resource_type
            and oracle_matches(query, resource, ids)
        }
        candidates = sum(r["resourceType"] == query.resource_type for r in stored.values())
        share = "none" if not expected else "all" if len(expected) == candidates else "some"
        event(f"{query.key.partition(':')[0]} matches {share}")
        params = httpx.QueryParams([(query.key, query.value.format(**ids)), ("_count", "100")])
        try:
            response = await client.get(f"/{query.resource_type}", params=params)
        except Exception as error:
            raise AssertionError(f"{query}: the server raised {error!r}") from error
        assert response.status_code == 200, f"{query}: {response.text}"
        got = {
            labels.get(e["resource"]["id"], e["resource"]["id"])
            for e in response.json().get("entry", [])
            if e["search"]["mode"] == "match"
        }
        assert got == expected, (
            f"{query}\nexpected {sorted(expected)}\ngot      {sorted(got)}\n"
            + "\n".join(f"{label}: {json.dumps(stored[label])}" for label in sorted(stored))
        )
