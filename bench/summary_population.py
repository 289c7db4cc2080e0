"""The population `bench.summary` loads: many ordinary families, and some families of 8 with
40 flags whose summaries are timed. Seeded; NHS numbers dense in the 999 test range."""

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.flags import codes
from app.flags.codes import Vocabulary
from tests import factories as f

ORGANISATIONS = 20
SNOMED_TYPES = {  # project flag type -> its confirmed SNOMED code
    codes.CHILD_PROTECTION_PLAN: "342191000000101",
    codes.LOOKED_AFTER_CHILD: "764841000000100",
    "safeguarding-concern": "836881000000105",
}
CHILD_TYPES = (
    "safeguarding-concern",
    codes.WAS_NOT_BROUGHT,
    "neglect-concern",
    "young-carer",
    "child-in-need",
)
PARENT_TYPES = codes.HOUSEHOLD_RISKS


@dataclass(slots=True)
class Numbers:
    """Valid NHS numbers in the 999 range, handed out in order."""

    serial: int = 0

    def next(self) -> str:
        """The next unused NHS number."""
        number = f.nhs_number(self.serial)
        self.serial = int(number[3:9]) + 1
        return number


@dataclass(slots=True)
class Builder:
    """Writes one family's resources, with ids of its own."""

    vocabulary: Vocabulary
    rng: random.Random
    numbers: Numbers
    prefix: str
    resources: list[dict[str, Any]] = field(default_factory=list)
    people: int = 0
    records: int = 0  # flags and conditions written so far, for their ids

    def patient(self, role: str, gender: str, born: str) -> tuple[str, str]:
        """A Patient with an NHS number: (reference, NHS number)."""
        nhs = self.numbers.next()
        resource = f.patient(nhs=nhs, given=role.title(), gender=gender, birth_date=born)
        resource["id"] = f"{self.prefix}-{role}"
        self.resources.append(resource)
        return f"Patient/{resource['id']}", nhs

    def relative(self, child: str, relationship: str, nhs: str | None) -> None:
        """A RelatedPerson on the child's record."""
        self.people += 1
        resource = f.related_person(patient=child, relationship=relationship, nhs=nhs)
        resource["id"] = f"{self.prefix}-rp{self.people}"
        self.resources.append(resource)

    def flags(self, subject: str, kinds: tuple[str, ...], count: int) -> None:
        """`count` safeguarding flags of the given kinds on `subject`, most of them active."""
        for n in range(count):
            kind = kinds[n % len(kinds)]
            coding = (
                {"system": f.SNOMED, "code": SNOMED_TYPES[kind]}
                if kind in SNOMED_TYPES
                else {"system": self.vocabulary.flag_type_system, "code": kind}
            )
            flag = f.safeguarding_flag(
                subject=subject,
                author=_organisation(self.rng),
                start=f"2026-{1 + n % 9:02d}-{1 + n % 27:02d}",
            )
            flag["code"] = {"coding": [coding]}
            self.records += 1
            flag["id"] = f"{self.prefix}-r{self.records}"
            if kind not in codes.ONE_ACTIVE_PER_CHILD and self.rng.random() < 0.2:
                flag["status"] = "inactive"
                flag["period"]["end"] = "2026-10-31"
                flag["extension"] = _removal(self.vocabulary)
            self.resources.append(flag)

    def conditions(self, subject: str, count: int) -> None:
        """`count` Conditions on `subject`, each recorded by an organisation."""
        for _ in range(count):
            condition = f.condition(subject=subject)
            self.records += 1
            condition["id"] = f"{self.prefix}-r{self.records}"
            url = self.vocabulary.recording_organization_extension
            condition["extension"] = [
                {"url": url, "valueReference": {"reference": _organisation(self.rng)}}
            ]
            self.resources.append(condition)


def _organisation(rng: random.Random) -> str:
    return f"Organization/bench-org-{rng.randrange(ORGANISATIONS)}"


def _removal(vocabulary: Vocabulary) -> list[dict[str, Any]]:
    coding = {"system": vocabulary.removal_reason_system, "code": "plan-ended"}
    return [
        {"url": vocabulary.removal_reason_extension, "valueCodeableConcept": {"coding": [coding]}}
    ]


def organisations() -> list[dict[str, Any]]:
    """The councils and services every flag and condition names."""
    found = []
    for n in range(ORGANISATIONS):
        organisation = f.organization(ods=f"BO{n:03d}", name=f"Bench Service {n}")
        found.append(organisation | {"id": f"bench-org-{n}"})
    return found


def ordinary_family(builder: Builder) -> None:
    """A mother, sometimes a father, 1-3 children, a few flags and conditions."""
    mother, mother_nhs = builder.patient("mother", "female", "1990-05-01")
    father = builder.patient("father", "male", "1988-02-01") if builder.rng.random() < 0.7 else None
    children = [
        builder.patient(f"child{n}", "female", f"201{n}-03-01")
        for n in range(builder.rng.randint(1, 3))
    ]
    for child, _ in children:
        builder.relative(child, "MTH", mother_nhs)
        if father is not None:
            builder.relative(child, "FTH", father[1])
        for sibling, sibling_nhs in children:
            if sibling != child:
                builder.relative(child, "SIB", sibling_nhs)
        builder.flags(child, CHILD_TYPES, builder.rng.randint(0, 3))
        builder.conditions(child, builder.rng.randint(0, 2))
    if builder.rng.random() < 0.2:
        builder.flags(mother, PARENT_TYPES, 1)


def family_of_eight(builder: Builder) -> str:
    """Child, 3 siblings, a half-sibling, mother, father, the half-sibling's mother: 8
    Patients and 40 flags (12 on the child); the child's reference."""
    mother, mother_nhs = builder.patient("mother", "female", "1985-05-01")
    father, father_nhs = builder.patient("father", "male", "1983-02-01")
    other_mother, _ = builder.patient("othermother", "female", "1987-07-01")
    child, _ = builder.patient("child", "female", "2016-03-01")
    siblings = [builder.patient(f"sib{n}", "male", f"201{n}-06-01") for n in range(3)]
    half, half_nhs = builder.patient("half", "male", "2018-09-01")
    relatives = [("MTH", mother_nhs), ("FTH", father_nhs), ("HSIB", half_nhs)]
    for relationship, nhs in [*relatives, *(("SIB", s[1]) for s in siblings)]:
        builder.relative(child, relationship, nhs)
    builder.relative(half, "FTH", father_nhs)
    builder.flags(child, (codes.CHILD_PROTECTION_PLAN,), 1)  # one plan at most per child
    builder.flags(child, CHILD_TYPES, 11)
    for sibling, _ in siblings:
        builder.flags(sibling, CHILD_TYPES, 6)
    builder.flags(half, (codes.CHILD_PROTECTION_PLAN,), 1)
    builder.flags(half, CHILD_TYPES, 3)
    for parent in (mother, father, other_mother):
        builder.flags(parent, PARENT_TYPES, 2)
    builder.conditions(child, 3)
    return child


def population(
    families: int, targets: int, seed: int, vocabulary: Vocabulary
) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """The timed children's references, and every resource to load (organisations first)."""
    rng, numbers = random.Random(seed), Numbers()
    timed = [f"Patient/bench-t{n}-child" for n in range(targets)]

    def resources() -> Iterator[dict[str, Any]]:
        yield from organisations()
        for n in range(families):
            target = n < targets
            builder = Builder(vocabulary, rng, numbers, f"bench-{'t' if target else 'f'}{n}")
            family_of_eight(builder) if target else ordinary_family(builder)
            yield from builder.resources

    return timed, resources()
