"""Who sees what, on every read path: each caller x each path x each resource type, compared
with the rules computed in plain Python (`tests.access.rules`), never with the server's SQL.

The population: local authorities LA-A and LA-B, a GP practice and a hospital (and the
organisations of the system and auditor clients, and an ICB the health services are part of);
children A1 (LA-A's), B1 (LA-B's), X (LA-A's by extension, LA-B's by its active flag), R (LA-B's,
with a restricted Flag by the GP, a restricted Condition recorded by the hospital, the same
condition recorded by the GP unrestricted, and a restricted father written by the GP), N (no
local authority), L (written by LA-A, no extension, with a flag, condition and relative
written by others) and S (restricted, written by the
hospital). Each answer must show exactly what the
rules allow: no hidden id anywhere in it, and a hidden resource answered as a missing one is.

Writes that would change the population are probed without writing: a stale If-Match, a
conditional update whose body names another id, a conditional delete inside a transaction
that then fails on purpose (so it rolls back).
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from app.fhir.context import AppContext
from tests import factories as f
from tests.access.conftest import AsCaller, Principal
from tests.access.rules import TYPES, Key, Res, Rule, Who, World, restricted
from tests.http import FHIR_JSON, create, post_bundle

GHOST = "00000000-0000-7000-8000-00000000dead"  # an id no resource has
STALE = {"If-Match": 'W/"99"'}
CALLERS = ("LA-A", "LA-B", "GP", "hospital", "system", "auditor")
ROLES = {
    "LA-A": "local-authority",
    "LA-B": "local-authority",
    "GP": "health",
    "hospital": "health",
    "system": "system",
    "auditor": "auditor",
}
PAGE = "_count=500"


@dataclass
class Population:
    """The world, the callers as the rules see them, and a client acting as each."""

    world: World
    who: dict[str, Who]
    clients: dict[str, httpx.AsyncClient]
    children: dict[str, str]  # name -> Patient id


def _with_extension(body: dict[str, Any], url: str, reference: str) -> dict[str, Any]:
    extension = {"url": url, "valueReference": {"reference": reference}}
    return body | {"extension": [*body.get("extension", []), extension]}


@pytest.fixture(scope="module")
async def population(writer: httpx.AsyncClient, as_caller: AsCaller, app: Any) -> Population:
    context: AppContext = app.state.context
    vocabulary = context.vocabulary
    world = World(
        responsible_extension=vocabulary.responsible_local_authority_extension,
        recording_extension=vocabulary.recording_organization_extension,
    )

    async def put(body: dict[str, Any], http: httpx.AsyncClient = writer, by: str | None = None):
        return world.add(Res(await create(http, body), by))

    icb = await put(f.organization(ods="QWE", name="Integrated Care Board"))
    part_of = {"partOf": {"reference": f"Organization/{icb.id}"}}
    org = {
        "LA-A": await put(f.organization(ods="LAA01", name="Council A")),
        "LA-B": await put(f.organization(ods="LAB01", name="Council B")),
        "GP": await put(f.organization(ods="A81001", name="Riverside Surgery") | part_of),
        "hospital": await put(f.organization(ods="RX101", name="City Hospital") | part_of),
        "system": await put(f.organization(ods="SYS01", name="System Integrator")),
        "auditor": await put(f.organization(ods="AUD01", name="Audit Office")),
    }
    ids = {name: o.id for name, o in org.items()}
    world.local_authorities = frozenset({ids["LA-A"], ids["LA-B"]})
    who = {name: Who(name, ROLES[name], ids[name]) for name in CALLERS}
    clients = {
        name: await as_caller(Principal(f"client-{name}", ids[name], ROLES[name]))  # type: ignore[arg-type]
        for name in CALLERS
    }
    ref = {name: f"Organization/{i}" for name, i in ids.items()}
    rla = vocabulary.responsible_local_authority_extension

    def child(serial: int, given: str, la: str | None) -> dict[str, Any]:
        body = f.patient(nhs=f.nhs_number(serial), given=given)
        body["managingOrganization"] = {"reference": ref["GP"]}
        return _with_extension(body, rla, ref[la]) if la else body

    kids = {
        "A1": await put(child(101, "Alice", "LA-A")),
        "B1": await put(child(102, "Ben", "LA-B")),
        "X": await put(child(103, "Xena", "LA-A")),
        "R": await put(child(104, "Rory", "LA-B")),
        "N": await put(child(105, "Nina", None)),
        "L": await put(child(106, "Lena", None), clients["LA-A"], ids["LA-A"]),
        "S": await put(restricted(child(107, "Sam", None)), clients["hospital"], ids["hospital"]),
    }
    p = {name: f"Patient/{k.id}" for name, k in kids.items()}

    def condition(subject: str, by: str | None, code: str = "14760008") -> dict[str, Any]:
        body = f.condition(subject=p[subject], code=code)
        return _with_extension(body, world.recording_extension, ref[by]) if by else body

    for body in [
        f.flag(subject=p["A1"], author=ref["GP"]),
        f.flag(subject=p["A1"], author=ref["LA-A"], status="inactive", code="lives-alone"),
        f.flag(subject=p["B1"], author=ref["LA-B"]),
        f.flag(subject=p["B1"], author=ref["hospital"], status="inactive") | _label(),
        f.flag(subject=p["X"], author=ref["LA-B"], code="cross-border"),
        f.flag(subject=p["X"], author=ref["GP"], status="inactive"),
        f.flag(subject=p["R"], author=ref["GP"]) | _label(),
        f.flag(subject=p["N"], author=ref["LA-A"], status="inactive"),
        f.flag(subject=p["N"], author=ref["GP"]),
        f.flag(subject=f"Organization/{icb.id}", author=ref["LA-B"], code="closed"),
        condition("A1", "GP"),
        condition("B1", "hospital", code="35489007"),
        condition("X", "LA-B"),
        restricted(condition("R", "hospital", code="35489007")),
        condition("R", "GP", code="35489007"),  # a summary warning must not count the other
        condition("N", None),
        f.related_person(patient=p["A1"], relationship="MTH"),
        f.related_person(patient=p["B1"], relationship="FTH"),
        f.related_person(patient=p["X"], relationship="MTH"),
        f.related_person(patient=p["N"], relationship="MTH"),
        f.related_person(patient=p["S"], relationship="MTH"),
        # About L, whom LA-A sees only as its author: what others wrote stays hidden from it.
        f.flag(subject=p["L"], author=ref["GP"]),
        condition("L", "hospital", code="35489007"),
        f.related_person(patient=p["L"], relationship="FTH"),
    ]:
        await put(body)
    father = restricted(f.related_person(patient=p["R"], relationship="FTH"))
    await put(father, clients["GP"], ids["GP"])
    children = {name: k.id for name, k in kids.items()}
    return Population(world, who, clients, children)


def _label() -> dict[str, Any]:
    return restricted({})


# --- reading answers ---------------------------------------------------------------------------


def found(body: dict[str, Any]) -> set[Key]:
    """The resources a searchset, history or collection Bundle shows (not its outcomes)."""
    assert body["resourceType"] == "Bundle", body
    assert not any(link.get("relation") == "next" for link in body.get("link", [])), body
    keys = set()
    for entry in body.get("entry", []):
        resource = entry.get("resource")
        if resource is None or resource["resourceType"] in ("OperationOutcome", "Bundle"):
            continue
        keys.add((resource["resourceType"], resource["id"]))
    return keys


def normalised(response: httpx.Response, *ids: str) -> tuple[int, str]:
    """Status and body with the given ids (and timestamps) blanked: what a hidden resource's
    answer is compared with, against the answer for an id nothing has."""
    text = response.text
    for logical_id in ids:
        text = text.replace(logical_id, "ID")
    return response.status_code, re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)", "T", text)


@dataclass
class Case:
    """One probe's setting: the population, the caller, its client, the type examined."""

    pop: Population
    caller: str
    resource_type: str

    @property
    def world(self) -> World:
        return self.pop.world

    @property
    def who(self) -> Who:
        return self.pop.who[self.caller]

    @property
    def http(self) -> httpx.AsyncClient:
        return self.pop.clients[self.caller]

    def visible(self, r: Res) -> bool:
        return self.world.visible(self.who, r)

    def visible_keys(self, keys: set[Key]) -> set[Key]:
        return {k for k in keys if (r := self.world.get(k)) is not None and self.visible(r)}

    def mine(self) -> list[Res]:
        return self.world.of(self.resource_type)

    async def get(self, url: str) -> httpx.Response:
        response = await self.http.get(url)
        self.no_hidden_ids(response)
        return response

    async def search(self, url: str) -> set[Key]:
        response = await self.get(url)
        assert response.status_code == 200, (url, response.text)
        return found(response.json())

    def no_hidden_ids(self, response: httpx.Response, allowed: set[str] | None = None) -> None:
        asked = str(response.request.url) + response.request.content.decode()
        leaked = self.world.hidden_ids(self.who) - (allowed or set())
        shown = [i for i in leaked if i in response.text and i not in asked]
        assert not shown, (str(response.request.url), shown, response.text[:2000])

    def like_ghost(self, hidden: httpx.Response, ghost: httpx.Response, logical_id: str) -> None:
        assert normalised(hidden, logical_id) == normalised(ghost, GHOST), (
            str(hidden.request.url),
            hidden.text,
            ghost.text,
        )


