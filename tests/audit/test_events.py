"""The stored form of an AuditEvent: what is searched (columns, links) is what the served
bytes say, however the record was built."""

import orjson
import pytest

from app.access import Caller
from app.access.trail import Trail
from app.audit.events import Server, audit_row, links_of, search_columns

SERVER = Server("http://test/fhir", "http://test/fhir/clients")


def _trail(*, query: str | None = None) -> Trail:
    trail = Trail("rid-1", "search-type", "R", "10.0.0.1", query=query)
    trail.named("p1")
    trail.saw("Flag", "f1", "p1", 2)
    trail.saw("Patient", "p2", None)
    trail.saw("Flag", "f1", "p1")
    trail.saw("Organization", "o1", None)
    return trail


@pytest.mark.parametrize(
    "caller",
    [None, Caller("gp", "org-1", "health"), Caller("job", None, "system")],
    ids=["anonymous", "with-organisation", "without-organisation"],
)
@pytest.mark.parametrize("status", [200, 404, 503])
def test_columns_and_links_are_what_the_stored_bytes_say(
    caller: Caller | None, status: int
) -> None:
    row = audit_row(
        _trail(query="Flag?subject=p1"), caller, SERVER, status=status, description="x", recorded=1
    )
    event = orjson.loads(row.body)
    assert (row.client_id, row.client_org, row.subtype, row.action, row.outcome) == (
        search_columns(event)
    )
    assert links_of(event) == (
        ("patient", "Patient/p1"),
        ("patient", "Patient/p2"),
        ("entity", "Flag/f1"),
        ("entity", "Organization/o1"),
    )


def test_a_value_that_cannot_be_an_id_names_no_patient() -> None:
    trail = Trail("rid-2", "read", "R")
    for hostile in ("a\x00b", "a" * 65, "", "x/y"):
        trail.named(hostile)
    assert trail.patients == {}
