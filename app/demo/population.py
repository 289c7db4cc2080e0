"""A synthetic, reproducible demo population: the same arguments give the same resources.

`population` yields the shared Organizations (each locality's council, hospital trust,
community health service and GP practices), then one list of resources per family (Patients
first): children, their parents and siblings (`demo_families`), a RelatedPerson on each child for
each relative, safeguarding Flags and Conditions. Ids are fixed (`demo-<seed>-<family>-<person>`,
Organizations `demo-org-<ods>`), references are `Type/id`, NHS numbers are valid and unique in
the 999 test range. Dates count back from a reference date fixed by the seed, save the recent
was-not-brought episodes, which count back from `today` so the demo always shows them.

Organization.type codes (http://terminology.hl7.org/CodeSystem/organization-type): `govt` for
a council (with its ONS GSS code), `prov` for an NHS provider; `type.text` names the kind.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from app.demo.care_teams import care_teams
from app.demo.families import (
    HUB,
    LOCALITIES,
    MAX_FAMILIES,
    YEAR,
    FamilyPlan,
    Household,
    Person,
    Service,
    coded,
    plan_family,
    relationship,
)
from app.flags import codes
from app.flags.codes import SNOMED, Vocabulary
from app.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM

Family = list[dict[str, Any]]  # one transaction's worth of resources, Patients first

ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
MAX_SEED = 999_999_999  # ids stay well within FHIR's 64 characters
ROLES = {
    "FTH": "father",
    "NFTH": "natural father",
    "STPFTH": "stepfather",
    "MTH": "mother",
    "NMTH": "natural mother",
    "STPMTH": "stepmother",
    "SIB": "sibling",
    "NSIB": "natural sibling",
    "HSIB": "half-sibling",
    "HBRO": "half-brother",
    "HSIS": "half-sister",
    "STPSIB": "step sibling",
}
CONSTIPATION = ("14760008", "Constipation")
CHILD_CONDITIONS = (
    ("195967001", "Asthma"),
    ("43116000", "Eczema"),
    ("84757009", "Epilepsy"),
    ("414916001", "Obesity"),
)


@dataclass(frozen=True, slots=True)
class FlagSpec:
    """A Flag to write; ended (inactive) when `end` is set, for `reason`."""

    subject: Person
    code: str
    author: Service
    start: date
    end: date | None = None
    reason: str = "plan-ended"


@dataclass(frozen=True, slots=True)
class ConditionSpec:
    """A Condition one service recorded."""

    subject: Person
    code: tuple[str, str]
    recorder: Service
    recorded: date


def reference_date(seed: int) -> date:
    """The date the population's history counts back from, fixed by the seed."""
    return date(2026, 1, 1) - timedelta(days=seed % 366)


def population(families: int, seed: int, vocabulary: Vocabulary, today: date) -> Iterator[Family]:
    """The shared Organizations, then each of `families` families' resources."""
    if not 0 <= families <= MAX_FAMILIES:
        raise ValueError(f"families must be between 0 and {MAX_FAMILIES}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}")
    if today < reference_date(seed):
        raise ValueError(f"today must not be before {reference_date(seed)}")
    yield organisations(vocabulary)
    for number in range(families):
        yield family(number, seed, vocabulary, today)


def org_id(service: Service) -> str:
    """The fixed id of an organisation's resource (the same for every seed)."""
    return f"demo-org-{service.ods.lower()}"


def _org_ref(service: Service) -> dict[str, str]:
    return {"reference": f"Organization/{org_id(service)}"}


def organisations(vocabulary: Vocabulary) -> Family:
    """Every locality's council, hospital trust, community service and GP practices."""
    found: Family = []
    for place in LOCALITIES:
        where = (place.towns[0], place.district)
        council = _organisation(place.council, "govt", "Local authority", *where)
        council["identifier"].append({"system": vocabulary.gss_system, "value": place.gss})
        found.append(council)
        found.append(_organisation(place.hospital, "prov", "NHS trust", *where))
        found.append(_organisation(place.community, "prov", "Community health service", *where))
        found.extend(
            _organisation(practice, "prov", "GP practice", *where) for practice in place.practices
        )
    place = LOCALITIES[0]
    found.append(_organisation(HUB, "other", "Information sharing hub", place.towns[0], "North"))
    return found