Observed = tuple[Any, Any]  # (what the server showed, what the rules expect)
Probe = Callable[[Case], Awaitable[Observed]]


def _types(resources: set[Key], resource_type: str) -> set[Key]:
    return {k for k in resources if k[0] == resource_type}


async def _by_id(case: Case, url: Callable[[Res], str]) -> Observed:
    """GET each resource of the type: 200 if visible, else answered as for a missing one."""
    ghost = await case.get(url(Res({"resourceType": case.resource_type, "id": GHOST})))
    assert ghost.status_code == 404, ghost.text
    shown = set()
    for r in case.mine():
        response = await case.get(url(r))
        if response.status_code == 200:
            shown.add(r.key)
        else:
            case.like_ghost(response, ghost, r.id)
    return shown, case.world.seen(case.who, case.mine())


async def read(case: Case) -> Observed:
    return await _by_id(case, lambda r: f"/{r.type}/{r.id}")


async def vread(case: Case) -> Observed:
    return await _by_id(case, lambda r: f"/{r.type}/{r.id}/_history/1")


async def history_instance(case: Case) -> Observed:
    url = f"/{case.resource_type}/{GHOST}/_history"
    ghost = await case.get(url)
    shown = set()
    for r in case.mine():
        response = await case.get(f"/{r.type}/{r.id}/_history")
        if response.status_code == 200 and found(response.json()):
            assert found(response.json()) == {r.key}
            shown.add(r.key)
        else:
            case.like_ghost(response, ghost, r.id)
    return shown, case.world.seen(case.who, case.mine())


