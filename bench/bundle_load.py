"""The load for `bench.bundles`: one family's request bodies, the clients that write it, runs."""

import argparse
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import httpx
import orjson

from bench import machine
from bench.process import Server
from bench.server import FHIR_JSON
from tests import factories

PREFER = "return=minimal"
HEADERS = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, "Prefer": PREFER}
RELATIONSHIPS = ("FTH", "MTH", "SIB")
CLINICAL = 96  # Flags and Conditions, alternating
FAMILY_SIZE = 1 + len(RELATIONSHIPS) + CLINICAL
MODES = ("transaction", "single")
COUNCIL = "Organization/bench-council"
SAFEGUARDING_CONCERN = "836881000000105"  # SNOMED CT: child is cause for safeguarding concern
NHS_MARK, PATIENT_MARK, ENTRY_MARK = b"@nhs@", b"@patient@", b"@entry@"
MARKS = re.compile(b"(" + b"|".join(map(re.escape, (NHS_MARK, PATIENT_MARK, ENTRY_MARK))) + b")")


def uuid_bytes() -> bytes:
    """A fresh uuid4, as text."""
    return str(uuid.uuid4()).encode()


@dataclass(frozen=True, slots=True)
class Template:
    """A body serialised once, split at the marks that change from one request to the next."""

    pieces: tuple[bytes, ...]  # text, mark, text, mark, ..., text

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> "Template":
        """`document` as JSON, with its marks (quoted strings in it) ready to fill."""
        return cls(tuple(MARKS.split(orjson.dumps(document))))

    def fill(self, values: Mapping[bytes, bytes]) -> bytes:
        """The body with each mark replaced; every `@entry@` by a fresh uuid."""
        pieces = list(self.pieces)
        for i in range(1, len(pieces), 2):
            found = values.get(pieces[i])
            pieces[i] = found if found is not None else uuid_bytes()
        return b"".join(pieces)


def family(patient_reference: str) -> list[dict[str, Any]]:
    """A Patient (NHS number marked), 3 RelatedPersons, 96 safeguarding Flags (raised by the
    council) and Conditions on it."""
    resources = [factories.patient(nhs=NHS_MARK.decode())]
    for relationship in RELATIONSHIPS:
        resources.append(
            factories.related_person(patient=patient_reference, relationship=relationship)
        )
    for i in range(CLINICAL):
        if i % 2 == 0:
            resources.append(
                factories.safeguarding_flag(
                    subject=patient_reference,
                    author=COUNCIL,
                    code=SAFEGUARDING_CONCERN,
                    display="Child is cause for safeguarding concern",
                )
            )
        else:
            resources.append(factories.condition(subject=patient_reference))
    return resources


def put_council(server: Server) -> None:
    """Create (or keep) the Organization every family's flags name as their author."""
    council = factories.organization(ods="BENCH1", name="Bench County Council")
    with client_for(server) as client:
        response = client.put(f"/fhir/{COUNCIL}", json=council | {"id": COUNCIL.split("/")[1]})
    response.raise_for_status()


def transaction_document() -> dict[str, Any]:
    """The family as a transaction Bundle, every entry with a marked `urn:uuid` fullUrl."""
    patient_urn, entry_urn = (f"urn:uuid:{mark.decode()}" for mark in (PATIENT_MARK, ENTRY_MARK))
    resources = family(patient_urn)
    entries = [
        factories.entry(
            method="POST",
            url=resource["resourceType"],
            resource=resource,
            full_url=patient_urn if i == 0 else entry_urn,
        )
        for i, resource in enumerate(resources)
    ]
    return factories.bundle(kind="transaction", entries=entries)


@dataclass(frozen=True, slots=True)
class Bodies:
    """One family's request bodies, serialised once: as a transaction and as single POSTs."""

    transaction: Template
    patient: Template
    others: tuple[tuple[str, Template], ...]  # (resource type, body) of the 99 after the Patient

    @classmethod
    def build(cls) -> "Bodies":
        """Serialise both forms of the family."""
        patient, *others = family(PATIENT_MARK.decode())
        return cls(
            transaction=Template.of(transaction_document()),
            patient=Template.of(patient),
            others=tuple((r["resourceType"], Template.of(r)) for r in others),
        )


