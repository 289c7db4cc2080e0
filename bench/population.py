"""A deterministic synthetic population of children with safeguarding Flags, for `search_volume`.

`plan` draws the population from a seed as small records (ids, NHS numbers, names, each
Flag's code and status), so the bench knows what every search should find; `resources`
turns a plan into FHIR resources one at a time, ids included, references already consistent.
Per child: a Patient, 1-5 Flags (3 on average), a Condition and 2 RelatedPersons; plus
~300 Organizations that author the Flags. NHS numbers are valid ones in the 999 test range.
"""

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

SEED = 20260101
NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
SNOMED = "http://snomed.info/sct"
PROJECT = "https://fhir.safeguard.example/CodeSystem/safeguarding-flag"
ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# (system, code, display, weight): how often a Flag carries the code.
FLAG_CODES = (
    (SNOMED, "342191000000101", "Child protection plan", 12),
    (SNOMED, "818901000000100", "Unborn child protection plan", 2),
    (SNOMED, "764841000000100", "Looked after child", 10),
    (SNOMED, "836881000000105", "Safeguarding concern", 20),
    (PROJECT, "child-in-need", "Child in need", 14),
    (PROJECT, "elective-home-education", "Elective home education", 5),
    (PROJECT, "was-not-brought", "Was not brought to appointment", 12),
    (PROJECT, "missing-from-education", "Missing from education", 4),
    (PROJECT, "young-carer", "Young carer", 5),
    (PROJECT, "private-fostering", "Private fostering arrangement", 1),
    (PROJECT, "exploitation-risk", "Risk of child exploitation", 4),
    (PROJECT, "domestic-abuse", "Domestic abuse in household", 7),
    (PROJECT, "fgm-risk", "Risk of female genital mutilation", 1),
    (PROJECT, "missing-episode", "Missing episode", 2),
    (PROJECT, "special-guardianship", "Special guardianship order", 1),
)
STATUSES, STATUS_WEIGHTS = ("active", "inactive", "entered-in-error"), (80, 17, 3)
CONDITIONS = (
    ("195967001", "Asthma"),
    ("43116000", "Eczema"),
    ("406506008", "Attention deficit hyperactivity disorder"),
    ("35919005", "Pervasive developmental disorder"),
    ("84757009", "Epilepsy"),
    ("46635009", "Diabetes mellitus type 1"),
    ("14760008", "Constipation"),
    ("414916001", "Obesity"),
)
# Name tables, several entries to a line: formatted, each entry would take a line (160 in all).
# fmt: off
FAMILIES = (
    ("Smith", 60), ("Jones", 45), ("Williams", 35), ("Taylor", 30), ("Brown", 30),
    ("Davies", 25), ("Evans", 22), ("Wilson", 20), ("Thomas", 20), ("Johnson", 18),
    ("Roberts", 18), ("Robinson", 15), ("Thompson", 15), ("Wright", 15), ("Walker", 14),
    ("White", 14), ("Edwards", 13), ("Hughes", 13), ("Green", 12), ("Hall", 12),
    ("Lewis", 12), ("Harris", 12), ("Clarke", 11), ("Patel", 11), ("Jackson", 10),
    ("Wood", 10), ("Turner", 10), ("Martin", 10), ("Cooper", 9), ("Hill", 9), ("Ward", 9),
    ("Morris", 9), ("Moore", 9), ("Clark", 8), ("Lee", 8), ("King", 8), ("Baker", 8),
    ("Harrison", 8), ("Morgan", 8), ("Allen", 7), ("James", 7), ("Scott", 7), ("Phillips", 7),
    ("Watson", 7), ("Davis", 6), ("Parker", 6), ("Price", 6), ("Bennett", 6), ("Young", 6),
    ("Griffiths", 6), ("Mitchell", 6), ("Kelly", 6), ("Cook", 6), ("Carter", 6),
    ("Richardson", 5), ("Bailey", 5), ("Collins", 5), ("Bell", 5), ("Shaw", 5), ("Murphy", 5),
    ("Khan", 5), ("Ahmed", 5), ("Hussain", 5), ("Begum", 4), ("Ali", 4), ("Nowak", 3),
    ("Smart", 3), ("Small", 3), ("Smyth", 2), ("O'Brien", 3), ("Kowalski", 2), ("Okafor", 2),
)
GIVEN = {
    "female": ("Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Rosie",
               "Sophia", "Grace", "Freya", "Evie", "Poppy", "Ella", "Emily", "Sophie", "Chloe",
               "Aisha", "Maryam", "Zara", "Ruby", "Jessica", "Harper", "Willow"),
    "male": ("Noah", "Oliver", "George", "Arthur", "Muhammad", "Leo", "Harry", "Oscar",
             "Archie", "Henry", "Theo", "Freddie", "Jack", "Charlie", "Thomas", "Jacob",
             "Alfie", "Joshua", "James", "William", "Ethan", "Ibrahim", "Finley", "Lucas",
             "Mason"),
}
TOWNS = (
    ("Leeds", "LS"), ("Bradford", "BD"), ("Manchester", "M"), ("Liverpool", "L"),
    ("Sheffield", "S"), ("Birmingham", "B"), ("Bristol", "BS"), ("Newcastle upon Tyne", "NE"),
    ("Nottingham", "NG"), ("Leicester", "LE"), ("Coventry", "CV"), ("Hull", "HU"),
    ("Stoke-on-Trent", "ST"), ("Wolverhampton", "WV"), ("Plymouth", "PL"), ("Derby", "DE"),
    ("Southampton", "SO"), ("Norwich", "NR"), ("York", "YO"), ("Exeter", "EX"),
)
STREETS = ("Church Lane", "High Street", "Station Road", "Victoria Road", "Park Avenue",
           "Mill Lane", "Green Lane", "Manor Road", "Queen Street", "Albert Road", "The Crescent",
           "Oak Close", "Springfield Road", "Westfield Drive", "Kings Road")