async def history_type(case: Case) -> Observed:
    shown = await case.search(f"/{case.resource_type}/_history?{PAGE}")
    return shown, case.world.seen(case.who, case.mine())


async def history_system(case: Case) -> Observed:
    shown = await case.search(f"/_history?{PAGE}")
    return _types(shown, case.resource_type), case.world.seen(case.who, case.mine())


async def search_id(case: Case) -> Observed:
    every = ",".join([r.id for r in case.mine()] + [GHOST])
    shown = await case.search(f"/{case.resource_type}?_id={every}&{PAGE}")
    return shown, case.world.seen(case.who, case.mine())


def _status(r: Res) -> Any:
    return r.body.get("status")


def _code(r: Res) -> Any:
    return r.body["code"]["coding"][0]["code"]


def _relationship(r: Res) -> Any:
    return r.body["relationship"][0]["coding"][0]["code"]


def _name(r: Res) -> str:
    return str(r.body.get("name", ""))


# type -> (query, which resources of the type it matches)
PARAMS: dict[str, tuple[str, Callable[[Res], bool]]] = {
    "Patient": ("family=Smith", lambda r: True),
    "Flag": ("status=active", lambda r: _status(r) == "active"),
    "Condition": (f"code={f.SNOMED}|14760008", lambda r: _code(r) == "14760008"),
    "RelatedPerson": ("relationship=MTH", lambda r: _relationship(r) == "MTH"),
    "Organization": ("name=council", lambda r: _name(r).startswith("Council")),
}


def _param_expected(case: Case) -> set[Key]:
    _, matches = PARAMS[case.resource_type]
    return case.world.seen(case.who, [r for r in case.mine() if matches(r)])


async def search_param(case: Case) -> Observed:
    query, _ = PARAMS[case.resource_type]
    shown = await case.search(f"/{case.resource_type}?{query}&{PAGE}")
    return shown, _param_expected(case)


async def total_accurate(case: Case) -> Observed:
    query, _ = PARAMS[case.resource_type]
    response = await case.get(f"/{case.resource_type}?{query}&_total=accurate&_count=1")
    assert response.status_code == 200, response.text
    return response.json().get("total"), len(_param_expected(case))


async def summary_count(case: Case) -> Observed:
    response = await case.get(f"/{case.resource_type}?_summary=count")
    assert response.status_code == 200, response.text
    body = response.json()
    assert found(body) == set(), body
    return body.get("total"), len(case.world.seen(case.who, case.mine()))