class Serials:
    """Unique valid NHS numbers (999 test range) for every Patient of the run, for any thread."""

    def __init__(self) -> None:
        self.next_serial = 1
        self.lock = threading.Lock()

    def nhs(self) -> bytes:
        """The next unused NHS number."""
        with self.lock:
            number = factories.nhs_number(self.next_serial)
            self.next_serial = int(number[3:9]) + 1  # nhs_number skips serials with check 10
        return number.encode()


@dataclass(slots=True)
class Phase:
    """Where a run is: set by the timer, read by every client."""

    running: bool = True
    measuring: bool = False


@dataclass(slots=True)
class Tally:
    """What one client wrote while measuring, and what went wrong at any time."""

    phase: Phase
    resources: int = 0
    requests: int = 0
    errors: int = 0
    failures: list[str] = field(default_factory=list)

    def written(self, resources: int) -> None:
        """Count a request that was answered as expected."""
        if self.phase.measuring:
            self.resources += resources
            self.requests += 1

    def fail(self, message: str) -> None:
        """Count a failed request, keeping the first few messages."""
        self.errors += 1
        if len(self.failures) < 5:
            self.failures.append(message)


def answer(response: httpx.Response) -> str:
    """The server's answer, short: status and the start of the body."""
    return f"{response.status_code} {response.text[:300]}"