def _organisation(service: Service, kind: str, text: str, town: str, district: str) -> Any:
    display = {"govt": "Government", "prov": "Healthcare Provider", "other": "Other"}[kind]
    coding = {"system": ORG_TYPE, "code": kind, "display": display}
    return {
        "resourceType": "Organization",
        "id": org_id(service),
        "identifier": [{"system": ODS_SYSTEM, "value": service.ods}],
        "active": True,
        "type": [{"coding": [coding], "text": text}],
        "name": service.name,
        "address": [{"city": town, "district": district, "country": "GB"}],
    }


def family(number: int, seed: int, vocabulary: Vocabulary, today: date) -> Family:
    """Family `number` of the population: Patients, RelatedPersons, Flags, Conditions."""
    rng = random.Random(f"safeguard-demo:{seed}:{number}")  # noqa: S311 (reproducible, not secret)
    reference = reference_date(seed)
    plan = plan_family(number, seed, rng, reference)
    records = [person for person in plan.people if person.record]
    render = Renderer(f"demo-{seed}-{number}", vocabulary)
    resources = [render.patient(person) for person in records]
    resources.extend(_relatives(plan, rng, render))
    flag_specs = [
        *_home_education(plan, rng, reference),
        *_was_not_brought(plan, rng, reference, today),
        *_protection_plans(plan, rng, reference),
        *_looked_after(plan, rng, reference),
        *_household_risks(plan, rng, reference),
    ]
    resources.extend(render.flag(spec) for spec in flag_specs)
    condition_specs = _conditions(plan, rng, reference)
    resources.extend(render.condition(spec) for spec in condition_specs)
    involved = [(s.subject, s.author) for s in flag_specs if s.end is None]
    involved += [(s.subject, s.recorder) for s in condition_specs]
    resources.extend(care_teams(plan, render.prefix, involved, vocabulary, reference))
    return resources


def _relatives(plan: FamilyPlan, rng: random.Random, render: "Renderer") -> Iterator[Any]:
    """A RelatedPerson on each child for each relative a service would record."""
    for child in plan.children:
        for other in plan.people:
            relation = None if other is child else relationship(child, other)
            if relation is not None:
                yield render.related(child, other, coded(relation, other, rng))