def _included(case: Case, matches: set[Key], includes: list[Rule], revs: list[Rule]) -> set[Key]:
    return case.world.included(case.visible, matches, includes, revs)


# type -> (base type, query, includes, revincludes), for _include, _revinclude and :iterate
INCLUDE: dict[str, tuple[str, str, list[Rule], list[Rule]]] = {
    "Patient": (
        "RelatedPerson",
        "_include=RelatedPerson:patient",
        [("RelatedPerson", "patient", None, False)],
        [],
    ),
    "Flag": (
        "Flag",
        "_include=Flag:subject&_include=Flag:author",
        [("Flag", "subject", None, False), ("Flag", "author", None, False)],
        [],
    ),
    "Condition": (
        "Condition",
        "_include=Condition:subject",
        [("Condition", "subject", None, False)],
        [],
    ),
    "RelatedPerson": (
        "RelatedPerson",
        "_include=RelatedPerson:patient",
        [("RelatedPerson", "patient", None, False)],
        [],
    ),
    "Organization": ("Flag", "_include=Flag:author", [("Flag", "author", None, False)], []),
}
REVINCLUDE: dict[str, tuple[str, str, list[Rule], list[Rule]]] = {
    "Patient": (
        "Patient",
        "_revinclude=RelatedPerson:patient&_revinclude=Flag:patient",
        [],
        [("RelatedPerson", "patient", None, False), ("Flag", "patient", None, False)],
    ),
    "Flag": ("Patient", "_revinclude=Flag:subject", [], [("Flag", "subject", None, False)]),
    "Condition": (
        "Patient",
        "_revinclude=Condition:patient",
        [],
        [("Condition", "patient", None, False)],
    ),
    "RelatedPerson": (
        "Patient",
        "_revinclude=RelatedPerson:patient",
        [],
        [("RelatedPerson", "patient", None, False)],
    ),
    "Organization": (
        "Organization",
        "_revinclude=Flag:author&_revinclude=Patient:organization",
        [],
        [("Flag", "author", None, False), ("Patient", "organization", None, False)],
    ),
}
ITERATE: dict[str, tuple[str, str, list[Rule], list[Rule]]] = {
    "Patient": (
        "RelatedPerson",
        "_include=RelatedPerson:patient&_revinclude:iterate=Flag:subject",
        [("RelatedPerson", "patient", None, False)],
        [("Flag", "subject", None, True)],
    ),
    "Flag": (
        "Condition",
        "_include=Condition:subject&_revinclude:iterate=Flag:patient&_include:iterate=Flag:author",
        [("Condition", "subject", None, False), ("Flag", "author", None, True)],
        [("Flag", "patient", None, True)],
    ),
    "Condition": (
        "Flag",
        "_include=Flag:subject&_revinclude:iterate=Condition:subject",
        [("Flag", "subject", None, False)],
        [("Condition", "subject", None, True)],
    ),
    "RelatedPerson": (
        "Flag",
        "_include=Flag:patient&_revinclude:iterate=RelatedPerson:patient",
        [("Flag", "patient", None, False)],
        [("RelatedPerson", "patient", None, True)],
    ),
    "Organization": (
        "Condition",
        "_include=Condition:subject&_include:iterate=Patient:organization"
        "&_include:iterate=Organization:partof",
        [
            ("Condition", "subject", None, False),
            ("Patient", "organization", None, True),
            ("Organization", "partof", None, True),
        ],
        [],
    ),
}


def _including(table: dict[str, tuple[str, str, list[Rule], list[Rule]]]) -> Probe:
    async def probe(case: Case) -> Observed:
        base, query, includes, revs = table[case.resource_type]
        shown = await case.search(f"/{base}?{query}&{PAGE}")
        matches = case.world.seen(case.who, case.world.of(base))
        return shown, _included(case, matches, includes, revs)

    return probe


def _family(r: Res) -> bool:
    return "Smith" in str(r.body.get("name"))


# type -> (base type, query, reference parameter, what the referenced resource must be)
CHAIN: dict[str, tuple[str, str, str, Callable[[Res], bool]]] = {
    "Patient": (
        "Patient",
        "organization.name=riverside",
        "organization",
        lambda r: "Riverside" in _name(r),
    ),
    "Flag": ("Flag", "patient.family=Smith", "patient", _family),
    "Condition": ("Condition", "subject:Patient.family=Smith", "subject", _family),
    "RelatedPerson": ("RelatedPerson", "patient.family=Smith", "patient", _family),
    "Organization": (
        "Organization",
        "partof.name=integrated",
        "partof",
        lambda r: "Integrated" in _name(r),
    ),
}


