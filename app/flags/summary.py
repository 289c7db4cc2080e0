"""The safeguarding summary ("Think Family") of a child, read live on every call, never stored.

It holds the child's Patient, active Flags and active Conditions, its RelatedPersons, and the
own Patient records of its linked parents and siblings (a RelatedPerson's NHS number names
the record; a sibling may also be found from the other child's RelatedPerson naming this
child's NHS number) with their active safeguarding Flags; `summary_warnings` says what a
reader should notice. At most nine searches, whatever the size of the family.
Spec: http://hl7.org/fhir/R4/operations.html
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.criteria import Criterion, Query, ReferenceValue, TokenValue
from app.errors import NotFound, PreconditionFailed
from app.flags import codes
from app.flags.codes import Vocabulary
from app.flags.summary_warnings import (
    ROLE_CODE,
    SIBLINGS,
    Family,
    Held,
    Limits,
    Relative,
    findings,
    identifier_values,
    kinship,
    outcome,
    recording_organization,
    role_codes,
)
from app.nhs import NHS_NUMBER_SYSTEM
from app.normalise import indexed_text, target_id
from app.registry.bindings import CLINICAL_STATUS
from app.storage import query as sq
from app.storage.query import Match
from app.storage.repository import Repository

ROW_LIMIT = 1000  # rows one search of a summary reads; more is reported as a warning
ACTIVE_CLINICAL = ("active", "recurrence", "relapse")
# A sibling found from the other child's record: that record says what this child is to it.
RECIPROCAL = {"BRO": "SIB", "SIS": "SIB", "HBRO": "HSIB", "HSIS": "HSIB"}


@dataclass(frozen=True, slots=True)
class Terms:
    """What a summary is made with: the vocabulary, the FHIR base URL and the warning limits."""

    vocabulary: Vocabulary
    base: str
    limits: Limits


@dataclass(frozen=True, slots=True)
class Summary:
    """The summary's resources in Bundle order, and the OperationOutcome of its warnings."""

    entries: tuple[Held, ...]
    outcome: dict[str, Any]


@dataclass(slots=True)
class _Reader:
    """Searches through the caller's repository, noting those cut short at the row limit."""

    repository: Repository
    cut_short: list[str] = field(default_factory=list)

    async def find(self, resource_type: str, *criteria: Criterion, what: str) -> list[Held]:
        rows = await sq.search(self.repository, Query(resource_type, criteria, ROW_LIMIT + 1))
        if len(rows) > ROW_LIMIT:
            self.cut_short.append(what)
        return [
            held(resource_type, row.logical_id, row.body, row.patient_id)
            for row in rows[:ROW_LIMIT]
        ]


def held(resource_type: str, logical_id: str, stored: bytes, patient_id: str | None = None) -> Held:
    """A stored resource as the summary holds it: its bytes, their parse, its compartment."""
    body = bytes(stored)
    return Held(resource_type, logical_id, body, orjson.loads(body), patient_id)


def _ids(ids: Iterable[str]) -> Criterion:
    return Criterion("_id", "id", tuple(ids))


def _patients(param: str, ids: Iterable[str]) -> Criterion:
    """`param` refers to any of the Patients `ids` (values are ORed)."""
    return Criterion(
        param, "reference", tuple(ReferenceValue("Patient", indexed_text(i) or i) for i in ids)
    )


def _tokens(param: str, pairs: Iterable[tuple[str | None, str]]) -> Criterion:
    """`param` is any of the (system, code) pairs; a None system matches any system."""
    values = tuple(
        TokenValue(indexed_text(system), indexed_text(code), system is not None)
        for system, code in pairs
    )
    return Criterion(param, "token", values)


def _codes_of(vocabulary: Vocabulary, flag_type: str) -> Criterion:
    """Flag.code is the flag type: by the project's code or its confirmed SNOMED equivalent."""
    pairs: list[tuple[str | None, str]] = [(vocabulary.flag_type_system, flag_type)]
    pairs += [
        (codes.SNOMED, c.snomed) for c in vocabulary.flag_types if c.code == flag_type and c.snomed
    ]
    return _tokens("code", pairs)


