"""The warnings of the safeguarding summary: pure rules over one family's records (no database).

Each rule reads a `Family` and returns `Finding`s: a stable code of the project's
`safeguarding-summary-warning` code system, a plain-English sentence naming the evidence, and
the resources at issue. `outcome` renders them as the summary's OperationOutcome.
Spec: http://hl7.org/fhir/R4/operationoutcome.html
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from app.flags import codes
from app.flags.codes import Vocabulary
from app.normalise import target_id

WARNING_SYSTEM = "safeguarding-summary-warning"  # id of the code system of the codes below
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
UK_ROLE = "https://fhir.hl7.org.uk/CodeSystem/UKCore-AdditionalPersonRelationshipRole"
FATHERS = frozenset({"FTH", "NFTH", "STPFTH"})
PARENTS = FATHERS | {"MTH", "NMTH", "STPMTH", "PRN", "ADOPTP", "ADOPTF", "ADOPTM"}
# Who an adult is to a child whose record links them, for the adult's summary: a parent,
# step-parent, adoptive or foster parent, guardian (v3-RoleCode), or carer or guardian (UK
# Core's roles).
CARERS = {
    ROLE_CODE: PARENTS | {"NPRN", "STPPRN", "PRNFOST", "GUARD"},
    UK_ROLE: {"Carer", "Guardian"},
}
ADULT_AGE = 18
SIBLINGS = frozenset({"SIB", "NSIB", "HSIB", "HBRO", "HSIS", "STPSIB", "BRO", "SIS"})
PLANS = (codes.CHILD_PROTECTION_PLAN, codes.UNBORN_CHILD_PROTECTION_PLAN)
PROTECTED = (codes.CHILD_PROTECTION_PLAN, codes.LOOKED_AFTER_CHILD)

NO_FATHER = "no-father-recorded"
FATHER_NOT_IDENTIFIED = "father-not-identified"
HOME_EDUCATION = "elective-home-education"
NOT_BROUGHT = "repeated-was-not-brought"
SIBLING_PLAN = "sibling-subject-to-plan"
MULTIPLE_SERVICES = "multiple-services-same-condition"
HOUSEHOLD_RISK = "household-risk"
CHILD_PLAN = "child-subject-to-plan"
CHILD_ELSEWHERE = "child-on-register-elsewhere"
NO_LEAD = "no-lead-professional"
INCOMPLETE = "summary-incomplete"
DISPLAYS = {
    NO_FATHER: "No father recorded",
    FATHER_NOT_IDENTIFIED: "Father not identified",
    HOME_EDUCATION: "Electively home educated",
    NOT_BROUGHT: "Repeatedly not brought to appointments",
    SIBLING_PLAN: "Sibling subject to a child protection plan",
    MULTIPLE_SERVICES: "Same condition recorded by several services",
    HOUSEHOLD_RISK: "Risk in the household",
    CHILD_PLAN: "A child of this person is subject to a plan or looked after",
    CHILD_ELSEWHERE: "A child of this person is on another authority's register",
    NO_LEAD: "No lead professional",
    INCOMPLETE: "Summary incomplete",
}


@dataclass(frozen=True, slots=True)
class Held:
    """One live stored resource: its stored bytes (served as they are) and their parse."""

    resource_type: str
    logical_id: str
    body: bytes
    resource: dict[str, Any]
    patient_id: str | None = None  # the Patient compartment it is in

    @property
    def reference(self) -> str:
        """`Type/id`."""
        return f"{self.resource_type}/{self.logical_id}"


@dataclass(frozen=True, slots=True)
class Relative:
    """A linked parent's or sibling's own Patient record, and the RelatedPerson linking it."""

    patient: Held
    kind: str  # "parent", "sibling", or "child" (whose record links the summary's subject)
    relationship: str  # the code, e.g. HSIB; for a child, what the subject is to it (MTH)
    via: str  # RelatedPerson/id


@dataclass(frozen=True, slots=True)
class Family:
    """What the summary of one child found; `not_brought` holds the child's was-not-brought
    flags of any status but entered-in-error, `organizations` names by `Organization/id`."""

    child: Held
    base: str
    related_persons: tuple[Held, ...] = ()
    flags: tuple[Held, ...] = ()
    conditions: tuple[Held, ...] = ()
    relatives: tuple[Relative, ...] = ()
    relative_flags: tuple[Held, ...] = ()
    not_brought: tuple[Held, ...] = ()
    organizations: Mapping[str, str] = field(default_factory=dict)
    cut_short: tuple[str, ...] = ()  # searches that hit the row limit
    districts: Mapping[str, str] = field(default_factory=dict)  # Organization -> its district
    care_teams: tuple[Held, ...] = ()  # the child's active CareTeams
    teams_seen: bool = True  # False when the caller may not read CareTeams at all


@dataclass(frozen=True, slots=True)
class Limits:
    """When was-not-brought flags become a warning: `threshold` within `window_days`."""

    threshold: int
    window_days: int
    today: date


@dataclass(frozen=True, slots=True)
class Finding:
    """One warning: its code, its sentence, and the references of the resources at issue."""

    code: str
    text: str
    about: tuple[str, ...] = ()


def role_codes(related_person: dict[str, Any]) -> list[str]:
    """The v3-RoleCode codes of a RelatedPerson's relationship."""
    found = []
    for concept in _list(related_person.get("relationship")):
        for coding in _list(concept.get("coding")):
            if coding.get("system") == ROLE_CODE and isinstance(coding.get("code"), str):
                found.append(coding["code"])
    return found


