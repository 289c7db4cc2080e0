"""A thousand random searches by local authorities, each compared with the rules over the whole
population (seeded: the same searches every run).

The population: 45 children in three local authorities' areas (or none), a fifth of them written
by a local authority (which then sees the child but not, by that alone, what others wrote about
it), with flags by every kind of author, active or not, some restricted; conditions, some
recorded by an organisation, some restricted; relatives, some restricted. What a search matches
at all is the server's own search semantics, so each search also runs as a system caller (who
sees everything); the rules (`tests.access.rules`) then say which of those the local authority
may see:

- plain criteria: the local authority's matches == the system's matches it may see;
- a chain or `_has`: the same, where the resource on the other end must be one it may see too
  (the other end is searched as the system caller, then filtered by the rules);
- `_count`: the page is the first `_count` of those, in the system's order;
- `_include`, `_revinclude`, `:iterate`: what is included is computed from the page's matches
  by the rules, and must be exactly what the local authority's answer includes.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from app.fhir.context import AppContext
from tests import factories as f
from tests.access.conftest import AsCaller, Principal
from tests.access.rules import Key, Res, Rule, Who, World, restricted
from tests.http import create

SEED = 20261204
SEARCHES = 1000
CHILDREN = 45
FLAG_CODES = ("wheelchair-user", "lives-alone", "young-carer", "missing-education")
CONDITION_CODES = ("14760008", "35489007", "195967001")
RELATIONSHIPS = ("MTH", "FTH", "GRMTH", "SIS")
FAMILIES = ("Smith", "Jones", "Patel", "Okafor", "Nowak")
EVERYONE = Who("system", "system", None)


@dataclass
class Population:
    world: World
    las: list[Who]
    system: httpx.AsyncClient
    clients: dict[str, httpx.AsyncClient]  # local authority org id -> its client
    orgs: list[str] = field(default_factory=list)


def _extension(url: str, reference: str) -> dict[str, Any]:
    return {"url": url, "valueReference": {"reference": reference}}


@pytest.fixture(scope="module")
async def population(writer: httpx.AsyncClient, as_caller: AsCaller, app: Any) -> Population:
    context: AppContext = app.state.context
    vocabulary = context.vocabulary
    world = World(
        responsible_extension=vocabulary.responsible_local_authority_extension,
        recording_extension=vocabulary.recording_organization_extension,
    )
    rng = random.Random(SEED)

    async def put(body: dict[str, Any]) -> Res:
        return world.add(Res(await create(writer, body)))

    las = [
        await put(f.organization(ods=f"LA{n}", name=f"Council {n}"))
        for n in ("North", "East", "West")
    ]
    health = [
        await put(f.organization(ods="A81001", name="Riverside Surgery")),
        await put(f.organization(ods="A81002", name="Hillside Surgery")),
        await put(f.organization(ods="RX101", name="City Hospital")),
    ]
    authors = [o.id for o in las + health]
    whos = [Who(o.body["name"], "local-authority", o.id) for o in las]
    clients = {
        who.org: await as_caller(Principal(who.name.replace(" ", "-"), who.org, "local-authority"))
        for who in whos
        if who.org is not None
    }
    world.local_authorities = frozenset(o.id for o in las)
    serial = 500
    for n in range(CHILDREN):
        nhs = f.nhs_number(serial)
        serial = int(nhs[3:9]) + 1  # nhs_number skips serials whose check digit would be 10
        body = f.patient(
            nhs=nhs,
            family=rng.choice(FAMILIES),
            given=f"Child{n}",
            gender=rng.choice(("female", "male")),
        )
        if rng.random() < 0.8:
            body["extension"] = [
                _extension(world.responsible_extension, f"Organization/{rng.choice(las).id}")
            ]
        if rng.random() < 0.15:
            body = restricted(body)
        if rng.random() < 0.2:  # written by a local authority: it sees the child, not the rest
            la = rng.choice(las)
            written = Res(await create(clients[la.id], body), la.id)
            child = f"Patient/{world.add(written).id}"
        else:
            child = f"Patient/{(await put(body)).id}"
        for _ in range(rng.randrange(4)):
            flag = f.flag(
                subject=child,
                author=f"Organization/{rng.choice(authors)}",
                status=rng.choice(("active", "active", "inactive", "entered-in-error")),
                code=rng.choice(FLAG_CODES),
            )
            await put(restricted(flag) if rng.random() < 0.2 else flag)
        for _ in range(rng.randrange(3)):
            condition = f.condition(subject=child, code=rng.choice(CONDITION_CODES))
            if rng.random() < 0.6:
                recorder = f"Organization/{rng.choice(authors)}"
                condition["extension"] = [_extension(world.recording_extension, recorder)]
            await put(restricted(condition) if rng.random() < 0.2 else condition)
        for _ in range(rng.randrange(3)):
            relative = f.related_person(patient=child, relationship=rng.choice(RELATIONSHIPS))
            await put(restricted(relative) if rng.random() < 0.15 else relative)
    system = await as_caller(Principal("oracle-system", None, "system"))
    return Population(world, whos, system, clients, authors)


# --- the searches -----------------------------------------------------------------------------


@dataclass
class Search:
    """One random search: its base type and criteria, what the criteria select (as the system
    caller searches for, and which resource on the other end of a chain or `_has` must be
    visible), its includes and its page size."""

    base: str
    criteria: list[tuple[str, str]]
    through: tuple[str, str, str, list[tuple[str, str]]] | None = None  # see `_other_end`
    includes: list[Rule] = field(default_factory=list)
    revincludes: list[Rule] = field(default_factory=list)
    count: int | None = None

    def query(self) -> str:
        pairs = list(self.criteria)
        for source, param, target, iterate in self.includes:
            name = "_include:iterate" if iterate else "_include"
            pairs.append((name, f"{source}:{param}" + (f":{target}" if target else "")))
        for source, param, _, iterate in self.revincludes:
            pairs.append(("_revinclude:iterate" if iterate else "_revinclude", f"{source}:{param}"))
        pairs.append(("_count", str(self.count or 500)))
        return "&".join(f"{k}={quote(v, safe=',:|')}" for k, v in pairs)


class Chooser:
    """Random search criteria over what the population holds."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.rng = rng

    def some(self, resource_type: str) -> Res:
        return self.rng.choice(self.world.of(resource_type))

    def ids(self, resource_type: str) -> str:
        chosen = {self.some(resource_type).id for _ in range(self.rng.randint(1, 4))}
        return ",".join(sorted(chosen))

    def criterion(self, resource_type: str) -> tuple[str, str]:
        rng = self.rng
        child = self.some("Patient")
        options: dict[str, list[Callable[[], tuple[str, str]]]] = {
            "Patient": [
                lambda: ("_id", self.ids("Patient")),
                lambda: ("identifier", f"{f.NHS}|{child.nhs}"),
                lambda: ("identifier", str(child.nhs)),
                lambda: ("family", rng.choice(FAMILIES)),
                lambda: ("gender", rng.choice(("female", "male"))),
                lambda: ("name", rng.choice((*FAMILIES, "Child1"))),
            ],
            "Flag": [
                lambda: ("_id", self.ids("Flag")),
                lambda: ("patient", child.id),
                lambda: ("subject", f"Patient/{child.id}"),
                lambda: ("code", rng.choice(FLAG_CODES)),
                lambda: ("status", rng.choice(("active", "inactive", "entered-in-error"))),
                lambda: ("author", f"Organization/{self.some('Organization').id}"),
            ],
            "Condition": [
                lambda: ("_id", self.ids("Condition")),
                lambda: ("patient", child.id),
                lambda: ("subject", f"Patient/{child.id}"),
                lambda: ("code", f"{f.SNOMED}|{rng.choice(CONDITION_CODES)}"),
            ],
            "RelatedPerson": [
                lambda: ("_id", self.ids("RelatedPerson")),
                lambda: ("patient", child.id),
                lambda: ("relationship", rng.choice(RELATIONSHIPS)),
            ],
            "Organization": [
                lambda: ("_id", self.ids("Organization")),
                lambda: ("name", rng.choice(("council", "surgery", "city"))),
            ],
        }
        return rng.choice(options[resource_type])()

    def search(self) -> Search:
        rng = self.rng
        base = rng.choice(("Patient", "Patient", "Flag", "Flag", "Condition", "RelatedPerson"))
        base = base if rng.random() < 0.93 else "Organization"
        kind = rng.random()
        found = Search(base, [])
        if kind < 0.5 or base == "Organization":
            found.criteria = [self.criterion(base) for _ in range(rng.choice((1, 1, 2)))]
        elif kind < 0.75 and base != "Patient":  # a chain to the Patient
            param = "patient" if base != "Flag" or rng.random() < 0.5 else "subject"
            target = [self.criterion("Patient")]
            modifier = ":Patient" if param == "subject" else ""
            name, value = target[0]
            found.criteria = [(f"{param}{modifier}.{name}", value)]
            found.through = ("chain", param, "Patient", target)
        elif base == "Patient":  # _has: Patients some Flag, Condition or relative points at
            source = rng.choice(("Flag", "Condition", "RelatedPerson"))
            param = "subject" if source != "RelatedPerson" else "patient"
            inner = [self.criterion(source)]
            while inner[0][0] in ("patient", "subject"):
                inner = [self.criterion(source)]
            name, value = inner[0]
            found.criteria = [(f"_has:{source}:{param}:{name}", value)]
            found.through = ("has", param, source, inner)
        else:
            found.criteria = [self.criterion(base)]
        self.add_includes(found)
        if rng.random() < 0.3:
            found.count = rng.choice((1, 2, 5))
        return found

    def add_includes(self, search: Search) -> None:
        rng = self.rng
        forward: dict[str, list[Rule]] = {
            "Flag": [("Flag", "subject", None, False), ("Flag", "author", None, False)],
            "Condition": [("Condition", "subject", None, False)],
            "RelatedPerson": [("RelatedPerson", "patient", None, False)],
        }
        backward: dict[str, list[Rule]] = {
            "Patient": [
                ("Flag", "subject", None, False),
                ("Condition", "subject", None, False),
                ("RelatedPerson", "patient", None, False),
            ],
            "Organization": [("Flag", "author", None, False)],
        }
        if rng.random() < 0.3 and search.base in forward:
            search.includes.append(rng.choice(forward[search.base]))
        if rng.random() < 0.3 and search.base in backward:
            search.revincludes.append(rng.choice(backward[search.base]))
        if rng.random() < 0.2:  # :iterate from the Patients of the page
            if search.base in forward and not search.includes:
                search.includes.append(forward[search.base][0])
            source, param, _, _ = rng.choice(backward["Patient"])
            search.revincludes.append((source, param, None, True))
            if source == "Flag" and rng.random() < 0.5:
                search.includes.append(("Flag", "author", None, True))