async def for_patient(repository: Repository, child: Held, terms: Terms) -> Summary:
    """The summary of the child whose Patient (read by the caller) is `child`."""
    return await _summarise(_Reader(repository), child, terms)


async def for_identifier(repository: Repository, system: str, value: str, terms: Terms) -> Summary:
    """The summary of the one live Patient with identifier `system|value`: none is 404,
    several 412."""
    query = Query("Patient", (_tokens("identifier", [(system, value)]),), 2)
    rows: list[Match] = await sq.search(repository, query)
    if not rows:
        raise NotFound.of(f"no Patient has the identifier {system}|{value}", "identifier")
    if len(rows) > 1:
        raise PreconditionFailed.of(
            f"more than one Patient has the identifier {system}|{value}",
            "identifier",
            code="multiple-matches",
        )
    child = held("Patient", rows[0].logical_id, rows[0].body, rows[0].logical_id)
    return await _summarise(_Reader(repository), child, terms)


async def _summarise(reader: _Reader, child: Held, terms: Terms) -> Summary:
    family = await _gather(reader, child, terms)
    entries = _entries(family)
    paths = {held.reference: f"Bundle.entry[{i}].resource" for i, held in enumerate(entries)}
    found = findings(family, terms.vocabulary, terms.limits)
    return Summary(entries, outcome(found, terms.vocabulary, paths))


def _entries(family: Family) -> tuple[Held, ...]:
    """The child, its flags, conditions and RelatedPersons, then its relatives' records
    (parents first) and their flags; each resource once."""
    relatives = sorted(family.relatives, key=lambda r: r.kind != "parent")
    ordered = [
        family.child,
        *family.flags,
        *family.conditions,
        *family.related_persons,
        *(r.patient for r in relatives),
        *family.relative_flags,
    ]
    unique: dict[str, Held] = {}
    for held in ordered:
        unique.setdefault(held.reference, held)
    return tuple(unique.values())


async def _gather(reader: _Reader, child: Held, terms: Terms) -> Family:
    """Everything the summary shows or reasons from, in at most nine searches."""
    child_id, base = child.logical_id, terms.base
    related = await reader.find(
        "RelatedPerson", _patients("patient", [child_id]), what="the child's RelatedPersons"
    )
    relatives = await _relatives(reader, child, related, base)
    own, theirs = await _active_flags(reader, child_id, relatives, terms)
    not_brought = [f for f in own if _flag_type(f, terms) == codes.WAS_NOT_BROUGHT]
    ended = await reader.find(
        "Flag",
        _patients("patient", [child_id]),
        _tokens("status", [(None, "inactive")]),
        _codes_of(terms.vocabulary, codes.WAS_NOT_BROUGHT),
        what="the child's ended was-not-brought flags",
    )
    conditions = await reader.find(
        "Condition",
        _patients("patient", [child_id]),
        _tokens("clinical-status", _clinical()),
        what="the child's active conditions",
    )
    names = await _organizations(reader, [*own, *theirs, *ended], conditions, terms)
    found = (tuple(own), tuple(conditions), tuple(relatives), tuple(theirs))
    return Family(
        child,
        base,
        tuple(related),
        *found,
        tuple(not_brought + ended),
        names,
        tuple(reader.cut_short),
    )


async def _active_flags(
    reader: _Reader, child_id: str, relatives: Sequence[Relative], terms: Terms
) -> tuple[list[Held], list[Held]]:
    """The child's active flags, and its relatives' active safeguarding flags."""
    everyone = [child_id, *(r.patient.logical_id for r in relatives)]
    active = await reader.find(
        "Flag",
        _patients("patient", everyone),
        _tokens("status", [(None, "active")]),
        what="the family's active flags",
    )
    own = [f for f in active if _subject(f, terms.base) == child_id]
    theirs = [f for f in active if _subject(f, terms.base) != child_id and _flag_type(f, terms)]
    return own, theirs


