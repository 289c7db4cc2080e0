"""The Postman collection's shape, checked without node: a folder per user journey, tests and a
saved example on every request, and no variable used that nothing defines. (`make postman`
runs it against a server with newman.)"""

import json
import re
from pathlib import Path
from typing import Any

import pytest

OPENAPI = Path(__file__).resolve().parent.parent / "openapi"
COLLECTION = json.loads((OPENAPI / "safeguard-fhir.postman_collection.json").read_text())
ENVIRONMENT = json.loads((OPENAPI / "safeguard-fhir.postman_environment.json").read_text())
JOURNEYS = {
    "a": "obtaining a token",
    "b": "a gp registers a child and reads her flags",
    "c": "an emergency department checks a child from another authority",
    "d": "a local authority raises a child protection plan, then ends it",
    "e": "a home-education team records elective home education",
    "f": "family links",
    "g": "a family in one transaction",
    "h": "_history polling, $export and subscriptions",
    "i": "error cases",
}
ENVIRONMENT_VALUES = {value["key"]: value["value"] for value in ENVIRONMENT["values"]}
DYNAMIC = {"$guid"}  # Postman's own dynamic variables


def _requests(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for item in items:
        found.extend(_requests(item["item"]) if "item" in item else [item])
    return found


REQUESTS = _requests(COLLECTION["item"])


def _script(item: dict[str, Any], listen: str) -> str:
    return "\n".join(
        "\n".join(event["script"]["exec"])
        for event in item.get("event", [])
        if event["listen"] == listen
    )


def _every_script() -> str:
    items = [COLLECTION, *COLLECTION["item"], *REQUESTS]
    return "\n".join(_script(item, "prerequest") + _script(item, "test") for item in items)


def test_there_is_a_folder_per_journey_in_order() -> None:
    folders = [item["name"] for item in COLLECTION["item"]]
    assert [name.split(".")[0] for name in folders] == list(JOURNEYS)
    for name, (_, journey) in zip(folders, JOURNEYS.items(), strict=True):
        assert journey in name.lower(), name


def test_every_journey_has_requests_and_says_who_takes_part() -> None:
    for folder in COLLECTION["item"]:
        assert folder["item"], folder["name"]
        assert folder["description"], folder["name"]


@pytest.mark.parametrize("item", REQUESTS, ids=[item["name"] for item in REQUESTS])
def test_every_request_tests_its_answer(item: dict[str, Any]) -> None:
    tests = _script(item, "test")
    assert "pm.test(" in tests
    assert re.search(r"status\(\d{3}\)|\.code\)\.to\.be\.oneOf", tests), "no check of the status"
    assert item["request"]["description"]


@pytest.mark.parametrize("item", REQUESTS, ids=[item["name"] for item in REQUESTS])
def test_every_request_has_a_saved_example(item: dict[str, Any]) -> None:
    assert item["response"], "no saved example"
    for example in item["response"]:
        assert isinstance(example["code"], int)
        assert example["status"]
        assert example["originalRequest"]["method"] == item["request"]["method"]
        assert example["body"] or example["code"] in (202, 204)  # a job still running: none


def test_every_request_says_which_client_calls() -> None:
    tokens = {key for key in ENVIRONMENT_VALUES if key.endswith("Token")}
    for item in REQUESTS:
        auth = item["request"]["auth"]
        if auth["type"] == "bearer":
            (token,) = (entry["value"] for entry in auth["bearer"] if entry["key"] == "token")
            names = re.findall(r"\{\{(\w+)\}\}", token)
            assert not names or set(names) <= tokens, item["name"]
        else:
            assert auth["type"] == "noauth", item["name"]


def test_the_environment_names_the_server_and_the_clients() -> None:
    assert ENVIRONMENT_VALUES["baseUrl"].endswith("/fhir")
    for client in ("gp", "hospital", "laA", "laB"):
        assert ENVIRONMENT_VALUES[f"{client}ClientId"]
        assert ENVIRONMENT_VALUES[f"{client}Organization"]
        assert f"{client}Token" in ENVIRONMENT_VALUES


def test_no_token_is_committed() -> None:
    for value in ENVIRONMENT["values"]:
        if value["key"].endswith("Token"):
            assert value["value"] == "" and value["type"] == "secret"
    assert "eyJ" not in json.dumps(COLLECTION)  # the start of every JWT


def test_every_variable_used_is_defined() -> None:
    scripts = _every_script()
    defined = (
        set(ENVIRONMENT_VALUES)
        | {variable["key"] for variable in COLLECTION["variable"]}
        | set(re.findall(r"pm\.variables\.set\('(\w+)'", scripts))
        | DYNAMIC
    )
    used = set(re.findall(r"\{\{([$\w]+)\}\}", json.dumps([r["request"] for r in REQUESTS])))
    used |= set(re.findall(r"pm\.(?:variables|collectionVariables)\.get\('(\w+)'\)", scripts))
    assert used - defined == set()


def test_each_collection_variable_is_set_by_a_script() -> None:
    scripts = _every_script()
    for variable in COLLECTION["variable"]:
        key = variable["key"]
        assert f"'{key}'" in scripts, f"{key} is declared but no script sets it"


def test_empty_searchsets_are_read_without_an_entry_array() -> None:
    """FHIR JSON leaves out an empty `entry`: a script counting entries must not assume it."""
    assert not re.search(r"\.entry\.length", _every_script())


def test_newman_is_pinned_exactly() -> None:
    package = json.loads((OPENAPI / "postman" / "package.json").read_text())
    assert re.fullmatch(r"\d+\.\d+\.\d+", package["dependencies"]["newman"])
    lock = json.loads((OPENAPI / "postman" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/newman"]["version"] == package["dependencies"]["newman"]