# fmt: on
# (code, gender, share of children with such a relative beside their mother)
RELATIVES = (
    ("FTH", "male", 40),
    ("SIB", None, 15),
    ("HSIB", None, 8),
    ("NFTH", "male", 10),
    ("GRMTH", "female", 10),
    ("GRFTH", "male", 5),
    ("STPFTH", "male", 6),
    ("AUNT", "female", 3),
    ("UNCLE", "male", 3),
)
ORG_KINDS = (
    "Children's Social Care",
    "Surgery",
    "NHS Foundation Trust",
    "Health Visiting Team",
    "School Nursing Service",
    "Police Public Protection Unit",
)
EARLIEST_BIRTH, LATEST_BIRTH = date(2005, 1, 1), date(2025, 12, 31)
LATEST_FLAG = date(2026, 1, 31)


@dataclass(frozen=True, slots=True)
class FlagPlan:
    """One Flag: id, code index in `FLAG_CODES`, status, start date, authoring organisation."""

    id: str
    code: int
    status: str
    start: date
    author: int


@dataclass(frozen=True, slots=True)
class Child:
    """One Patient with what hangs off it."""

    id: str
    nhs: str
    family: str
    given: str
    gender: str
    birth_date: date
    seed: int  # for the details (address, relatives, condition) drawn while rendering: their ids
    flags: tuple[FlagPlan, ...]


@dataclass(frozen=True, slots=True)
class Population:
    """A planned population: organisation ids and children."""

    organisations: tuple[str, ...]
    children: tuple[Child, ...]

    def counts(self) -> dict[str, int]:
        """Resources per type."""
        n = len(self.children)
        return {
            "Organization": len(self.organisations),
            "Patient": n,
            "Flag": sum(len(c.flags) for c in self.children),
            "Condition": n,
            "RelatedPerson": 2 * n,
        }