def kinship(related_person: dict[str, Any]) -> tuple[str, str] | None:
    """("parent" or "sibling", the code) of a RelatedPerson, None for other relationships."""
    for code in role_codes(related_person):
        if code in PARENTS:
            return "parent", code
        if code in SIBLINGS:
            return "sibling", code
    return None


def carer_code(related_person: dict[str, Any]) -> str | None:
    """The code by which a RelatedPerson makes its person the patient's parent or carer."""
    for concept in _list(related_person.get("relationship")):
        for coding in _list(concept.get("coding")):
            if coding.get("code") in CARERS.get(str(coding.get("system")), ()):
                return str(coding["code"])
    return None


def identifier_values(resource: dict[str, Any], system: str) -> list[str]:
    """The values of a resource's identifiers in `system`."""
    return [
        identifier["value"]
        for identifier in _list(resource.get("identifier"))
        if identifier.get("system") == system and isinstance(identifier.get("value"), str)
    ]


def recording_organization(condition: dict[str, Any], vocabulary: Vocabulary, base: str) -> Any:
    """`Organization/id` (or the reference as written) of the recording-organization extension."""
    value = vocabulary.recorded_by(condition)
    found = target_id(value, "Organization", base)
    if found is not None:
        return f"Organization/{found}"
    return value.get("reference") if isinstance(value, dict) else None


