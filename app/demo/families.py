"""The people of the demo population (`demo`): the places they live, who is whose parent, and
how each child is related to everyone else in the family (HL7 v3 RoleCode), drawn from a seeded
generator; those with a record get NHS numbers from the 999 test range, each family its own block.
Names, places and NHS organisations are invented; the councils' GSS codes are real.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

YEAR = 365
MAX_FAMILIES = 10_000
NHS_BLOCK = 24  # serials a family draws its NHS numbers from (it needs at most 8)


@dataclass(frozen=True, slots=True)
class Service:
    """An NHS or council organisation: ODS code and name (both made up, save the councils)."""

    ods: str
    name: str


@dataclass(frozen=True, slots=True)
class Locality:
    """A local authority (ONS GSS code) and the health services of its area."""

    council: Service
    gss: str
    district: str  # Address.district of its residents
    towns: tuple[str, ...]  # Address.city
    postcode: str  # postcode area
    hospital: Service
    community: Service
    practices: tuple[Service, ...]


def _locality(
    council: str, gss: str, district: str, towns: str, postcode: str, services: str
) -> Locality:
    """A Locality from one compact row: services are `ODS:name` separated by `;`."""
    la, hospital, community, *practices = (
        Service(*item.split(":", 1)) for item in services.split(";")
    )
    return Locality(
        Service(la.ods, council),
        gss,
        district,
        tuple(towns.split(",")),
        postcode,
        hospital,
        community,
        tuple(practices),
    )


# A table, one locality per entry: formatted, each would take ten lines.
# fmt: off
LOCALITIES = (
    _locality("Leeds City Council", "E08000035", "Leeds", "Leeds,Morley,Otley", "LS",
              "9LE:council;RX4:Airedale and Wharfe Hospitals NHS Trust;"
              "RY9:Leeds Community Healthcare Services;B86001:Kirkgate Surgery;"
              "B86017:Hyde Park Medical Practice"),
    _locality("City of Bradford Metropolitan District Council", "E08000032", "Bradford",
              "Bradford,Keighley,Shipley", "BD",
              "9BD:council;RX7:Bradford Royal Infirmary NHS Trust;"
              "RY7:Bradford District Community Health;B83002:Manningham Health Centre;"
              "B83019:Keighley Road Surgery"),
    _locality("City of York Council", "E06000014", "York", "York,Haxby", "YO",
              "9YK:council;RX3:York and Selby Hospitals NHS Trust;"
              "RY3:York Community Health Services;B82005:Minster Vale Practice;"
              "B82031:Haxby Road Surgery"),
    _locality("Oxfordshire County Council", "E10000025", "Oxfordshire",
              "Oxford,Banbury,Bicester", "OX",
              "9OX:council;RX2:Thames Valley Hospitals NHS Trust;"
              "RY2:Oxfordshire Children's Community Services;K84001:Cowley Road Surgery;"
              "K84030:Banbury Cross Health Centre"),
    _locality("London Borough of Hackney", "E09000012", "Hackney", "London", "E",
              "9HK:council;RX1:East London Hospitals NHS Trust;"
              "RY1:City and Hackney Community Health;F84003:Mare Street Surgery;"
              "F84021:Clapton Park Practice"),
    _locality("Manchester City Council", "E08000003", "Manchester", "Manchester", "M",
              "9MN:council;RX5:Irwell Hospitals NHS Trust;"
              "RY5:Manchester Children's Community Health;P84004:Ancoats Medical Centre;"
              "P84040:Wythenshawe Road Surgery"),
)
# fmt: on
# The regional hub whose sync and audit systems (demo-system, demo-auditor) write and read on
# behalf of others: an organisation of its own, so that what they write is no care service's.
HUB = Service("Y0HUB", "Regional Safeguarding Information Hub")

NEIGHBOURS = ((0, 1), (0, 2), (1, 2), (3, 4), (4, 5), (0, 5), (2, 5), (3, 0))

# Name lists, several to a line: formatted, each name would take a line of its own.
# fmt: off
GIVEN = {
    "female": ("Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Grace", "Freya",
               "Evie", "Poppy", "Aisha", "Maryam", "Zara", "Ruby", "Harper", "Willow", "Chloe"),
    "male": ("Noah", "Oliver", "George", "Arthur", "Muhammad", "Leo", "Harry", "Oscar",
             "Archie", "Theo", "Freddie", "Jack", "Charlie", "Alfie", "Ibrahim", "Finley"),
}
SURNAMES = ("Smith", "Jones", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Roberts",
            "Walker", "Wright", "Hughes", "Green", "Patel", "Khan", "Ahmed", "Hussain", "Begum",
            "Kowalski", "Okafor", "Nowak", "Murphy", "Clarke", "Baker")
STREETS = ("Church Lane", "High Street", "Station Road", "Victoria Road", "Park Avenue",
           "Mill Lane", "Manor Road", "Queen Street", "Albert Road", "Oak Close")
# fmt: on


@dataclass(slots=True, eq=False)
class Household:
    """One home: where it is, its GP practice, and who lives there."""

    locality: Locality
    practice: Service
    line: str
    town: str
    postcode: str


@dataclass(slots=True, eq=False)
class Person:
    """Someone in a family. `record`: a Patient of their own (and so an NHS number);
    `known`: False for a father no service knows, recorded nowhere."""

    key: str  # unique within the family; part of every id derived from the person
    gender: str
    given: str
    surname: str
    born: date
    home: Household | None
    record: bool = True
    known: bool = True
    mother: "Person | None" = None
    father: "Person | None" = None
    nhs: str = ""  # set when the population numbers its records

    @property
    def is_child(self) -> bool:
        """Whether this person is one of the family's children."""
        return self.mother is not None