async def chain(case: Case) -> Observed:
    base, query, param, target_matches = CHAIN[case.resource_type]
    shown = await case.search(f"/{base}?{query}&{PAGE}")
    world = case.world
    expected = set()
    for r in world.of(base):
        targets = [world.get(k) for k in r.refs(param)]
        if case.visible(r) and any(
            t is not None and case.visible(t) and target_matches(t) for t in targets
        ):
            expected.add(r.key)
    return shown, expected


# type -> (base type, _has query, source type, its parameter, what the source must be)
HAS: dict[str, tuple[str, str, str, str, Callable[[Res], bool]]] = {
    "Patient": (
        "Patient",
        "_has:RelatedPerson:patient:relationship=MTH",
        "RelatedPerson",
        "patient",
        lambda r: _relationship(r) == "MTH",
    ),
    "Flag": (
        "Patient",
        "_has:Flag:subject:status=active",
        "Flag",
        "subject",
        lambda r: _status(r) == "active",
    ),
    "Condition": (
        "Patient",
        "_has:Condition:subject:code=35489007",
        "Condition",
        "subject",
        lambda r: _code(r) == "35489007",
    ),
    "RelatedPerson": (
        "Patient",
        "_has:RelatedPerson:patient:relationship=FTH",
        "RelatedPerson",
        "patient",
        lambda r: _relationship(r) == "FTH",
    ),
    "Organization": (
        "Organization",
        "_has:Flag:author:status=active",
        "Flag",
        "author",
        lambda r: _status(r) == "active",
    ),
}


async def has(case: Case) -> Observed:
    base, query, source, param, source_matches = HAS[case.resource_type]
    shown = await case.search(f"/{base}?{query}&{PAGE}")
    world = case.world
    sources = [r for r in world.of(source) if case.visible(r) and source_matches(r)]
    targets = {k for r in sources for k in r.refs(param)}
    return shown, {r.key for r in world.of(base) if r.key in targets and case.visible(r)}


# type -> the compartment search (and its includes) run in each child's compartment
COMPARTMENT: dict[str, tuple[str, str, list[Rule]]] = {
    "Patient": (
        "RelatedPerson",
        "_include=RelatedPerson:patient",
        [("RelatedPerson", "patient", None, False)],
    ),
    "Flag": ("Flag", "", []),
    "Condition": ("Condition", "", []),
    "RelatedPerson": ("RelatedPerson", "", []),
    "Organization": ("Flag", "_include=Flag:author", [("Flag", "author", None, False)]),
}


async def compartment(case: Case) -> Observed:
    base, query, includes = COMPARTMENT[case.resource_type]
    shown: dict[str, set[Key]] = {}
    expected: dict[str, set[Key]] = {}
    world = case.world
    for name, child in case.pop.children.items():
        shown[name] = await case.search(f"/Patient/{child}/{base}?{query}&{PAGE}")
        members = {r.key for r in world.of(base) if world.child_of(r) == child}
        expected[name] = _included(case, case.visible_keys(members), includes, [])
    return shown, expected


async def safeguarding_summary(case: Case) -> Observed:
    world = case.world
    ghost = await case.get(f"/Patient/{GHOST}/$safeguarding-summary")
    shown: dict[str, set[Key]] = {}
    expected: dict[str, set[Key]] = {}
    for name, child in case.pop.children.items():
        response = await case.get(f"/Patient/{child}/$safeguarding-summary")
        patient = world.get(("Patient", child))
        assert patient is not None
        if not case.visible(patient):
            case.like_ghost(response, ghost, child)
            continue
        assert response.status_code == 200, response.text
        shown[name] = _types(found(response.json()), case.resource_type)
        about = [r for r in world.resources if world.child_of(r) == child]
        held = {
            r.key
            for r in about
            if r.type in ("Patient", "RelatedPerson")
            or (r.type == "Flag" and _status(r) == "active")
            or r.type == "Condition"
        }
        expected[name] = _types(case.visible_keys(held), case.resource_type)
    return shown, expected