# --- running and comparing ----------------------------------------------------------------------


def _split(body: dict[str, Any]) -> tuple[list[Key], set[Key]]:
    """A searchset's matches, in order, and what it includes."""
    assert body["resourceType"] == "Bundle", body
    matches, included = [], set()
    for entry in body.get("entry", []):
        resource = entry.get("resource", {})
        key = (resource.get("resourceType"), resource.get("id"))
        mode = entry.get("search", {}).get("mode")
        if mode == "match":
            matches.append(key)
        elif mode == "include":
            included.add(key)
    return matches, included


async def _get(http: httpx.AsyncClient, url: str) -> tuple[list[Key], set[Key]]:
    response = await http.get(url)
    assert response.status_code == 200, (url, response.text)
    return _split(response.json())


async def _expected(
    pop: Population, who: Who, search: Search, nhs: str | None
) -> tuple[list[Key], set[Key], int]:
    """What the rules say the local authority's answer holds: (page of matches, included),
    and how many of the system caller's matches the rules hid."""
    world = pop.world

    def visible(r: Res) -> bool:
        return world.visible(who, r)

    plain = Search(search.base, search.criteria, count=None)
    every, _ = await _get(pop.system, f"/{search.base}?{plain.query()}")
    allowed = [k for k in every if (r := world.get(k)) is not None and world.visible(who, r, nhs)]
    if search.through is not None:
        kind, param, other, criteria = search.through
        ends, _ = await _get(pop.system, f"/{other}?{Search(other, criteria).query()}")
        ends_seen = {k for k in ends if (r := world.get(k)) is not None and visible(r)}
        if kind == "chain":  # base --param--> other
            allowed = [k for k in allowed if set(world.referenced([k], param, other)) & ends_seen]
        else:  # other --param--> base
            allowed = [k for k in allowed if world.referenced(ends_seen, param, search.base) & {k}]
    page = allowed[: search.count] if search.count else allowed
    everything = world.included(visible, set(page), search.includes, search.revincludes)
    return page, everything - set(page), len(every) - len(allowed)


