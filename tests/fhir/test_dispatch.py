"""Shortcuts change which route a request tries first, never which endpoint answers it."""

from typing import Any

import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute, Match

from app.fhir.dispatch import Shortcuts

TYPES = [
    "Patient", "Flag", "Organization", "Condition", "RelatedPerson", "AuditEvent",
    "CodeSystem", "ValueSet", "SearchParameter", "OperationDefinition", "Foo", "flag",
]  # fmt: skip
IDS = [
    "abc", "a.b-c", "..", "$safeguarding-summary", "$validate-code", "_history", "_search",
    "x" * 64, "x" * 65, "%24x", "a b", "",
]  # fmt: skip
TAILS = ["", "/", "/_history", "/_history/2", "/Flag", "/$safeguarding-summary"]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _paths() -> list[str]:
    paths = ["/fhir", "/fhir/", "/fhir/metadata", "/fhir/_history", "/auth/token", "/_status"]
    for kind in TYPES:
        paths += [f"/fhir/{kind}", f"/fhir/{kind}/", f"/fhir/{kind}/_search"]
        paths += [f"/fhir/{kind}/{logical_id}{tail}" for logical_id in IDS for tail in TAILS]
    return paths


def _chosen(routes: list[BaseRoute], method: str, path: str) -> tuple[Any, ...] | None:
    """What the router would run: the first full match, else the first partial one."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.FULL:
            return "full", child.get("endpoint"), child.get("path_params")
        if match == Match.PARTIAL and partial is None:
            partial = ("partial", route)
    return partial


@pytest.mark.parametrize("method", METHODS)
def test_every_request_reaches_the_endpoint_it_reached_without_shortcuts(
    app: FastAPI, method: str
) -> None:
    table = app.router.routes
    without = [route for route in table if not isinstance(route, Shortcuts)]
    assert len(without) == len(table) - 1
    taken = 0
    for path in _paths():
        found = _chosen(table, method, path)
        assert found == _chosen(without, method, path), (method, path)
        taken += table[0].matches({"type": "http", "method": method, "path": path,
                                   "root_path": ""})[0] == Match.FULL  # fmt: skip
    assert taken > 0 or method in ("HEAD", "OPTIONS")


def test_the_everyday_interactions_are_tried_first(app: FastAPI) -> None:
    shortcuts = app.router.routes[0]
    assert isinstance(shortcuts, Shortcuts)
    everyday = [
        ("POST", "/fhir/Flag"), ("GET", "/fhir/Flag/abc"), ("GET", "/fhir/Patient"),
        ("PUT", "/fhir/Condition/x"), ("DELETE", "/fhir/Flag/x"),
        ("GET", "/fhir/Flag/x/_history/3"),
    ]  # fmt: skip
    for method, path in everyday:
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        assert shortcuts.matches(scope)[0] == Match.FULL, (method, path)
    bench = {"type": "http", "method": "GET", "path": "/_status", "root_path": ""}
    assert shortcuts.matches(bench)[0] == Match.NONE