async def transaction_get(case: Case) -> Observed:
    every = ",".join(r.id for r in case.mine())
    search = f.entry(method="GET", url=f"{case.resource_type}?_id={every}&{PAGE}")
    response = await post_bundle(case.http, f.bundle(entries=[search]))
    case.no_hidden_ids(response)
    assert response.status_code == 200, response.text
    searchset = response.json().get("entry", [])[0]["resource"]
    ghost = await post_bundle(
        case.http, f.bundle(entries=[f.entry(method="GET", url=f"{case.resource_type}/{GHOST}")])
    )
    read_one = set()
    for r in case.mine():
        one = await post_bundle(
            case.http, f.bundle(entries=[f.entry(method="GET", url=f"{r.type}/{r.id}")])
        )
        case.no_hidden_ids(one)
        if one.status_code == 200:
            read_one.add(r.key)
        else:
            case.like_ghost(one, ghost, r.id)
    expected = case.world.seen(case.who, case.mine())
    return (found(searchset), read_one), (expected, expected)


async def batch_get(case: Case) -> Observed:
    mine = case.mine()
    entries = [f.entry(method="GET", url=f"{r.type}/{r.id}") for r in mine]
    entries.append(f.entry(method="GET", url=f"{case.resource_type}/{GHOST}"))
    response = await post_bundle(case.http, f.bundle(kind="batch", entries=entries))
    case.no_hidden_ids(response)
    assert response.status_code == 200, response.text
    answers = response.json().get("entry", [])
    ghost = answers[-1]["response"]
    assert ghost["status"].startswith("404"), ghost
    shown = set()
    for r, answer in zip(mine, answers, strict=False):
        if answer["response"]["status"].startswith("200"):
            shown.add(r.key)
        else:
            assert answer["response"]["status"] == ghost["status"], answer
    return shown, case.world.seen(case.who, mine)


async def nhs_exact(case: Case) -> Observed:
    """An exact NHS-number Patient search: a local authority finds that child, and only it."""
    shown, expected = {}, {}
    world = case.world
    for r in case.mine():
        nhs = r.nhs
        assert nhs is not None
        shown[r.id] = await _search_allowing(case, f"/Patient?identifier={f.NHS}|{nhs}", r)
        expected[r.id] = {r.key} if world.visible(case.who, r, nhs) else set()
    return shown, expected


async def nhs_without_system(case: Case) -> Observed:
    """The same number without its system is any other search: no exception."""
    shown, expected = {}, {}
    for r in case.mine():
        shown[r.id] = await case.search(f"/Patient?identifier={r.nhs}")
        expected[r.id] = {r.key} if case.visible(r) else set()
    return shown, expected


async def nhs_and_more(case: Case) -> Observed:
    """Only a search by the one exact number finds a child by it: with another criterion, or
    another number beside it, the search is like any other."""
    shown, expected = {}, {}
    patients = case.mine()
    for r, other in zip(patients, patients[1:] + patients[:1], strict=True):
        exact, beside = f"{f.NHS}|{r.nhs}", f"{f.NHS}|{other.nhs}"
        for url in (
            f"/Patient?identifier={quote(exact)}&family=Smith",
            f"/Patient?identifier={quote(exact)},{quote(beside)}",
        ):
            shown[url] = await case.search(url)
            expected[url] = case.world.seen(case.who, [r, other] if "," in url else [r])
    return shown, expected


async def nhs_with_revinclude(case: Case) -> Observed:
    """The exact search shows the child, but what references it only as the rules allow."""
    shown, expected = {}, {}
    world = case.world
    for r in case.mine():
        nhs = r.nhs
        url = (
            f"/Patient?identifier={quote(f'{f.NHS}|{nhs}')}&_revinclude=Flag:subject"
            "&_revinclude=RelatedPerson:patient&_revinclude=Condition:subject"
        )
        shown[r.id] = await _search_allowing(case, url, r)
        matches = {r.key} if world.visible(case.who, r, nhs) else set()
        revs: list[Rule] = [
            ("Flag", "subject", None, False),
            ("RelatedPerson", "patient", None, False),
            ("Condition", "subject", None, False),
        ]
        expected[r.id] = _included(case, matches, [], revs)
    return shown, expected


async def _search_allowing(case: Case, url: str, child: Res) -> set[Key]:
    response = await case.http.get(url)
    allowed = {child.id} if case.world.visible(case.who, child, child.nhs) else set()
    case.no_hidden_ids(response, allowed)
    assert response.status_code == 200, response.text
    return found(response.json())