class Renderer:
    """Turns a family's people and specs into FHIR resources with ids under `prefix`."""

    def __init__(self, prefix: str, vocabulary: Vocabulary) -> None:
        self.prefix, self.vocabulary = prefix, vocabulary
        self.concepts = {concept.code: concept for concept in vocabulary.flag_types}
        self.serials: dict[str, int] = {}

    def _id(self, person: Person, kind: str) -> str:
        key = f"{person.key}-{kind}"
        self.serials[key] = self.serials.get(key, 0) + 1
        return f"{self.prefix}-{key}-{self.serials[key]}"

    def ref(self, person: Person) -> dict[str, str]:
        """A reference to a person's Patient."""
        return {"reference": f"Patient/{self.prefix}-{person.key}"}

    def patient(self, person: Person) -> Any:
        """A person's own Patient record."""
        assert person.home is not None and person.nhs
        return {
            "resourceType": "Patient",
            "id": f"{self.prefix}-{person.key}",
            "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": person.nhs}],
            "active": True,
            "name": [{"use": "official", "family": person.surname, "given": [person.given]}],
            "gender": person.gender,
            "birthDate": person.born.isoformat(),
            "address": [_address(person.home)],
            "generalPractitioner": [_org_ref(person.home.practice)],
        } | (self._responsible(person) if person.is_child else {})

    def _responsible(self, child: Person) -> dict[str, Any]:
        """The child's council, named in the responsible-local-authority extension."""
        url = self.vocabulary.responsible_local_authority_extension
        return {"extension": [{"url": url, "valueReference": _org_ref(_council(child))}]}

    def related(self, child: Person, other: Person, code: str) -> Any:
        """`other` as a RelatedPerson of `child`, with their NHS number if they have a record."""
        resource: dict[str, Any] = {
            "resourceType": "RelatedPerson",
            "id": f"{self.prefix}-{child.key}-rp-{other.key}",
        }
        if other.record:
            resource["identifier"] = [{"system": NHS_NUMBER_SYSTEM, "value": other.nhs}]
        resource |= {
            "active": True,
            "patient": self.ref(child),
            "relationship": [{"coding": [{"system": ROLE, "code": code, "display": ROLES[code]}]}],
            "name": [{"family": other.surname, "given": [other.given]}],
            "gender": other.gender,
            "birthDate": other.born.isoformat(),
        }
        if other.home is not None:
            resource["address"] = [_address(other.home)]
        return resource

    def flag(self, spec: FlagSpec) -> Any:
        """A safeguarding Flag; an ended one is inactive and says why."""
        concept, vocabulary = self.concepts[spec.code], self.vocabulary
        display = concept.display
        own = {"system": vocabulary.flag_type_system, "code": concept.code, "display": display}
        codings = [own]
        if concept.snomed is not None:
            snomed_display = concept.snomed_display or display
            codings.append({"system": SNOMED, "code": concept.snomed, "display": snomed_display})
        resource: dict[str, Any] = {"resourceType": "Flag", "id": self._id(spec.subject, "flag")}
        period = {"start": spec.start.isoformat()}
        if spec.end is not None:
            period["end"] = spec.end.isoformat()
            reason = {"coding": [{"system": vocabulary.removal_reason_system, "code": spec.reason}]}
            url = vocabulary.removal_reason_extension
            resource["extension"] = [{"url": url, "valueCodeableConcept": reason}]
        safety = {"system": codes.FLAG_CATEGORY, "code": codes.SAFETY, "display": "Safety"}
        return resource | {
            "status": "active" if spec.end is None else "inactive",
            "category": [{"coding": [safety]}],
            "code": {"coding": codings, "text": display},
            "subject": self.ref(spec.subject),
            "period": period,
            "author": _org_ref(spec.author),
        }

    def condition(self, spec: ConditionSpec) -> Any:
        """A Condition, naming the service that recorded it in an extension."""
        code, display = spec.code
        url = self.vocabulary.recording_organization_extension
        coding = {"system": SNOMED, "code": code, "display": display}
        return {
            "resourceType": "Condition",
            "id": self._id(spec.subject, "condition"),
            "extension": [{"url": url, "valueReference": _org_ref(spec.recorder)}],
            "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
            "code": {"coding": [coding], "text": display},
            "subject": self.ref(spec.subject),
            "recordedDate": spec.recorded.isoformat(),
        }


def _address(home: Household) -> dict[str, Any]:
    return {
        "use": "home",
        "line": [home.line],
        "city": home.town,
        "district": home.locality.district,
        "postalCode": home.postcode,
        "country": "GB",
    }


def _days_before(moment: date, rng: random.Random, fewest: int, most: int) -> date:
    return moment - timedelta(days=rng.randint(fewest, most))


def _council(person: Person) -> Service:
    assert person.home is not None
    return person.home.locality.council


def _home_education(plan: FamilyPlan, rng: random.Random, reference: date) -> list[FlagSpec]:
    """Every fourth family (and a few more): a school-age child educated at home, sometimes
    (every eighth family when the child is old enough) after an earlier spell that ended when
    the child went back to school."""
    if plan.number % 4 != 1 and rng.random() >= 0.08:
        return []
    child = rng.choice([c for c in plan.children if (reference - c.born).days >= 5 * YEAR])
    school_age = child.born + timedelta(days=5 * YEAR)
    start = max(school_age, _days_before(reference, rng, 30, 700))
    kind, council = codes.ELECTIVE_HOME_EDUCATION, _council(child)
    specs = [FlagSpec(child, kind, council, start)]
    earlier = _days_before(start, rng, 300, 500)
    if (plan.number % 8 == 1 or rng.random() < 0.4) and earlier > school_age:
        back_to_school = earlier + timedelta(days=rng.randint(60, 250))
        ended = FlagSpec(child, kind, council, earlier, back_to_school, "no-longer-applicable")
        specs.append(ended)
    return specs


def _services(child: Person) -> list[Service]:
    assert child.home is not None
    place = child.home.locality
    return [place.hospital, place.community, child.home.practice]