def _flag_type(flag: Held, terms: Terms) -> str | None:
    return terms.vocabulary.flag_type(flag.resource.get("code"))


def _clinical() -> list[tuple[str | None, str]]:
    return [(CLINICAL_STATUS[0], code) for code in ACTIVE_CLINICAL]


def _subject(flag: Held, base: str) -> str | None:
    return target_id(flag.resource.get("subject"), "Patient", base)


async def _relatives(
    reader: _Reader, child: Held, related: Sequence[Held], base: str
) -> list[Relative]:
    """The own records of the child's linked parents and siblings, each once (not the child)."""
    links = []
    for rp in related:
        kin = kinship(rp.resource)
        if kin is not None:
            numbers = identifier_values(rp.resource, NHS_NUMBER_SYSTEM)
            links += [(number, *kin, rp.reference) for number in numbers]
    by_number = await _by_nhs_number(reader, sorted({link[0] for link in links}))
    found: dict[str, Relative] = {}
    for number, kind, code, via in links:
        patient = by_number.get(number)
        if patient is not None and patient.logical_id != child.logical_id:
            found.setdefault(patient.logical_id, Relative(patient, kind, code, via))
    for relative in await _siblings_naming(reader, child, base, frozenset(found)):
        found.setdefault(relative.patient.logical_id, relative)
    return list(found.values())


async def _by_nhs_number(reader: _Reader, numbers: Sequence[str]) -> dict[str, Held]:
    if not numbers:
        return {}
    pairs = [(NHS_NUMBER_SYSTEM, n) for n in numbers]
    patients = await reader.find(
        "Patient", _tokens("identifier", pairs), what="the relatives' Patient records"
    )
    return {n: p for p in patients for n in identifier_values(p.resource, NHS_NUMBER_SYSTEM)}


async def _siblings_naming(
    reader: _Reader, child: Held, base: str, known: frozenset[str]
) -> list[Relative]:
    """Children whose own RelatedPerson names this child's NHS number as their sibling."""
    numbers = identifier_values(child.resource, NHS_NUMBER_SYSTEM)
    if not numbers:
        return []
    naming = await reader.find(
        "RelatedPerson",
        _tokens("identifier", [(NHS_NUMBER_SYSTEM, n) for n in numbers]),
        _tokens("relationship", [(ROLE_CODE, code) for code in sorted(SIBLINGS)]),
        what="RelatedPersons on other records naming the child",
    )
    links: dict[str, tuple[str, str]] = {}
    for rp in naming:
        patient_id = target_id(rp.resource.get("patient"), "Patient", base)
        code = next((c for c in role_codes(rp.resource) if c in SIBLINGS), None)
        if patient_id and code and patient_id != child.logical_id and patient_id not in known:
            links.setdefault(patient_id, (RECIPROCAL.get(code, code), rp.reference))
    if not links:
        return []
    patients = await reader.find("Patient", _ids(sorted(links)), what="the siblings' records")
    return [Relative(p, "sibling", *links[p.logical_id]) for p in patients]


async def _organizations(
    reader: _Reader, flags: Sequence[Held], conditions: Sequence[Held], terms: Terms
) -> dict[str, str]:
    """Names of the Organizations that recorded the flags and conditions, by `Organization/id`."""
    ids = {target_id(f.resource.get("author"), "Organization", terms.base) for f in flags}
    for condition in conditions:
        found = recording_organization(condition.resource, terms.vocabulary, terms.base)
        if isinstance(found, str) and found.startswith("Organization/"):
            ids.add(found.removeprefix("Organization/"))
    wanted = sorted(i for i in ids if i)
    if not wanted:
        return {}
    organizations = await reader.find("Organization", _ids(wanted), what="organizations")
    return {
        o.reference: o.resource["name"]
        for o in organizations
        if isinstance(o.resource.get("name"), str)
    }