EVERY_TYPE = TYPES
PATIENT_ONLY = ("Patient",)
READ_PATHS: dict[str, tuple[Probe, tuple[str, ...]]] = {
    "read": (read, EVERY_TYPE),
    "vread": (vread, EVERY_TYPE),
    "search-_id": (search_id, EVERY_TYPE),
    "search-param": (search_param, EVERY_TYPE),
    "_include": (_including(INCLUDE), EVERY_TYPE),
    "_revinclude": (_including(REVINCLUDE), EVERY_TYPE),
    ":iterate": (_including(ITERATE), EVERY_TYPE),
    "chain": (chain, EVERY_TYPE),
    "_has": (has, EVERY_TYPE),
    "history-instance": (history_instance, EVERY_TYPE),
    "history-type": (history_type, EVERY_TYPE),
    "history-system": (history_system, EVERY_TYPE),
    "_total=accurate": (total_accurate, EVERY_TYPE),
    "_summary=count": (summary_count, EVERY_TYPE),
    "compartment": (compartment, EVERY_TYPE),
    "$safeguarding-summary": (safeguarding_summary, EVERY_TYPE),
    "transaction-GET": (transaction_get, EVERY_TYPE),
    "batch-GET": (batch_get, EVERY_TYPE),
    "nhs-number-exact": (nhs_exact, PATIENT_ONLY),
    "nhs-number-no-system": (nhs_without_system, PATIENT_ONLY),
    "nhs-number-revinclude": (nhs_with_revinclude, PATIENT_ONLY),
    "nhs-number-and-more": (nhs_and_more, PATIENT_ONLY),
}
READ_CASES = [
    (caller, path, resource_type)
    for caller in CALLERS
    for path, (_, types) in READ_PATHS.items()
    for resource_type in types
]


@pytest.mark.parametrize(("caller", "path", "resource_type"), READ_CASES)
async def test_reads_show_exactly_what_the_rules_allow(
    population: Population, caller: str, path: str, resource_type: str
) -> None:
    probe, _ = READ_PATHS[path]
    shown, expected = await probe(Case(population, caller, resource_type))
    assert shown == expected


# --- writes: probed so that none of them changes the population --------------------------------


def fresh(case: Case) -> dict[str, Any]:
    """A new resource of the type, valid, about nobody the probes look at."""
    child = f"Patient/{case.pop.children['N']}"
    return {
        "Patient": f.patient(given="Fresh"),
        "Flag": f.flag(subject=child, code="fresh"),
        "Condition": f.condition(subject=child),
        "RelatedPerson": f.related_person(patient=child),
        "Organization": f.organization(ods="FRESH1", name="Fresh Org"),
    }[case.resource_type]


Expect = Callable[[Res], int]  # the status the rules expect for a write about a resource


async def _each(
    case: Case,
    send: Callable[[Res], Awaitable[httpx.Response]],
    expect: Expect,
    compared: bool = True,
) -> Observed:
    """Each resource of the type through a write: the statuses shown and those the rules
    expect; with `compared`, a hidden one's answer must be the answer for the same request
    about an id that nothing has."""
    shown, expected = {}, {}
    for r in case.mine():
        response = await send(r)
        case.no_hidden_ids(response)
        shown[r.id] = response.status_code
        expected[r.id] = expect(r)
        if compared and not case.visible(r):  # answered as one that does not exist
            case.like_ghost(response, await send(Res(r.body | {"id": GHOST})), r.id)
    return shown, expected


def _writable(case: Case, allowed: int) -> Expect:
    """A write by id: 404 for what the caller cannot see (whether or not it exists), 403 for
    what it sees but may not change, `allowed` otherwise."""

    def expect(r: Res) -> int:
        if not case.visible(r):
            return 404
        return allowed if case.world.may_change(case.who, r) else 403

    return expect


def as_own(case: Case, r: Res) -> dict[str, Any]:
    """`r` as the caller would send it back: any declared author its own organisation, so
    that what is probed is the caller's access to `r`, not what the body says."""
    body = dict(r.body)
    own = {"reference": f"Organization/{case.who.org}"}
    if r.type == "Flag":
        body["author"] = own
    if r.type == "Condition" and "extension" in body:
        body["extension"] = [
            e | {"valueReference": own} if e["url"] == case.world.recording_extension else e
            for e in body["extension"]
        ]
    return body


async def update_stale(case: Case) -> Observed:
    """PUT with a stale If-Match: 412 when the caller may change the resource, 403 when it
    sees but may not, 404 when it cannot see it."""

    async def send(r: Res) -> httpx.Response:
        return await case.http.put(f"/{r.type}/{r.id}", json=as_own(case, r), headers=STALE)

    return await _each(case, send, _writable(case, 412))


