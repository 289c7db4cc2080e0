"""An auditor's search of the audit trail, checked against the trail itself: one module's worth
of requests by several clients is recorded, then every search parameter, prefix, OR and AND,
the NHS-number chain, paging, totals and cursors are compared with what the stored events say.

Every search here is ANDed with `date=lt<end of the recorded requests>`: the auditor's own
searches are recorded too, and must not move the answers under the test's feet.
"""

import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from app.clock import instant
from tests import factories as f
from tests.audit.conftest import (
    AUDIT_ORG,
    AUDIT_SCOPE,
    AUDITOR,
    CLIENTS,
    matched_ids,
    open_client,
    search,
    stored_events,
)
from tests.conftest import empty_database
from tests.dates import CHECKED, matches, span
from tests.http import create
from tests.tokens import bearer

INTERACTION = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
NHS = f.NHS
N1, N2, N2_NOW, N3, UNUSED = (f.nhs_number(serial) for serial in (7101, 7102, 7103, 7104, 7105))
Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Recorded:
    """What the module's requests left: the resources, and every AuditEvent (newest first)."""

    p1: str
    p2: str
    p3: str
    flag: str
    events: list[tuple[int, Event]]
    end: str  # an instant after every one of them

    def ids(self, keep: Callable[[Event], bool]) -> list[str]:
        """The ids of the events `keep` holds for, newest first."""
        return [event["id"] for _, event in self.events if keep(event)]


async def _requests(app: FastAPI, writer: httpx.AsyncClient) -> tuple[str, str, str, str]:
    """Requests by a GP, a hospital and the system client; a refused token request."""
    for org in ("audit-gp", "audit-hosp"):
        put = await writer.put(f"/Organization/{org}", json=f.organization() | {"id": org})
        assert put.status_code == 201, put.text
    p1, p2, p3 = [(await create(writer, f.patient(nhs=n)))["id"] for n in (N1, N2, N3)]
    gp = await open_client(app, "audit-gp-client", "health", "system/*.cruds", "audit-gp")
    hospital = await open_client(app, "audit-hosp-client", "health", "system/*.cruds", "audit-hosp")
    async with gp, hospital:
        assert (await gp.get(f"/Patient/{p1}")).status_code == 200
        flag = (await create(gp, f.flag(subject=f"Patient/{p1}")))["id"]
        assert (await hospital.get(f"/Patient/{p2}")).status_code == 200
        assert (await hospital.get("/Flag", params={"patient": f"Patient/{p1}"})).is_success
        assert (await hospital.get("/Patient", params={"_id": f"{p1},{p2}"})).is_success
        assert (await hospital.get("/Patient/not-there")).status_code == 404
    changed = await writer.get(f"/Patient/{p2}")
    renumbered = changed.json() | {"identifier": [{"system": NHS, "value": N2_NOW}]}
    assert (await writer.put(f"/Patient/{p2}", json=renumbered)).status_code == 200
    assert (await writer.delete(f"/Patient/{p3}")).status_code == 200
    token = await writer.post("http://test/auth/token", data={"grant_type": "client_credentials"})
    assert token.status_code == 400
    return p1, p2, p3, flag


@pytest.fixture(scope="module")
async def recorded(app: FastAPI) -> Recorded:
    """The module's requests, recorded once."""
    await empty_database(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test/fhir", headers=await bearer(app)
    ) as writer:
        p1, p2, p3, flag = await _requests(app, writer)
    events = await stored_events(app)
    end = instant(max(span(event["recorded"])[0] for _, event in events) + 1)
    return Recorded(p1, p2, p3, flag, events, end)