@dataclass(slots=True)
class FamilyPlan:
    """One family: its shape, households and people (adults before children)."""

    number: int
    shape: str
    households: list[Household] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)

    @property
    def children(self) -> list[Person]:
        """The family's children, eldest of each household first."""
        return [person for person in self.people if person.is_child]


class Planner:
    """Draws the households and people of one family from its own generator."""

    def __init__(self, number: int, rng: random.Random, reference: date) -> None:
        self.rng, self.reference = rng, reference
        self.plan = FamilyPlan(number, SHAPES[number % len(SHAPES)])
        self.surname = rng.choice(SURNAMES)

    def household(self, locality: Locality) -> Household:
        """A new home in `locality`, registered with one of its practices."""
        rng = self.rng
        home = Household(
            locality,
            rng.choice(locality.practices),
            f"{rng.randint(1, 180)} {rng.choice(STREETS)}",
            rng.choice(locality.towns),
            f"{locality.postcode}{rng.randint(1, 20)} {rng.randint(1, 9)}"
            f"{rng.choice('ABDEHJLNPRSTUWXY')}{rng.choice('ABDEHJLNPRSTUWXY')}",
        )
        self.plan.households.append(home)
        return home

    def adult(
        self, key: str, gender: str, home: Household | None, record: bool = True, known: bool = True
    ) -> Person:
        """A parent aged 24 to 45 at the reference date."""
        born = self.reference - timedelta(days=self.rng.randint(24 * YEAR, 45 * YEAR))
        surname = self.surname if gender == "male" else self.rng.choice(SURNAMES)
        given = self.rng.choice(GIVEN[gender])
        person = Person(key, gender, given, surname, born, home, record=record, known=known)
        self.plan.people.append(person)
        return person

    def children(self, key: str, count: int, mother: Person, father: Person) -> list[Person]:
        """Up to `count` children of two parents at the mother's home, a year or more apart:
        the eldest of school age, both parents 18 or over at every birth."""
        rng, home = self.rng, mother.home
        parents_ages = ((self.reference - parent.born).days for parent in (mother, father))
        oldest = min(16 * YEAR, *(age - 18 * YEAR for age in parents_ages))
        ages = [rng.randint(5 * YEAR + 30, oldest)]
        while len(ages) < count and ages[-1] - 400 > 60:
            ages.append(max(60, ages[-1] - rng.randint(400, 1500)))
        made = []
        for index, age in enumerate(ages, start=1):
            gender = rng.choice(("female", "male"))
            surname = father.surname if father.known else mother.surname
            given, born = rng.choice(GIVEN[gender]), self.reference - timedelta(days=age)
            child = Person(
                f"{key}{index}", gender, given, surname, born, home, mother=mother, father=father
            )
            made.append(child)
        self.plan.people.extend(made)
        return made

    def two_localities(self) -> tuple[Locality, Locality]:
        """Two neighbouring local authorities."""
        first, second = self.rng.choice(NEIGHBOURS)
        return LOCALITIES[first], LOCALITIES[second]


def _two_parents(planner: Planner) -> None:
    home = planner.household(planner.rng.choice(LOCALITIES))
    mother, father = planner.adult("m1", "female", home), planner.adult("f1", "male", home)
    planner.children("c", planner.rng.randint(1, 3), mother, father)


def _father_without_nhs_number(planner: Planner) -> None:
    home = planner.household(planner.rng.choice(LOCALITIES))
    mother = planner.adult("m1", "female", home)
    resident = planner.rng.random() < 0.5
    father = planner.adult("f1", "male", home if resident else None, record=False)
    planner.children("c", planner.rng.randint(1, 3), mother, father)


def _father_unknown(planner: Planner) -> None:
    home = planner.household(planner.rng.choice(LOCALITIES))
    mother = planner.adult("m1", "female", home)
    father = planner.adult("f1", "male", None, record=False, known=False)
    planner.children("c", planner.rng.randint(1, 3), mother, father)


