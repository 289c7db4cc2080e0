"""Evidence that no access goes without a trace: 1,000 mixed requests from four clients
(reads, searches with includes, summaries, history, creates, transactions, refusals) leave
exactly 1,000 AuditEvents, each naming the client that asked, the outcome it got and every
Patient the request touched, as worked out from what each response held."""

import random
from collections import Counter
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI

from tests import factories as f
from tests.audit.trails import (
    by_request,
    clear_trail,
    client_of,
    patients,
    patients_held,
    stored_events,
)
from tests.conftest import BASE
from tests.http import create
from tests.tokens import SYSTEM_CLIENT, bearer

REQUESTS = 1000
CHILDREN = 12
CLIENTS = {  # client id: (role, organisation, scope)
    "ev-gp": ("health", "ev-gp", "system/*.cruds"),
    "ev-hospital": ("health", "ev-hospital", "system/*.rs"),  # its writes are refused
    "ev-council": ("local-authority", "ev-council", "system/*.cruds"),
    SYSTEM_CLIENT: ("system", "test-org", "system/*.cruds"),
}


@dataclass
class Sent:
    """One request as sent, and what its AuditEvent must say."""

    client_id: str | None
    response: httpx.Response
    named: set[str] = field(default_factory=set)  # Patients its path or parameters name


@dataclass
class World:
    """The population the requests run over."""

    children: list[str]
    flags: list[str]
    http: dict[str, httpx.AsyncClient]


async def _population(app: FastAPI, system: httpx.AsyncClient) -> list[str]:
    for org in ("ev-gp", "ev-hospital", "ev-council"):
        body = f.organization(ods=f"E{abs(hash(org)) % 10**5:05d}", name=org) | {"id": org}
        assert (await system.put(f"/Organization/{org}", json=body)).status_code in (200, 201)
    children = []
    numbers = sorted({f.nhs_number(8100 + 3 * n) for n in range(CHILDREN)})
    for n, number in enumerate(numbers):
        child = await create(system, f.patient(nhs=number, given=f"C{n}"))
        children.append(child["id"])
    return children


async def _clients(app: FastAPI) -> dict[str, httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    made = {}
    for client_id, (role, org, scope) in CLIENTS.items():
        details = {"role": role, "organisation": f"Organization/{org}", "scope": scope}
        headers = await bearer(app, client_id, **details)
        made[client_id] = httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers)
    made["anonymous"] = httpx.AsyncClient(transport=transport, base_url=BASE)
    return made


def _who(rng: random.Random) -> str:
    return rng.choice(list(CLIENTS))


async def _one(rng: random.Random, world: World) -> Sent:
    """A request of a random kind by a random client."""
    kind = rng.randrange(12)
    who = _who(rng)
    http = world.http[who]
    child = rng.choice(world.children)
    if kind == 0:
        target = child if rng.random() < 0.8 else "missing-child"
        return Sent(who, await http.get(f"/Patient/{target}"), {target})
    if kind == 1 and world.flags:
        return Sent(who, await http.get(f"/Flag/{rng.choice(world.flags)}"))
    if kind == 2:
        url = f"/Flag?subject=Patient/{child}&_include=Flag:subject"
        return Sent(who, await http.get(url), {child})
    if kind == 3:
        pair = rng.sample(world.children, 2)
        return Sent(who, await http.get(f"/Patient?_id={','.join(pair)}"), set(pair))
    if kind == 4:
        url = f"/Patient/{child}/$safeguarding-summary"
        return Sent(who, await http.get(url), {child})
    if kind == 5:
        return Sent(who, await http.get(f"/Patient/{child}/_history"), {child})
    if kind == 6:
        return await _create_flag(world, who, child)
    if kind == 7:
        return await _transaction(rng, world, who)
    if kind == 8:
        return Sent(who, await http.get("/Patient?birthdate=not-a-date"))  # 400
    if kind == 9:
        return Sent(None, await world.http["anonymous"].get(f"/Patient/{child}"), {child})  # 401
    if kind == 10:
        return Sent(who, await http.get(f"/Condition?patient=Patient/{child}"), {child})
    return Sent(who, await http.get("/NoSuchType/1"))  # 404


async def _create_flag(world: World, who: str, child: str) -> Sent:
    body = f.flag(subject=f"Patient/{child}")
    response = await world.http[who].post("/Flag", json=body)
    if response.status_code == 201:
        world.flags.append(response.json()["id"])
    return Sent(who, response)


async def _transaction(rng: random.Random, world: World, who: str) -> Sent:
    serial = rng.randrange(10**6)
    entries = [
        f.entry(method="POST", url="Patient", resource=f.patient(), full_url="urn:uuid:p"),
        f.entry(method="POST", url="Flag", resource=f.flag(subject="urn:uuid:p")),
    ]
    if rng.random() < 0.3:  # fails whole: its Flag names a Patient that is not there
        entries[1]["resource"]["subject"]["reference"] = f"Patient/gone-{serial}"
    return Sent(who, await world.http[who].post(BASE, json=f.bundle(entries=entries)))


def _expected_patients(sent: Sent) -> set[str]:
    """The named Patients, and on success each Patient whose data the answer holds or the
    request wrote (a transaction's are the Patients it created)."""
    response = sent.response
    if response.status_code >= 400:
        return sent.named
    answer = response.json()
    if answer.get("type") == "transaction-response":
        locations = [e["response"]["location"] for e in answer.get("entry", [])]
        return sent.named | {loc.split("/")[1] for loc in locations if loc.startswith("Patient/")}
    return sent.named | patients_held(answer)


def _outcome(status: int) -> str:
    return "0" if status < 400 else "4" if status < 500 else "8"


async def test_a_thousand_mixed_requests_leave_a_thousand_faithful_audit_events(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    children = await _population(app, client)
    world = World(children, [], await _clients(app))
    await clear_trail(app)
    rng = random.Random(13)
    sent = [await _one(rng, world) for _ in range(REQUESTS)]
    for http in world.http.values():
        await http.aclose()
    events = await stored_events(app)
    assert len(events) == REQUESTS
    grouped = by_request(events)
    statuses = Counter(s.response.status_code for s in sent)
    assert {200, 201, 400, 401, 403, 404} <= set(statuses), statuses
    assert sum(bool(patients(event)) for event in events) > REQUESTS // 2
    for one in sent:
        found = grouped[one.response.headers["x-request-id"]]
        assert len(found) == 1
        event = found[0]
        status = one.response.status_code
        where = f"{one.response.request.method} {one.response.request.url} -> {status}"
        assert client_of(event) == one.client_id, where
        assert event["outcome"] == _outcome(status), where
        assert patients(event) == _expected_patients(one), where