def nhs_numbers(first_serial: int = 0) -> Iterator[str]:
    """Valid, distinct NHS numbers in the 999 test range (stems whose check digit is 10 skipped)."""
    for serial in range(first_serial, 1_000_000):
        stem = f"999{serial:06d}"
        total = sum(int(d) * w for d, w in zip(stem, range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check != 10:
            yield f"{stem}{check}"


def new_id(rng: random.Random) -> str:
    """A version-4 UUID drawn from the generator (so reproducible)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, max(0, (last - first).days)))


def _flags(rng: random.Random, born: date, organisations: int) -> tuple[FlagPlan, ...]:
    code_weights = [c[3] for c in FLAG_CODES]
    return tuple(
        FlagPlan(
            id=new_id(rng),
            code=rng.choices(range(len(FLAG_CODES)), code_weights)[0],
            status=rng.choices(STATUSES, STATUS_WEIGHTS)[0],
            start=_day(rng, born, LATEST_FLAG),
            author=rng.randrange(organisations),
        )
        for _ in range(rng.randint(1, 5))
    )


def plan(patients: int, seed: int = SEED, organisations: int = 300) -> Population:
    """Draw a population of `patients` children (at most ~900,000: the 999 range's size)."""
    rng = random.Random(seed)
    org_ids = tuple(new_id(rng) for _ in range(organisations))
    families, family_weights = zip(*FAMILIES, strict=True)
    numbers = nhs_numbers(rng.randrange(50_000))
    children = []
    for _ in range(patients):
        gender = rng.choices(("female", "male", "other", "unknown"), (49, 49, 1, 1))[0]
        born = _day(rng, EARLIEST_BIRTH, LATEST_BIRTH)
        names = GIVEN.get(gender) or GIVEN[rng.choice(("female", "male"))]
        children.append(
            Child(
                id=new_id(rng),
                nhs=next(numbers),
                family=rng.choices(families, family_weights)[0],
                given=rng.choice(names),
                gender=gender,
                birth_date=born,
                seed=rng.getrandbits(128),  # 32 bits collide past ~70,000 children
                flags=_flags(rng, born, organisations),
            )
        )
    return Population(org_ids, tuple(children))


def organization(index: int, org_id: str) -> dict[str, Any]:
    """The `index`th authoring organisation."""
    town = TOWNS[index % len(TOWNS)][0]
    kind = ORG_KINDS[index // len(TOWNS) % len(ORG_KINDS)]
    return {
        "resourceType": "Organization",
        "id": org_id,
        "identifier": [{"system": ODS, "value": f"Y{index:05d}"}],
        "active": True,
        "name": f"{town} {kind}" + (f" {index // 120 + 1}" if index >= 120 else ""),
    }


def _address(rng: random.Random) -> dict[str, Any]:
    town, area = rng.choice(TOWNS)
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    postcode = f"{area}{rng.randint(1, 20)} {rng.randint(1, 9)}{rng.choice(letters)}"
    return {
        "use": "home",
        "line": [f"{rng.randint(1, 180)} {rng.choice(STREETS)}"],
        "city": town,
        "postalCode": postcode + rng.choice(letters),
        "country": "GB",
    }


def patient(child: Child, address: dict[str, Any]) -> dict[str, Any]:
    """A child's Patient resource."""
    return {
        "resourceType": "Patient",
        "id": child.id,
        "identifier": [{"system": NHS, "value": child.nhs}],
        "name": [{"use": "official", "family": child.family, "given": [child.given]}],
        "gender": child.gender,
        "birthDate": child.birth_date.isoformat(),
        "address": [address],
    }


def flag(child: Child, planned: FlagPlan, organisations: tuple[str, ...]) -> dict[str, Any]:
    """One of a child's safeguarding Flags."""
    system, code, display, _ = FLAG_CODES[planned.code]
    period = {"start": planned.start.isoformat()}
    if planned.status == "inactive":
        period["end"] = min(planned.start + timedelta(days=180), LATEST_FLAG).isoformat()
    return {
        "resourceType": "Flag",
        "id": planned.id,
        "status": planned.status,
        "category": [{"coding": [{"system": FLAG_CATEGORY, "code": "safety"}]}],
        "code": {"coding": [{"system": system, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{child.id}"},
        "period": period,
        "author": {"reference": f"Organization/{organisations[planned.author]}"},
    }


def condition(child: Child, rng: random.Random) -> dict[str, Any]:
    """A child's one Condition."""
    code, display = rng.choice(CONDITIONS)
    return {
        "resourceType": "Condition",
        "id": new_id(rng),
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{child.id}"},
        "recordedDate": _day(rng, child.birth_date, LATEST_BIRTH).isoformat(),
    }


def related_person(
    child: Child, rng: random.Random, relationship: str, gender: str | None, address: dict[str, Any]
) -> dict[str, Any]:
    """A relative of a child, at the child's address."""
    gender = gender or rng.choice(("female", "male"))
    family = child.family if relationship in ("MTH", "FTH", "SIB") else rng.choice(FAMILIES)[0]
    relative: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "id": new_id(rng),
        "patient": {"reference": f"Patient/{child.id}"},
        "relationship": [{"coding": [{"system": ROLE, "code": relationship}]}],
        "name": [{"family": family, "given": [rng.choice(GIVEN[gender])]}],
        "gender": gender,
        "address": [address],
    }
    if relationship not in ("SIB", "HSIB"):
        phone = f"07700 9{rng.randint(0, 99999):05d}"
        relative["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    return relative


def family_of(child: Child, organisations: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """A child's Patient, Flags, Condition and two RelatedPersons (mother and one other)."""
    rng = random.Random(child.seed)
    address = _address(rng)
    yield patient(child, address)
    for planned in child.flags:
        yield flag(child, planned, organisations)
    yield condition(child, rng)
    codes, genders, weights = zip(*RELATIVES, strict=True)
    other = rng.choices(range(len(codes)), weights)[0]
    yield related_person(child, rng, "MTH", "female", address)
    yield related_person(child, rng, codes[other], genders[other], address)


def resources(population: Population) -> Iterator[dict[str, Any]]:
    """Every resource of a population: Organizations first, then each child's family."""
    for index, org_id in enumerate(population.organisations):
        yield organization(index, org_id)
    for child in population.children:
        yield from family_of(child, population.organisations)