def _nhs_of(search: Search) -> str | None:
    """The NHS number of an exact NHS-number Patient search (the local authority exception)."""
    if search.base != "Patient" or len(search.criteria) != 1:
        return None
    name, value = search.criteria[0]
    system, _, number = value.rpartition("|")
    return number if name == "identifier" and system == f.NHS else None


async def test_random_local_authority_searches_show_what_the_rules_allow(
    population: Population,
) -> None:
    rng = random.Random(SEED + 1)
    chooser = Chooser(population.world, rng)
    failures = []
    found_some = hid_some = 0
    for n in range(SEARCHES):
        search = chooser.search()
        who = rng.choice(population.las)
        assert who.org is not None
        url = f"/{search.base}?{search.query()}"
        shown = await _get(population.clients[who.org], url)
        expected = await _expected(population, who, search, _nhs_of(search))
        if shown != expected[:2]:
            failures.append((n, who.name, url, _diff(shown, expected[:2])))
        found_some += bool(shown[0])
        hid_some += expected[2] > 0
    assert not failures, f"{len(failures)} of {SEARCHES} searches differ: " + "\n".join(
        map(str, failures[:15])
    )
    # Not vacuous: many searches find something, and many match what the rules then hide.
    assert found_some > SEARCHES // 2 and hid_some > SEARCHES // 3, (found_some, hid_some)


def _diff(
    shown: tuple[list[Key], set[Key]], expected: tuple[list[Key], set[Key]]
) -> dict[str, Any]:
    return {
        "extra matches": sorted(set(shown[0]) - set(expected[0])),
        "missing matches": sorted(set(expected[0]) - set(shown[0])),
        "order": shown[0] != expected[0] and set(shown[0]) == set(expected[0]),
        "extra included": sorted(shown[1] - expected[1]),
        "missing included": sorted(expected[1] - shown[1]),
    }


async def test_the_oracle_agrees_with_the_server_for_a_caller_who_sees_everything(
    population: Population,
) -> None:
    """The include and chain logic of the oracle, checked where no rule hides anything: the
    system caller's answers."""
    rng = random.Random(SEED + 2)
    chooser = Chooser(population.world, rng)
    failures = []
    for n in range(200):
        search = chooser.search()
        url = f"/{search.base}?{search.query()}"
        shown = await _get(population.system, url)
        expected = await _expected(population, EVERYONE, search, None)
        if shown != expected[:2]:
            failures.append((n, url, _diff(shown, expected[:2])))
    assert not failures, "\n".join(map(str, failures[:15]))
