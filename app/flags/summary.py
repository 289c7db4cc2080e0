"""The safeguarding summary ("Think Family") of a child, read live on every call, never stored.

It holds the child's Patient, active Flags and active Conditions, its RelatedPersons, and the
own Patient records of its linked parents and siblings (a RelatedPerson's NHS number names
the record; a sibling may also be found from the other child's RelatedPerson naming this
child's NHS number) with their active safeguarding Flags, and the records of the children
whose own records link it as their parent or carer, with theirs (an adult's summary shows the
children at risk); `summary_warnings` and `adult_warnings` say what a reader should notice.
At most nine searches, whatever the size of the family.
Spec: http://hl7.org/fhir/R4/operations.html
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from app.criteria import Criterion, Query, ReferenceValue, TokenValue
from app.errors import NotFound, PreconditionFailed
from app.flags import codes, summary_page
from app.flags.adult_warnings import address_district
from app.flags.care_teams import leads
from app.flags.codes import Vocabulary
from app.flags.summary_outcome import outcome
from app.flags.summary_warnings import (
    CARERS,
    ROLE_CODE,
    SIBLINGS,
    Family,
    Finding,
    Held,
    Limits,
    Relative,
    carer_code,
    identifier_values,
    kinship,
    recording_organization,
    role_codes,
)
from app.flags.warning_rules import as_adult, findings
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
    """The summary's resources in Bundle order, the OperationOutcome of its warnings (with
    their narrative), and the page a person reads (`page`)."""

    entries: tuple[Held, ...]
    outcome: dict[str, Any]
    family: Family
    findings: tuple[Finding, ...]
    adult: bool

    def page(self, vocabulary: Vocabulary) -> bytes:
        """The summary as a self-contained HTML page (`summary_page`)."""
        return summary_page.page(self.family, self.findings, vocabulary, self.adult)


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
    vocabulary = terms.vocabulary
    adult = as_adult(family, terms.limits.today)
    found = findings(family, vocabulary, terms.limits)
    rendered = outcome(found, vocabulary, paths)
    text = summary_page.narrative(family, found, vocabulary, adult)
    rendered = {"resourceType": "OperationOutcome", "text": text, "issue": rendered["issue"]}
    return Summary(entries, rendered, family, found, adult)


def _entries(family: Family) -> tuple[Held, ...]:
    """The child, its flags, conditions and RelatedPersons, then its relatives' records
    (parents first) and their flags; each resource once."""
    relatives = sorted(family.relatives, key=lambda r: r.kind != "parent")
    ordered = [
        family.child,
        *family.flags,
        *family.conditions,
        *family.care_teams,
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
    readable = reader.repository.caller.readable_types
    seen = readable is None or "CareTeam" in readable
    teams = await reader.find(
        "CareTeam",
        _patients("patient", [child_id]),
        _tokens("status", [(None, "active")]),
        what="the child's active care teams",
    )
    found = (tuple(own), tuple(conditions), tuple(relatives), tuple(theirs))
    family = Family(child, base, tuple(related), *found, tuple(not_brought + ended))
    family = replace(family, care_teams=tuple(teams), teams_seen=seen)
    names, districts = await _organizations(reader, family, terms)
    return replace(
        family, organizations=names, districts=districts, cut_short=tuple(reader.cut_short)
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
    """The own records of the child's linked parents and siblings, and of the children whose
    records link it as their parent or carer, each once (not the child itself)."""
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
    for relative in await _naming(reader, child, base, frozenset(found)):
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


async def _naming(reader: _Reader, child: Held, base: str, known: frozenset[str]) -> list[Relative]:
    """Children whose own RelatedPerson names this person's NHS number as their sibling (this
    person's siblings) or as their parent or carer (this person's children), in one search."""
    numbers = identifier_values(child.resource, NHS_NUMBER_SYSTEM)
    if not numbers:
        return []
    wanted = [(ROLE_CODE, code) for code in sorted(SIBLINGS)]
    wanted += [(system, code) for system, found in CARERS.items() for code in sorted(found)]
    naming = await reader.find(
        "RelatedPerson",
        _tokens("identifier", [(NHS_NUMBER_SYSTEM, n) for n in numbers]),
        _tokens("relationship", wanted),
        what="RelatedPersons on other records naming the person",
    )
    links: dict[str, tuple[str, str, str]] = {}
    for rp in naming:
        patient_id = target_id(rp.resource.get("patient"), "Patient", base)
        if not patient_id or patient_id == child.logical_id or patient_id in known:
            continue
        sibling = next((c for c in role_codes(rp.resource) if c in SIBLINGS), None)
        if sibling is not None:
            links.setdefault(
                patient_id, ("sibling", RECIPROCAL.get(sibling, sibling), rp.reference)
            )
        elif (carer := carer_code(rp.resource)) is not None:
            links.setdefault(patient_id, ("child", carer, rp.reference))
    if not links:
        return []
    patients = await reader.find("Patient", _ids(sorted(links)), what="their records")
    return [Relative(p, *links[p.logical_id]) for p in patients]


async def _organizations(
    reader: _Reader, family: Family, terms: Terms
) -> tuple[dict[str, str], dict[str, str]]:
    """Names and address districts of the Organizations that recorded the family's flags and
    the child's conditions, of the family's responsible authorities, and of the child's lead
    professional, by `Organization/id`."""
    flags = [*family.flags, *family.relative_flags, *family.not_brought]
    ids = {target_id(f.resource.get("author"), "Organization", terms.base) for f in flags}
    for condition in family.conditions:
        found = recording_organization(condition.resource, terms.vocabulary, terms.base)
        if isinstance(found, str) and found.startswith("Organization/"):
            ids.add(found.removeprefix("Organization/"))
    for person in (family.child, *(relative.patient for relative in family.relatives)):
        named = terms.vocabulary.responsible_authorities(person.resource)
        ids.update(target_id(value, "Organization", terms.base) for value in named)
    for team in family.care_teams:
        for _, lead in leads(team.resource, terms.vocabulary):
            ids.add(target_id(lead.get("member"), "Organization", terms.base))
    wanted = sorted(i for i in ids if i)
    if not wanted:
        return {}, {}
    organizations = await reader.find("Organization", _ids(wanted), what="organizations")
    names = {o.reference: o.resource["name"] for o in organizations if _text(o, "name")}
    districts = {}
    for organization in organizations:
        district = address_district(organization)
        if district is not None:
            districts[organization.reference] = district
    return names, districts


def _text(held: Held, name: str) -> bool:
    return isinstance(held.resource.get(name), str)