def _was_not_brought(
    plan: FamilyPlan, rng: random.Random, reference: date, today: date
) -> list[FlagSpec]:
    """Every third family (and some more): a child not brought to two or three appointments
    at different services in the last weeks before `today`; others, an old episode."""
    child = rng.choice(plan.children)
    services = _services(child)
    rng.shuffle(services)
    earliest = child.born + timedelta(days=14)
    old = max(earliest, _days_before(reference, rng, 200, 900))
    reviewed = min(reference, old + timedelta(days=rng.randint(14, 90)))
    ended = FlagSpec(
        child, codes.WAS_NOT_BROUGHT, services[0], old, reviewed, "no-longer-applicable"
    )
    if plan.number % 3 != 0 and rng.random() >= 0.15:
        return [ended] if rng.random() < 0.25 else []
    recent = []
    for service in services[: rng.randint(2, 3)]:
        appointment = max(earliest, _days_before(today, rng, 3, 80))
        recent.append(FlagSpec(child, codes.WAS_NOT_BROUGHT, service, appointment))
    return [*recent, ended] if rng.random() < 0.5 else recent


def _protection_plans(plan: FamilyPlan, rng: random.Random, reference: date) -> list[FlagSpec]:
    """Families 2 and 5 of every 6: a plan for every child of one home, or an ended plan."""
    cycle = plan.number % 6
    if cycle == 2:
        home, plans = plan.children[0].home, []
        for child in (c for c in plan.children if c.home is home):
            start = max(child.born + timedelta(days=30), _days_before(reference, rng, 20, 400))
            plans.append(FlagSpec(child, codes.CHILD_PROTECTION_PLAN, _council(child), start))
        return plans
    if cycle != 5:
        return []
    eldest = plan.children[0]  # of school age: born more than 1,200 days before reference
    start = _days_before(reference, rng, 400, 1200)
    end = start + timedelta(days=rng.randint(180, 390))
    return [FlagSpec(eldest, codes.CHILD_PROTECTION_PLAN, _council(eldest), start, end)]


def _looked_after(plan: FamilyPlan, rng: random.Random, reference: date) -> list[FlagSpec]:
    """One family in seven: a child looked after by the council."""
    if plan.number % 7 != 4:
        return []
    child = rng.choice(plan.children)
    start = max(child.born + timedelta(days=30), _days_before(reference, rng, 30, 900))
    return [FlagSpec(child, codes.LOOKED_AFTER_CHILD, _council(child), start)]


def _household_risks(plan: FamilyPlan, rng: random.Random, reference: date) -> list[FlagSpec]:
    """One family in four (and a few more): a risk on the mother's record, and sometimes
    substance misuse on the father's; a few risks have since ended."""
    if plan.number % 4 != 3 and rng.random() >= 0.1:
        return []
    parents = [p for p in plan.people if p.record and not p.is_child]
    mother, father = parents[0], next((p for p in parents if p.gender == "male"), None)
    specs = [_risk(mother, rng.choice(codes.HOUSEHOLD_RISKS), rng, reference)]
    if father is not None and rng.random() < 0.5:
        specs.append(_risk(father, codes.PARENTAL_SUBSTANCE_MISUSE, rng, reference))
    return specs


def _risk(parent: Person, code: str, rng: random.Random, reference: date) -> FlagSpec:
    assert parent.home is not None
    home = parent.home
    author = {
        codes.DOMESTIC_ABUSE: home.locality.council,
        codes.PARENTAL_MENTAL_HEALTH: home.practice,
        codes.PARENTAL_SUBSTANCE_MISUSE: home.locality.community,
    }[code]
    start = _days_before(reference, rng, 60, 1500)
    if rng.random() < 0.25:
        end = start + timedelta(days=rng.randint(30, 59))
        return FlagSpec(parent, code, author, start, end, "no-longer-applicable")
    return FlagSpec(parent, code, author, start)


def _conditions(plan: FamilyPlan, rng: random.Random, reference: date) -> list[ConditionSpec]:
    """Some children's conditions, recorded by their practice; in every third family (and a
    few more) one child's constipation recorded by two or three services."""
    specs = []
    for child in plan.children:
        if rng.random() < 0.35:
            recorded = max(child.born, _days_before(reference, rng, 10, 1500))
            assert child.home is not None
            code = rng.choice(CHILD_CONDITIONS)
            specs.append(ConditionSpec(child, code, child.home.practice, recorded))
    if plan.number % 3 == 1 or rng.random() < 0.1:
        child = rng.choice(plan.children)
        services = _services(child)[::-1][: rng.randint(2, 3)]  # practice, community, hospital
        for service in services:
            recorded = max(child.born, _days_before(reference, rng, 10, 400))
            specs.append(ConditionSpec(child, CONSTIPATION, service, recorded))
    return specs