def _half_siblings_across_authorities(planner: Planner) -> None:
    """A father with children by two mothers, in two local authorities; he lives with the second."""
    first, second = planner.two_localities()
    home_a, home_b = planner.household(first), planner.household(second)
    mother_a, mother_b = (
        planner.adult("m1", "female", home_a),
        planner.adult("m2", "female", home_b),
    )
    father = planner.adult("f1", "male", home_b)
    planner.children("c", planner.rng.randint(1, 2), mother_a, father)
    planner.children("d", planner.rng.randint(1, 2), mother_b, father)


def _stepfamily(planner: Planner) -> None:
    """A mother's child by an earlier father (no NHS number, or unknown), her children by her
    partner, and sometimes his child by an earlier partner elsewhere."""
    rng = planner.rng
    home = planner.household(rng.choice(LOCALITIES))
    mother, partner = planner.adult("m1", "female", home), planner.adult("f1", "male", home)
    earlier = planner.adult("f2", "male", None, record=False, known=rng.random() < 0.5)
    planner.children("c", 1, mother, earlier)
    planner.children("d", rng.randint(1, 2), mother, partner)
    if rng.random() < 0.6:
        elsewhere = rng.choice(LOCALITIES) if rng.random() < 0.5 else home.locality
        former = planner.adult("m2", "female", planner.household(elsewhere))
        planner.children("e", 1, former, partner)


SHAPES = (
    "two-parents",
    "father-without-nhs-number",
    "father-unknown",
    "half-siblings-across-authorities",
    "stepfamily",
)
_BUILDERS = (
    _two_parents,
    _father_without_nhs_number,
    _father_unknown,
    _half_siblings_across_authorities,
    _stepfamily,
)


def plan_family(number: int, seed: int, rng: random.Random, reference: date) -> FamilyPlan:
    """Family `number`: its shape cycles through SHAPES, its details come from `rng`, and
    those with a record of their own get NHS numbers."""
    planner = Planner(number, rng, reference)
    _BUILDERS[number % len(_BUILDERS)](planner)
    records = [person for person in planner.plan.people if person.record]
    for person, nhs in zip(records, nhs_numbers(seed, number), strict=False):
        person.nhs = nhs
    return planner.plan


def nhs_number(serial: int) -> str | None:
    """The NHS number of a serial in the 999 test range; None when its check digit is 10."""
    stem = f"999{serial:06d}"
    total = sum(int(digit) * weight for digit, weight in zip(stem, range(10, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return None if check == 10 else f"{stem}{check}"


def nhs_numbers(seed: int, number: int) -> Iterator[str]:
    """The NHS numbers of family `number` of a seed: its own block of serials, none repeated."""
    room = 1_000_000 - MAX_FAMILIES * NHS_BLOCK
    start = random.Random(f"safeguard-demo:{seed}").randrange(room)  # noqa: S311 (not secret)
    first = start + number * NHS_BLOCK
    for serial in range(first, first + NHS_BLOCK):
        found = nhs_number(serial)
        if found is not None:
            yield found


def relationship(child: Person, other: Person) -> str | None:
    """What `other` is to `child` (v3 RoleCode, plain form), None when not related."""
    if other is child.mother:
        return "MTH"
    if other is child.father:
        return "FTH" if other.known else None
    shared = _same(child.mother, other.mother) + _same(child.father, other.father)
    if other.is_child:
        if shared:
            return "SIB" if shared == 2 else "HSIB"
        return "STPSIB" if _parents_live_together(child, other) else None
    if other.home is not None and any(
        parent is not None and parent.home is other.home for parent in (child.mother, child.father)
    ):
        return "STPFTH" if other.gender == "male" else "STPMTH"
    return None


def _same(first: Person | None, second: Person | None) -> int:
    return int(first is not None and first is second)


def _parents_live_together(child: Person, other: Person) -> bool:
    """Whether a parent of `child` shares a home with a parent of `other` (step-siblings)."""
    homes = {id(p.home) for p in (child.mother, child.father) if p is not None and p.home}
    return any(
        p is not None and p.home and id(p.home) in homes for p in (other.mother, other.father)
    )


VARIANTS = {
    "MTH": ("MTH", "MTH", "NMTH"),
    "FTH": ("FTH", "FTH", "NFTH"),
    "SIB": ("SIB", "SIB", "NSIB"),
    "HSIB": ("HSIB", "HSIB", "gendered"),
}


def coded(relation: str, other: Person, rng: random.Random) -> str:
    """The code a service recorded: sometimes the specific form (NFTH, NSIB, HBRO, HSIS)."""
    code = rng.choice(VARIANTS.get(relation, (relation,)))
    if code == "gendered":
        return "HBRO" if other.gender == "male" else "HSIS"
    return code