def _list(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def label(patient: Held) -> str:
    """`Amy Smith (Patient/1)`, or the bare reference without a name."""
    for name in _list(patient.resource.get("name")):
        given = [g for g in name.get("given") or [] if isinstance(g, str)]
        parts = [*given, name["family"]] if isinstance(name.get("family"), str) else given
        text = name.get("text") if isinstance(name.get("text"), str) else " ".join(parts)
        if text:
            return f"{text} ({patient.reference})"
    return patient.reference


def start_of(flag: Held) -> str:
    period = flag.resource.get("period")
    start = period.get("start") if isinstance(period, dict) else None
    return start if isinstance(start, str) else "an unrecorded date"


def _start_date(flag: Held) -> date | None:
    """The first day of period.start, which may be a year or a year-month (FHIR dateTime)."""
    start = start_of(flag)[:10]
    try:
        return date.fromisoformat(start + {4: "-01-01", 7: "-01"}.get(len(start), ""))
    except ValueError:
        return None


def recorder(family: Family, flag: Held) -> str:
    """Who recorded a flag: its author Organization's name, else the author as written."""
    author = flag.resource.get("author")
    if not isinstance(author, dict):
        return "an unrecorded author"
    org_id = target_id(author, "Organization", family.base)
    name = family.organizations.get(f"Organization/{org_id}") if org_id else None
    if name:
        return f"{name} (Organization/{org_id})"
    written = author.get("display") or author.get("reference")
    return str(written) if written else "an unrecorded author"


def of_type(vocabulary: Vocabulary, flags: Sequence[Held], types: Sequence[str]) -> list[Held]:
    return [f for f in flags if vocabulary.flag_type(f.resource.get("code")) in types]


def kind_of(vocabulary: Vocabulary, flag: Held) -> str:
    """The display of a flag's type."""
    flag_type = vocabulary.flag_type(flag.resource.get("code"))
    return next((c.display for c in vocabulary.flag_types if c.code == flag_type), "flag")


def flags_of(family: Family, patient_id: str) -> list[Held]:
    return [
        flag
        for flag in family.relative_flags
        if target_id(flag.resource.get("subject"), "Patient", family.base) == patient_id
    ]


def no_father(family: Family) -> list[Finding]:
    """`no-father-recorded`: none of the child's RelatedPersons has a father code."""
    if any(FATHERS & set(role_codes(rp.resource)) for rp in family.related_persons):
        return []
    text = (
        f"No father is recorded for {label(family.child)}: none of its "
        f"{len(family.related_persons)} RelatedPerson records has a father relationship "
        f"(FTH, NFTH or STPFTH)."
    )
    return [Finding(NO_FATHER, text, (family.child.reference,))]


def father_not_identified(family: Family) -> list[Finding]:
    """`father-not-identified`: a father RelatedPerson carries no identifier at all."""
    return [
        Finding(
            FATHER_NOT_IDENTIFIED,
            f"{rp.reference} is recorded as the father of {label(family.child)} but carries "
            f"no identifier, so he cannot be linked to his own record.",
            (rp.reference,),
        )
        for rp in family.related_persons
        if FATHERS & set(role_codes(rp.resource)) and not _list(rp.resource.get("identifier"))
    ]


def home_education(family: Family, vocabulary: Vocabulary) -> list[Finding]:
    """`elective-home-education`: an active elective-home-education flag on the child."""
    return [
        Finding(
            HOME_EDUCATION,
            f"{label(family.child)} is electively home educated since {start_of(flag)} "
            f"({flag.reference}, recorded by {recorder(family, flag)}): no statutory agency "
            f"is required to visit the home.",
            (flag.reference,),
        )
        for flag in of_type(vocabulary, family.flags, [codes.ELECTIVE_HOME_EDUCATION])
    ]


def not_brought(family: Family, vocabulary: Vocabulary, limits: Limits) -> list[Finding]:
    """`repeated-was-not-brought`: `threshold` or more was-not-brought flags started within
    the window, or one or more while the child has a protection plan or is looked after."""
    since = limits.today - timedelta(days=limits.window_days)
    recent = sorted(
        (f for f in family.not_brought if (_start_date(f) or date.min) >= since),
        key=lambda f: start_of(f),
    )
    protected = of_type(vocabulary, family.flags, PROTECTED)
    if not recent or (len(recent) < limits.threshold and not protected):
        return []
    episodes = "; ".join(
        f"{f.reference} on {start_of(f)}, recorded by {recorder(family, f)}" for f in recent
    )
    text = (
        f"{label(family.child)} was not brought to {len(recent)} appointment"
        f"{'' if len(recent) == 1 else 's'} in the last {limits.window_days} days ({episodes})"
    )
    if protected:
        states = " and ".join(
            f"the flag '{kind_of(vocabulary, f)}' ({f.reference})" for f in protected
        )
        text += f", while {states} {'is' if len(protected) == 1 else 'are'} active on the child"
    about = (*(f.reference for f in recent), family.child.reference)
    return [Finding(NOT_BROUGHT, text + ".", about)]


def sibling_plan(family: Family, vocabulary: Vocabulary) -> list[Finding]:
    """`sibling-subject-to-plan`: a linked sibling has an active (unborn) protection plan."""
    found = []
    for relative in family.relatives:
        if relative.kind != "sibling":
            continue
        for flag in of_type(vocabulary, flags_of(family, relative.patient.logical_id), PLANS):
            text = (
                f"{label(relative.patient)}, a sibling ({relative.relationship}) of "
                f"{label(family.child)}, has an active flag '{kind_of(vocabulary, flag)}' since "
                f"{start_of(flag)} "
                f"({flag.reference}, recorded by {recorder(family, flag)})."
            )
            found.append(Finding(SIBLING_PLAN, text, (relative.patient.reference, flag.reference)))
    return found


def multiple_services(family: Family, vocabulary: Vocabulary) -> list[Finding]:
    """`multiple-services-same-condition`: one condition code recorded on the child by two or
    more Organizations."""
    groups: dict[tuple[Any, Any], dict[str, list[Held]]] = {}
    labels: dict[tuple[Any, Any], str] = {}
    for condition in family.conditions:
        organization = recording_organization(condition.resource, vocabulary, family.base)
        if organization is None:
            continue
        concept = condition.resource.get("code")
        for coding in _list(concept.get("coding") if isinstance(concept, dict) else None):
            key = (coding.get("system"), coding.get("code"))
            if not all(isinstance(part, str) and part for part in key):
                continue  # a coding without a system and code names no condition to compare
            groups.setdefault(key, {}).setdefault(organization, []).append(condition)
            labels.setdefault(key, str(coding.get("display") or f"{key[0]}|{key[1]}"))
    found, seen = [], set()
    for key, by_organization in groups.items():
        conditions = tuple(c.reference for held in by_organization.values() for c in held)
        if len(by_organization) < 2 or frozenset(conditions) in seen:
            continue
        seen.add(frozenset(conditions))
        services = "; ".join(
            f"{_organization(family, org)} ({', '.join(c.reference for c in held)})"
            for org, held in by_organization.items()
        )
        text = (
            f"'{labels[key]}' ({key[0]}|{key[1]}) is recorded on {label(family.child)} by "
            f"{len(by_organization)} organisations: {services}. Confirm which service leads."
        )
        found.append(Finding(MULTIPLE_SERVICES, text, conditions))
    return found


def _organization(family: Family, reference: str) -> str:
    name = family.organizations.get(reference)
    return f"{name} ({reference})" if name else reference


def household_risk(family: Family, vocabulary: Vocabulary) -> list[Finding]:
    """`household-risk`: a household-risk flag on a linked parent's record or the child's."""
    child = label(family.child)
    holders: list[tuple[Sequence[Held], str]] = [
        (family.flags, f"the child's own record ({child})")
    ]
    holders += [
        (
            flags_of(family, r.patient.logical_id),
            f"the record of {label(r.patient)}, a parent ({r.relationship}) of {child}",
        )
        for r in family.relatives
        if r.kind == "parent"
    ]
    return [
        Finding(
            HOUSEHOLD_RISK,
            f"'{kind_of(vocabulary, flag)}' is recorded on {where} since {start_of(flag)} "
            f"({flag.reference}, recorded by {recorder(family, flag)}).",
            (flag.reference,),
        )
        for flags, where in holders
        for flag in of_type(vocabulary, flags, codes.HOUSEHOLD_RISKS)
    ]


def incomplete(family: Family) -> list[Finding]:
    """`summary-incomplete`: a search met the row limit, so the summary may miss records."""
    return [
        Finding(
            INCOMPLETE,
            f"The summary may be incomplete: {what} met the limit of rows one summary reads.",
        )
        for what in family.cut_short
    ]
