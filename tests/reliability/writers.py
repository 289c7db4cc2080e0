"""Concurrent writers that record every write the server acknowledged (2xx), and the check
that each is still there, with its content, after the server was killed and restarted."""

import asyncio
import random
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

FHIR_JSON = "application/fhir+json"
FLAG_SYSTEM = "https://example.org/flags"
TRANSACTION_FLAGS = 2  # Flags in each transaction Bundle, beside its Patient
_LOCATION = re.compile(r"(?:^|/)(\w+)/([^/]+)/_history/(\d+)$")


@dataclass(frozen=True, slots=True)
class Ack:
    """One acknowledged write: the version it made and the marker its content carries."""

    kind: str
    id: str
    version: int
    marker: str


@dataclass
class Ledger:
    """What the writers sent and what the server answered."""

    acks: list[Ack] = field(default_factory=list)
    transactions_sent: set[str] = field(default_factory=set)  # markers, acknowledged or not
    transactions_acked: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0

    def server_errors(self, allowed: frozenset[int] = frozenset({503})) -> int:
        """5xx answers other than those `allowed`."""
        return sum(
            n for status, n in self.statuses.items() if status >= 500 and status not in allowed
        )


def patient(marker: str) -> dict[str, Any]:
    """A Patient whose family name is the marker."""
    return {"resourceType": "Patient", "name": [{"family": marker}], "gender": "unknown"}


def flag(marker: str, subject: str) -> dict[str, Any]:
    """A clinical Flag (outside the safeguarding rules) whose identifier is the marker."""
    return {
        "resourceType": "Flag",
        "status": "active",
        "identifier": [{"system": FLAG_SYSTEM, "value": marker}],
        "code": {"coding": [{"system": "https://example.org/flag-codes", "code": "note"}]},
        "subject": {"reference": subject},
    }


def marker_of(resource: dict[str, Any]) -> str | None:
    """The marker a stored Patient or Flag carries."""
    if resource.get("resourceType") == "Patient":
        return str(resource["name"][0]["family"])
    return str(resource["identifier"][0]["value"])


def written(location: str | None) -> tuple[str, str, int]:
    """(type, id, version) of a Location such as `.../Patient/abc/_history/2`."""
    found = _LOCATION.search(location or "")
    assert found, f"not a version location: {location}"
    return found[1], found[2], int(found[3])


class Writer:
    """One writer: creates Patients and Flags, updates its own with If-Match, sends
    transaction Bundles of a Patient and its Flags; records what was acknowledged."""

    def __init__(self, number: int, http: httpx.AsyncClient, ledger: Ledger) -> None:
        self.number, self.http, self.ledger = number, http, ledger
        self.random = random.Random(number)  # the same choices on each run
        self.serial = 0
        self.owned: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}

    def marker(self, kind: str) -> str:
        """A marker no other write carries."""
        self.serial += 1
        return f"{kind}-w{self.number}-{self.serial}-{uuid.uuid4().hex[:6]}"

    async def run(self, stop: asyncio.Event) -> None:
        """Write until `stop`; a connection error (the server is down) waits a little."""
        while not stop.is_set():
            try:
                await self.one_write()
            except httpx.TransportError:
                self.ledger.connection_errors += 1
                await asyncio.sleep(0.02)

    async def one_write(self) -> None:
        """A write chosen at random among the four kinds."""
        roll = self.random.random()
        patients = [key for key in self.owned if key[0] == "Patient"]
        if roll < 0.25 or not patients:
            await self.create(patient(self.marker("p")))
        elif roll < 0.45:
            subject = "Patient/" + self.random.choice(patients)[1]
            await self.create(flag(self.marker("f"), subject))
        elif roll < 0.8:
            await self.update(self.random.choice(list(self.owned)))
        else:
            await self.transaction(self.marker("tx"))

    def acknowledge(self, location: str | None, body: dict[str, Any]) -> None:
        """Record an acknowledged version and keep the resource for later updates."""
        kind, resource_id, version = written(location)
        self.ledger.acks.append(Ack(kind, resource_id, version, marker_of(body) or ""))
        self.owned[(kind, resource_id)] = (version, body)

    async def create(self, resource: dict[str, Any]) -> None:
        """POST a resource."""
        response = await self.http.post(f"/{resource['resourceType']}", json=resource)
        self.ledger.statuses[response.status_code] += 1
        if response.status_code == 201:
            self.acknowledge(response.headers.get("location"), resource)

    async def update(self, key: tuple[str, str]) -> None:
        """PUT a new marker into one of the writer's resources, If-Match its known version."""
        version, body = self.owned[key]
        changed = {**body, "id": key[1]}
        if key[0] == "Patient":
            changed["name"] = [{"family": self.marker("pu")}]
        else:
            changed["identifier"] = [{"system": FLAG_SYSTEM, "value": self.marker("fu")}]
        headers = {"If-Match": f'W/"{version}"'}
        response = await self.http.put(f"/{key[0]}/{key[1]}", json=changed, headers=headers)
        self.ledger.statuses[response.status_code] += 1
        if response.status_code == 200:
            self.acknowledge(response.headers.get("location"), changed)
        elif response.status_code == 412:  # a write committed but unacknowledged before a kill
            await self.refresh(key)

    async def refresh(self, key: tuple[str, str]) -> None:
        """Learn the current version of one of the writer's resources."""
        response = await self.http.get(f"/{key[0]}/{key[1]}")
        self.ledger.statuses[response.status_code] += 1
        if response.status_code == 200:
            current = response.json()
            self.owned[key] = (int(current["meta"]["versionId"]), current)

    async def transaction(self, marker: str) -> None:
        """A transaction Bundle: a Patient and its Flags, all carrying `marker`."""
        subject = f"urn:uuid:{uuid.uuid4()}"
        entries = [_entry(patient(marker), subject)]
        entries += [_entry(flag(marker, subject)) for _ in range(TRANSACTION_FLAGS)]
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        self.ledger.transactions_sent.add(marker)
        response = await self.http.post(base(self.http), json=bundle)
        self.ledger.statuses[response.status_code] += 1
        if response.status_code != 200:
            return
        self.ledger.transactions_acked.add(marker)
        locations = [
            answered["response"]["location"] for answered in response.json().get("entry", [])
        ]
        kind, patient_id, _ = written(locations[0])
        for entry, location in zip(entries, locations, strict=True):
            resource = entry["resource"]
            if "subject" in resource:  # kept for updates: the placeholder resolved
                resource["subject"] = {"reference": f"{kind}/{patient_id}"}
            self.acknowledge(location, resource)