@pytest.fixture(scope="module")
async def auditor(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The auditor, for the whole module."""
    async with await open_client(app, AUDITOR, "auditor", AUDIT_SCOPE, AUDIT_ORG) as http:
        yield http


async def found(
    auditor: httpx.AsyncClient, recorded: Recorded, *params: tuple[str, str]
) -> list[str]:
    """The ids an auditor's search finds among the recorded events (one page holds them)."""
    bundle = await search(auditor, [*params, ("date", f"lt{recorded.end}"), ("_count", "500")])
    return matched_ids(bundle)


# The oracle: what each parameter means, read from the stored events themselves.


def names_patient(patient_id: str) -> Callable[[Event], bool]:
    return lambda event: any(
        e.get("what", {}).get("reference") == f"Patient/{patient_id}"
        and e.get("role", {}).get("code") == "1"
        for e in event["entity"]
    )


def has_agent(reference: str) -> Callable[[Event], bool]:
    return lambda event: any(a.get("who", {}).get("reference") == reference for a in event["agent"])


def has_client(client_id: str) -> Callable[[Event], bool]:
    return lambda event: any(
        a.get("who", {}).get("identifier") == {"system": CLIENTS, "value": client_id}
        for a in event["agent"]
    )


def has_entity(reference: str) -> Callable[[Event], bool]:
    return lambda event: any(
        "/".join(e.get("what", {}).get("reference", "").split("/")[:2]) == reference
        for e in event["entity"]
    )


def either(*tests: Callable[[Event], bool]) -> Callable[[Event], bool]:
    return lambda event: any(test(event) for test in tests)


def both(*tests: Callable[[Event], bool]) -> Callable[[Event], bool]:
    return lambda event: all(test(event) for test in tests)


def field(name: str, *values: str) -> Callable[[Event], bool]:
    return lambda event: event[name] in values


def subtype(system: str, code: str | None = None) -> Callable[[Event], bool]:
    return lambda event: (
        event["subtype"][0]["system"] == system
        and code
        in (
            None,
            event["subtype"][0]["code"],
        )
    )


async def test_patient_by_reference_bare_id_and_absolute_url(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    for patient_id in (recorded.p1, recorded.p2, recorded.p3):
        expected = recorded.ids(names_patient(patient_id))
        assert expected
        for value in (
            f"Patient/{patient_id}",
            patient_id,
            f"http://test/fhir/Patient/{patient_id}",
        ):
            assert await found(auditor, recorded, ("patient", value)) == expected, value
        assert await found(auditor, recorded, ("patient:Patient", patient_id)) == expected


async def test_values_of_a_parameter_are_ored_and_parameters_anded(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    p1, p2 = names_patient(recorded.p1), names_patient(recorded.p2)
    ored = await found(auditor, recorded, ("patient", f"{recorded.p1},Patient/{recorded.p2}"))
    assert ored == recorded.ids(either(p1, p2))
    anded = await found(auditor, recorded, ("patient", recorded.p1), ("patient", recorded.p2))
    assert anded == recorded.ids(both(p1, p2)) != []
    mixed = await found(
        auditor, recorded, ("patient", recorded.p1), ("action", "R"), ("subtype", "read")
    )
    assert mixed == recorded.ids(both(p1, field("action", "R"), subtype(INTERACTION, "read")))
    assert mixed


async def test_agent_by_organization_and_by_client_identifier(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    gp_org = recorded.ids(has_agent("Organization/audit-gp"))
    assert gp_org
    assert await found(auditor, recorded, ("agent", "Organization/audit-gp")) == gp_org
    assert await found(auditor, recorded, ("agent:Organization", "audit-gp")) == gp_org
    assert await found(auditor, recorded, ("agent", "audit-gp")) == gp_org  # any type
    gp = recorded.ids(has_client("audit-gp-client"))
    assert gp == gp_org
    by_client = [("agent:identifier", f"{CLIENTS}|audit-gp-client")]
    assert await found(auditor, recorded, *by_client) == gp
    assert await found(auditor, recorded, ("agent:identifier", "audit-gp-client")) == gp
    either_client = f"{CLIENTS}|audit-gp-client,audit-hosp-client"
    assert await found(auditor, recorded, ("agent:identifier", either_client)) == recorded.ids(
        either(has_client("audit-gp-client"), has_client("audit-hosp-client"))
    )
    any_client = recorded.ids(lambda e: any("identifier" in a.get("who", {}) for a in e["agent"]))
    assert await found(auditor, recorded, ("agent:identifier", f"{CLIENTS}|")) == any_client
    assert len(any_client) < len(recorded.events)  # the refused token request names none
    for elsewhere in ("https://example.org/clients|audit-gp-client", "|audit-gp-client"):
        assert await found(auditor, recorded, ("agent:identifier", elsewhere)) == []


async def test_entity_by_reference_any_version_and_bare_id(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    flag = recorded.ids(has_entity(f"Flag/{recorded.flag}"))
    assert flag
    assert await found(auditor, recorded, ("entity", f"Flag/{recorded.flag}")) == flag
    assert await found(auditor, recorded, ("entity", f"Flag/{recorded.flag}/_history/1")) == flag
    assert await found(auditor, recorded, ("entity", recorded.flag)) == flag
    assert await found(auditor, recorded, ("entity:Flag", recorded.flag)) == flag
    p2 = recorded.ids(has_entity(f"Patient/{recorded.p2}"))
    assert await found(auditor, recorded, ("entity", f"Patient/{recorded.p2}")) == p2
    assert await found(auditor, recorded, ("entity", "https://elsewhere.org/Flag/1")) == []


async def test_action_outcome_and_subtype_tokens(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    action = "http://hl7.org/fhir/audit-event-action"
    outcome = "http://hl7.org/fhir/audit-event-outcome"
    cases: list[tuple[tuple[str, str], Callable[[Event], bool]]] = [
        (("action", "C"), field("action", "C")),
        (("action", f"{action}|D"), field("action", "D")),
        (("action", "R,C"), field("action", "R", "C")),
        (("action", f"{action}|"), lambda event: True),
        (("action", "https://elsewhere.org|C"), lambda event: False),
        (("action", "|C"), lambda event: False),
        (("outcome", "4"), field("outcome", "4")),
        (("outcome", f"{outcome}|0,4"), field("outcome", "0", "4")),
        (("subtype", "read"), subtype(INTERACTION, "read")),
        (
            ("subtype", f"{INTERACTION}|create,update"),
            either(subtype(INTERACTION, "create"), subtype(INTERACTION, "update")),
        ),
        (("subtype", f"{INTERACTION}|"), subtype(INTERACTION)),
        (("subtype", f"{DCM}|110122"), subtype(DCM, "110122")),
        (("subtype", f"{INTERACTION}|110122"), lambda event: False),
    ]
    for param, keep in cases:
        assert await found(auditor, recorded, param) == recorded.ids(keep), param
    assert recorded.ids(subtype(DCM, "110122"))  # the refused token request: a login


def _second(moment: str) -> str:
    return moment[:19] + "Z"


async def test_date_prefixes_against_the_ranges_they_mean(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    middle = recorded.events[len(recorded.events) // 2][1]["recorded"]
    for value in (middle, _second(middle), middle[:10], middle[:7], "2020", "2999-01-01"):
        for prefix in CHECKED:
            expected = recorded.ids(lambda e, p=prefix, v=value: matches(p, _moment(e), span(v)))
            assert await found(auditor, recorded, ("date", f"{prefix}{value}")) == expected, (
                prefix,
                value,
            )
    assert await found(auditor, recorded, ("date", f"ap{middle[:10]}")) == recorded.ids(
        lambda e: True
    )


def _moment(event: Event) -> tuple[int, int]:
    low = span(event["recorded"])[0]
    return low, low + 1


async def test_date_ranges_by_two_prefixes_and_by_or(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    moments = sorted({_moment(event)[0] for _, event in recorded.events})
    low, high = instant(moments[1]), instant(moments[-2])
    between = await found(auditor, recorded, ("date", f"ge{low}"), ("date", f"le{high}"))
    assert between == recorded.ids(lambda e: moments[1] <= _moment(e)[0] <= moments[-2])
    ends = await found(auditor, recorded, ("date", f"lt{low},gt{high}"))
    assert ends == recorded.ids(lambda e: not moments[1] <= _moment(e)[0] <= moments[-2])


async def test_patient_by_nhs_number_finds_live_renumbered_and_deleted_patients(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    chain = "patient.identifier"
    cases = [
        (f"{NHS}|{N1}", names_patient(recorded.p1)),
        (N1, names_patient(recorded.p1)),
        (f"{NHS}|{N2}", names_patient(recorded.p2)),  # its number since changed
        (f"{NHS}|{N2_NOW}", names_patient(recorded.p2)),
        (f"{NHS}|{N3}", names_patient(recorded.p3)),  # deleted since
        (f"{NHS}|{N1},{NHS}|{N3}", either(names_patient(recorded.p1), names_patient(recorded.p3))),
        (f"{NHS}|{UNUSED}", lambda event: False),
        (f"|{N1}", lambda event: False),  # a Patient's NHS number has its system
        (f"https://elsewhere.org|{N1}", lambda event: False),
    ]
    for value, keep in cases:
        assert await found(auditor, recorded, (chain, value)) == recorded.ids(keep), value
    anded = await found(auditor, recorded, (chain, N1), ("subtype", "create"))
    assert anded == recorded.ids(both(names_patient(recorded.p1), subtype(INTERACTION, "create")))


async def _walk(auditor: httpx.AsyncClient, params: list[tuple[str, str]]) -> list[list[str]]:
    """Every page of a search, following next links."""
    pages, bundle = [], await search(auditor, params)
    while True:
        pages.append(matched_ids(bundle))
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            return pages
        bundle = await search(auditor, parse_qsl(urlsplit(following[0]).query))


async def test_paging_newest_first_and_oldest_first_misses_and_repeats_nothing(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    everything = recorded.ids(lambda event: True)
    window = [("date", f"lt{recorded.end}"), ("_count", "3")]
    for sort, expected in ((None, everything), ("-date", everything), ("date", everything[::-1])):
        params = window + ([("_sort", sort)] if sort else [])
        pages = await _walk(auditor, params)
        assert [i for page in pages for i in page] == expected, sort
        assert all(len(page) == 3 for page in pages[:-1]) and len(pages) > 2


async def test_previous_link_leads_back_to_the_page_before(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    first = await search(auditor, [("date", f"lt{recorded.end}"), ("_count", "2")])
    assert "previous" not in {link["relation"] for link in first["link"]}
    links = {link["relation"]: link["url"] for link in first["link"]}
    second = await search(auditor, parse_qsl(urlsplit(links["next"]).query))
    back = {link["relation"]: link["url"] for link in second["link"]}["previous"]
    assert matched_ids(await search(auditor, parse_qsl(urlsplit(back).query))) == matched_ids(first)
    assert links["self"].startswith("http://test/fhir/AuditEvent?date=lt")


async def test_totals_and_summary_count(auditor: httpx.AsyncClient, recorded: Recorded) -> None:
    window = [("date", f"lt{recorded.end}")]
    everything = len(recorded.events)
    paged = await search(auditor, [*window, ("_count", "2")])
    assert "total" not in paged and len(matched_ids(paged)) == 2
    accurate = await search(auditor, [*window, ("_count", "2"), ("_total", "accurate")])
    assert accurate["total"] == everything
    estimate = await search(auditor, [*window, ("_count", "2"), ("_total", "estimate")])
    assert isinstance(estimate["total"], int)
    none = await search(auditor, [*window, ("_total", "none"), ("_count", "500")])
    assert "total" not in none
    whole = await search(auditor, [*window, ("_count", "500")])
    assert whole["total"] == everything  # one page holds them all
    for counted in ([*window, ("_summary", "count")], [*window, ("_count", "0")]):
        bundle = await search(auditor, counted)
        assert bundle["total"] == everything and bundle.get("entry", []) == []
    patient = [*window, ("patient", recorded.p1), ("_summary", "count")]
    assert (await search(auditor, patient))["total"] == len(
        recorded.ids(names_patient(recorded.p1))
    )


def _cursor(document: str) -> str:
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


async def test_a_tampered_or_foreign_cursor_is_400(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    first = await search(auditor, [("date", f"lt{recorded.end}"), ("_count", "2")])
    issued = dict(parse_qsl(urlsplit(first["link"][-1]["url"]).query))["_cursor"]
    tampered = [
        "not-a-cursor",
        "%%%",
        issued[:-3],
        _cursor('{"k": ["x", 1], "b": false, "s": "-date"}'),
        _cursor('{"k": [1], "b": false, "s": "-date"}'),
        _cursor('{"k": [1180591620717411303424, 1], "b": false, "s": "-date"}'),
        _cursor('{"k": [1, 18446744073709551616], "b": false, "s": "-date"}'),
        _cursor('{"k": [1, 1.5], "b": false, "s": "-date"}'),
        _cursor('{"k": [1, 1], "b": "no", "s": "-date"}'),
        _cursor("[1, 2]"),
    ]
    for cursor in tampered:
        response = await auditor.get("/AuditEvent", params={"_cursor": cursor})
        assert response.status_code == 400, (cursor, response.text)
        assert response.json()["issue"][0]["expression"] == ["_cursor"]
    oldest_first = await auditor.get("/AuditEvent", params={"_cursor": issued, "_sort": "date"})
    assert oldest_first.status_code == 400  # issued for newest first


async def test_search_by_post_finds_what_get_does(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    params = [("patient", recorded.p1), ("date", f"lt{recorded.end}"), ("_count", "500")]
    response = await auditor.post("/AuditEvent/_search", data=dict(params))
    assert response.status_code == 200, response.text
    assert matched_ids(response.json()) == recorded.ids(names_patient(recorded.p1))


async def test_matches_are_the_stored_events_with_their_urls(
    auditor: httpx.AsyncClient, recorded: Recorded
) -> None:
    bundle = await search(auditor, [("date", f"lt{recorded.end}"), ("_count", "500")])
    assert bundle["type"] == "searchset"
    stored = {event["id"]: event for _, event in recorded.events}
    for entry in bundle.get("entry", []):
        assert entry["resource"] == stored[entry["resource"]["id"]]
        assert entry["fullUrl"] == f"http://test/fhir/AuditEvent/{entry['resource']['id']}"