def transaction_problem(response: httpx.Response) -> str | None:
    """What is wrong with a transaction's answer, or None if every entry was created."""
    if response.status_code != 200:
        return f"POST /fhir answered {answer(response)}"
    try:
        bundle = orjson.loads(response.content)
        statuses = [
            (e["response"]["status"], e["response"].get("location")) for e in bundle["entry"]
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        return f"POST /fhir: unreadable transaction-response ({exc!r}): {answer(response)}"
    if bundle.get("type") != "transaction-response" or len(statuses) != FAMILY_SIZE:
        return f"POST /fhir: not a {FAMILY_SIZE}-entry transaction-response: {answer(response)}"
    wrong = [
        f"{i}: {s}"
        for i, (s, location) in enumerate(statuses)
        if not s.startswith("201") or not location
    ]
    return f"POST /fhir: entries not created: {', '.join(wrong[:5])}" if wrong else None


def write_transaction(client: httpx.Client, bodies: Bodies, serials: Serials, tally: Tally) -> None:
    """One family in one transaction."""
    body = bodies.transaction.fill({NHS_MARK: serials.nhs(), PATIENT_MARK: uuid_bytes()})
    problem = transaction_problem(client.post("/fhir", content=body))
    if problem is None:
        tally.written(FAMILY_SIZE)
    else:
        tally.fail(problem)


def patient_reference(location: str) -> str:
    """`Patient/{id}` from a create's Location (`{base}/Patient/{id}/_history/1`)."""
    return "Patient/" + location.rsplit("/Patient/", 1)[1].split("/", 1)[0]


def write_singles(client: httpx.Client, bodies: Bodies, serials: Serials, tally: Tally) -> None:
    """One family as single POSTs: the Patient, then the 99 others on its id."""
    patient = bodies.patient.fill({NHS_MARK: serials.nhs()})
    response = client.post("/fhir/Patient", content=patient)
    location = response.headers.get("location", "")
    if response.status_code != 201 or "/Patient/" not in location:
        tally.fail(f"POST /fhir/Patient answered {answer(response)} (Location {location!r})")
        return
    tally.written(1)
    values = {PATIENT_MARK: patient_reference(location).encode()}
    for resource_type, template in bodies.others:
        if not tally.phase.running:
            return
        response = client.post(f"/fhir/{resource_type}", content=template.fill(values))
        if response.status_code == 201:
            tally.written(1)
        else:
            tally.fail(f"POST /fhir/{resource_type} answered {answer(response)}")


Writer = Callable[[httpx.Client, Bodies, Serials, Tally], None]
WRITERS: dict[str, Writer] = {"transaction": write_transaction, "single": write_singles}


def client_for(server: Server) -> httpx.Client:
    """One keep-alive connection to the server, sending the bench client's token (a sync
    client costs half an async one's CPU)."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.Client(
        base_url=server.url, headers=HEADERS, auth=server.auth, timeout=120.0, limits=limits
    )


def keep_writing(
    server: Server, writer: Writer, bodies: Bodies, serials: Serials, tally: Tally
) -> None:
    """One client: families one after the other until the run stops."""
    with client_for(server) as client:
        while tally.phase.running:
            try:
                writer(client, bodies, serials, tally)
            except httpx.HTTPError as exc:
                tally.fail(f"{type(exc).__name__}: {exc}")
                time.sleep(0.1)


@dataclass(frozen=True, slots=True)
class Run:
    """One measured interval of one mode at one client count."""

    mode: str
    clients: int
    seconds: float
    resources: int
    requests: int
    errors: int
    failures: list[str]
    server_cpu_seconds: float | None
    loadgen_cpu_seconds: float
    machine_cores: float | None  # cores busy machine-wide (server, us, database, others)

    @property
    def rate(self) -> float:
        """Resources written per second."""
        return self.resources / self.seconds if self.seconds > 0 else 0.0

    @property
    def server_us(self) -> float | None:
        """Server CPU microseconds per resource written."""
        if self.server_cpu_seconds is None or not self.resources:
            return None
        return self.server_cpu_seconds / self.resources * 1e6


class Reading(NamedTuple):
    """Clocks read at one end of a measured interval."""

    wall: float
    server_cpu: float | None
    own_cpu: float
    machine: tuple[int, int] | None  # (busy, total) CPU ticks of all cores


def read_clocks(server: Server) -> Reading:
    """The wall clock and the CPU used so far by the server, this process and the machine."""
    return Reading(
        time.perf_counter(), server.cpu_seconds(), machine.own_cpu(), machine.machine_jiffies()
    )


def measured(mode: str, clients: int, tallies: list[Tally], before: Reading, after: Reading) -> Run:
    """The run between two readings."""
    seconds = after.wall - before.wall
    served = None
    if after.server_cpu is not None and before.server_cpu is not None:
        served = after.server_cpu - before.server_cpu
    busy = None
    if after.machine is not None and before.machine is not None:
        busy = (after.machine[0] - before.machine[0]) / os.sysconf("SC_CLK_TCK") / seconds
    return Run(
        mode,
        clients,
        seconds,
        sum(t.resources for t in tallies),
        sum(t.requests for t in tallies),
        sum(t.errors for t in tallies),
        [message for t in tallies for message in t.failures][:5],
        served,
        after.own_cpu - before.own_cpu,
        busy,
    )


def drive(
    server: Server,
    bodies: Bodies,
    serials: Serials,
    mode: str,
    clients: int,
    args: argparse.Namespace,
) -> Run:
    """`clients` threads write for warm-up + duration; count what was answered in the duration."""
    phase = Phase()
    tallies = [Tally(phase) for _ in range(clients)]
    threads = [
        threading.Thread(target=keep_writing, args=(server, WRITERS[mode], bodies, serials, t))
        for t in tallies
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(args.warmup)
        before, phase.measuring = read_clocks(server), True
        time.sleep(args.duration)
        phase.measuring, after = False, read_clocks(server)
    finally:
        phase.running = False
        for thread in threads:
            thread.join()
    return measured(mode, clients, tallies, before, after)


def check(server: Server, bodies: Bodies, serials: Serials, mode: str) -> str | None:
    """Write one family in `mode`; what went wrong, or None."""
    tally = Tally(Phase(measuring=True))
    try:
        with client_for(server) as client:
            WRITERS[mode](client, bodies, serials, tally)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return tally.failures[0] if tally.failures else None