def _entry(resource: dict[str, Any], full_url: str | None = None) -> dict[str, Any]:
    """A transaction entry creating `resource`."""
    entry = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
    return entry | ({"fullUrl": full_url} if full_url else {})


@dataclass
class Verdict:
    """What the check of a ledger found."""

    checked: int = 0
    lost: list[str] = field(default_factory=list)
    history_gaps: list[str] = field(default_factory=list)
    partial_transactions: list[str] = field(default_factory=list)


Versions = dict[tuple[str, str], dict[int, str]]  # (type, id) -> version -> marker


async def stored_versions(http: httpx.AsyncClient, kinds: tuple[str, ...]) -> Versions:
    """Every stored version of every resource of `kinds`, read through type-level history
    (all its pages), with the marker of each."""
    versions: Versions = {}
    for kind in kinds:
        url: str | None = f"{base(http)}/{kind}/_history?_count=500"
        while url is not None:
            response = await http.get(url)
            assert response.status_code == 200, response.text
            page = response.json()
            for entry in page.get("entry", []):
                resource = entry["resource"]
                number = int(resource["meta"]["versionId"])
                versions.setdefault((kind, resource["id"]), {})[number] = marker_of(resource) or ""
            url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    return versions


def check(versions: Versions, ledger: Ledger) -> Verdict:
    """Every acknowledged version is stored with its marker; every resource's versions run
    1..n without a gap; a transaction's resources are all there, or (unacknowledged) none."""
    verdict = Verdict(checked=len(ledger.acks))
    for ack in ledger.acks:
        stored = versions.get((ack.kind, ack.id), {}).get(ack.version)
        if stored != ack.marker:
            verdict.lost.append(f"{ack}: stored {stored!r}")
    for key, numbers in versions.items():
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            verdict.history_gaps.append(f"{key}: {sorted(numbers)}")
    created = Counter(numbers.get(1) for numbers in versions.values())
    whole = 1 + TRANSACTION_FLAGS
    for marker in ledger.transactions_sent:
        acked = marker in ledger.transactions_acked
        if created[marker] != whole and (acked or created[marker] != 0):
            verdict.partial_transactions.append(f"{marker}: {created[marker]} of {whole}")
    return verdict


async def read_back(http: httpx.AsyncClient, acks: list[Ack], verdict: Verdict) -> None:
    """Each of `acks` read by version (vread) too: there, with its marker."""
    for ack in acks:
        response = await http.get(f"/{ack.kind}/{ack.id}/_history/{ack.version}")
        if response.status_code != 200 or marker_of(response.json()) != ack.marker:
            verdict.lost.append(f"{ack}: vread {response.status_code}")


def base(http: httpx.AsyncClient) -> str:
    """The client's FHIR base URL without the trailing slash httpx adds."""
    return str(http.base_url).rstrip("/")
