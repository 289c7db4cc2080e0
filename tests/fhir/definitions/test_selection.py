"""The one in-memory search over read-only definitions, as each type answers it today: what a
type skips, which modifiers it takes, how a token's system and a string are matched, and how it
words what it ignores or refuses (http://hl7.org/fhir/R4/search.html)."""

from typing import Any

import httpx
import pytest

from app.flags.codes import CARE_TEAM_ROLES, FLAG_TYPES, REMOVAL_REASONS, vocabulary
from tests.conftest import BASE

FLAG_SYSTEM = vocabulary(BASE).flag_type_system
STATUS = "http://hl7.org/fhir/publication-status"
DEFINED = ["Flag-status", "Flag-category", "Flag-code", "RelatedPerson-linked-patient"]
EVERY = [FLAG_TYPES, REMOVAL_REASONS, CARE_TEAM_ROLES]
Answer = tuple[int, list[str] | None, list[tuple[str, list[str]]]]


def _answer(response: httpx.Response) -> Answer:
    """The status, the ids matched (None for an error) and each issue's text and expression."""
    body: dict[str, Any] = response.json()
    if body["resourceType"] == "OperationOutcome":
        outcomes, ids = [body], None
    else:
        entries = body.get("entry", [])
        outcomes = [e["resource"] for e in entries if e["search"]["mode"] == "outcome"]
        ids = [e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"]
    issues = [(i["diagnostics"], i["expression"]) for o in outcomes for i in o["issue"]]
    return response.status_code, ids, issues


def _modifier(key: str) -> Answer:
    name, modifier = key.split(":")
    return 400, None, [(f"modifier :{modifier} is not supported on {name}", [key])]


def _empty(named: str) -> Answer:
    return 400, None, [(f"search parameter {named} has no value", [named])]


def _ignored(ids: list[str], handled: str, key: str) -> Answer:
    return 200, ids, [(f"{handled} search parameter '{key}' was ignored", [key])]


def _found(*ids: str) -> Answer:
    return 200, list(ids), []


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Modifiers: none on SearchParameter; name:exact and name:contains on the vocabulary.
        ("SearchParameter?code:exact=code", _modifier("code:exact")),
        ("SearchParameter?code:contains=cod", _modifier("code:contains")),
        ("CodeSystem?name:exact=SafeguardingFlagType", _found(FLAG_TYPES)),
        ("CodeSystem?name:contains=REASON", _found(REMOVAL_REASONS)),
        ("CodeSystem?status:exact=active", _modifier("status:exact")),
        # A bare ':' is no modifier; an empty value names the parameter on SearchParameter but
        # the key as sent on the vocabulary.
        ("SearchParameter?code:=code", _found("Flag-code")),
        ("CodeSystem?name:=safe", _found(FLAG_TYPES)),
        ("SearchParameter?code:=", _empty("code")),
        ("CodeSystem?name:=", _empty("name:")),
        ("CodeSystem?name:exact=,", _empty("name:exact")),
        # Skipped: every result parameter, by name, on SearchParameter; on the vocabulary only
        # the keys its search handles, and any other result parameter is not supported here.
        ("SearchParameter?_sort=code", _found(*DEFINED)),
        ("SearchParameter?_count:x=1", _found(*DEFINED)),
        ("SearchParameter?_since=2020", _found(*DEFINED)),
        ("CodeSystem?_sort=name", _ignored(EVERY, "not supported here", "_sort")),
        ("CodeSystem?_count:x=1", _ignored(EVERY, "not supported here", "_count:x")),
        ("SearchParameter?publisher=x", _ignored(DEFINED, "unknown", "publisher")),
        ("CodeSystem?publisher=x", _ignored(EVERY, "unknown", "publisher")),
        ("SearchParameter?_tag=x", _ignored(DEFINED, "unknown", "_tag")),
        # A token with a system matches nothing, but status with the publication-status system.
        ("SearchParameter?code=|code", _found("Flag-code")),
        ("SearchParameter?code=x|code", _found()),
        (f"SearchParameter?code={STATUS}|status", _found()),
        ("SearchParameter?code=x|code,status", _found("Flag-status")),
        (f"CodeSystem?status={STATUS}|active", _found(*EVERY)),
        ("CodeSystem?status=|active", _found(*EVERY)),
        (f"CodeSystem?version={STATUS}|0.1.0", _found()),
        ("CodeSystem?version=|0.1.0", _found(*EVERY)),
        # Strings start with the value, any case or accent; uris and tokens match exactly; a
        # list element matches if any of its values does.
        ("CodeSystem?name=SÀFE", _found(FLAG_TYPES)),
        (f"CodeSystem?url={FLAG_SYSTEM[:-1]}", _found()),
        ("CodeSystem?version=0.1", _found()),
        (f"SearchParameter?url={BASE}/SearchParameter/Flag-cod", _found()),
        ("SearchParameter?code=STATUS", _found()),
        ("SearchParameter?base=Flag", _found(*DEFINED[:3])),
        ("SearchParameter?base=Patient,RelatedPerson", _found(*DEFINED[3:])),
        ("SearchParameter?code=a\\,b", _found()),
    ],
)
async def test_each_type_answers_as_its_table_says(
    client: httpx.AsyncClient, query: str, expected: Answer
) -> None:
    assert _answer(await client.get(f"/{query}")) == expected