async def patch_stale(case: Case) -> Observed:
    operations = b'[{"op": "add", "path": "/language", "value": "en"}]'

    async def send(r: Res) -> httpx.Response:
        headers = STALE | {"content-type": "application/json-patch+json"}
        return await case.http.patch(f"/{r.type}/{r.id}", content=operations, headers=headers)

    return await _each(case, send, _writable(case, 412))


async def fhirpath_patch_stale(case: Case) -> Observed:
    """The same through FHIRPath Patch (a Parameters body): the same answers as JSON Patch."""
    parts = [
        {"name": "type", "valueCode": "add"},
        {"name": "path", "valueString": case.resource_type},
        {"name": "name", "valueString": "language"},
        {"name": "value", "valueCode": "en"},
    ]
    body = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": parts}]}

    async def send(r: Res) -> httpx.Response:
        return await case.http.patch(f"/{r.type}/{r.id}", json=body, headers=STALE)

    return await _each(case, send, _writable(case, 412))


async def delete_stale(case: Case) -> Observed:
    async def send(r: Res) -> httpx.Response:
        return await case.http.delete(f"/{r.type}/{r.id}", headers=STALE)

    return await _each(case, send, _writable(case, 412))


def _directory(case: Case, otherwise: Expect) -> Expect:
    """Only system clients write Organizations (the directory): 403 for any other, whatever
    matches."""
    if case.resource_type == "Organization" and case.who.role != "system":
        return lambda r: 403
    return otherwise


async def conditional_create(case: Case) -> Observed:
    """If-None-Exist matching one resource: the caller's match answered (200), never someone
    else's; 412 when only a hidden one matches."""

    async def send(r: Res) -> httpx.Response:
        response = await case.http.post(
            f"/{r.type}",
            json=fresh(case),
            headers={"content-type": FHIR_JSON, "If-None-Exist": f"_id={r.id}"},
        )
        if response.status_code == 200:
            assert response.json()["id"] == r.id, response.text
        return response

    expect = _directory(case, lambda r: 200 if case.visible(r) else 412)
    return await _each(case, send, expect, compared=False)


async def conditional_update(case: Case) -> Observed:
    """A conditional update whose body names another id: 400 against the caller's match,
    412 when only a hidden one matches (nothing is written either way)."""

    async def send(r: Res) -> httpx.Response:
        return await case.http.put(f"/{r.type}?_id={r.id}", json=fresh(case) | {"id": GHOST})

    expect = lambda r: 400 if case.visible(r) else 412  # noqa: E731
    return await _each(case, send, expect, compared=False)


async def conditional_delete(case: Case) -> Observed:
    """A conditional delete, then a read of the same id, in one transaction: the read is 410
    if the delete matched (then the whole transaction rolls back), 404 if it did not; 403
    if the caller sees the match but may not delete it."""

    async def send(r: Res) -> httpx.Response:
        entries = [
            f.entry(method="DELETE", url=f"{r.type}?_id={r.id}"),
            f.entry(method="GET", url=f"{r.type}/{r.id}"),
        ]
        return await post_bundle(case.http, f.bundle(entries=entries))

    return await _each(case, send, _writable(case, 410))


WRITE_PATHS: dict[str, Probe] = {
    "update": update_stale,
    "patch": patch_stale,
    "fhirpath-patch": fhirpath_patch_stale,
    "delete": delete_stale,
    "conditional-create": conditional_create,
    "conditional-update": conditional_update,
    "conditional-delete": conditional_delete,
}
WRITE_CASES = [
    (caller, path, resource_type)
    for caller in CALLERS
    for path in WRITE_PATHS
    for resource_type in TYPES
]


@pytest.mark.parametrize(("caller", "path", "resource_type"), WRITE_CASES)
async def test_writes_match_only_what_the_caller_may_see(
    population: Population, caller: str, path: str, resource_type: str
) -> None:
    shown, expected = await WRITE_PATHS[path](Case(population, caller, resource_type))
    assert shown == expected


async def test_the_probes_left_the_population_as_it_was(
    population: Population, writer: httpx.AsyncClient
) -> None:
    for r in population.world.resources:
        response = await writer.get(f"/{r.type}/{r.id}")
        assert response.status_code == 200, response.text
        assert response.json()["meta"]["versionId"] == "1", response.text
    for resource_type in TYPES:
        response = await writer.get(f"/{resource_type}?_summary=count")
        assert response.json()["total"] == len(population.world.of(resource_type))


def test_matrix_size() -> None:
    """The size of the matrix, as reported: callers x paths x the types each path applies to."""
    assert len(READ_CASES) == 6 * (18 * 5 + 4)
    assert len(WRITE_CASES) == 6 * 7 * 5
