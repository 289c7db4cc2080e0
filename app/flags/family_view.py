"""The family of a summary as a person reads it: the subject, then each parent, step-parent,
sibling, half-sibling and child with their active safeguarding flags, the father shown as not
recorded or not identified where that is so, and a child's local authority where it differs
from the subject's. What the narrative and the HTML page (`summary_page`) show; pure.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from app.flags.adult_warnings import address_district
from app.flags.codes import Vocabulary
from app.flags.summary_warnings import (
    FATHERS,
    Family,
    Held,
    Relative,
    flags_of,
    kind_of,
    kinship,
    recorder,
    role_codes,
    start_of,
)
from app.normalise import target_id

STEP = frozenset({"STPFTH", "STPMTH", "STPPRN", "STPSIB"})
HALF = frozenset({"HSIB", "HBRO", "HSIS"})
WORDS = {
    "FTH": "father", "NFTH": "natural father", "STPFTH": "stepfather", "MTH": "mother",
    "NMTH": "natural mother", "STPMTH": "stepmother", "PRN": "parent", "NPRN": "natural parent",
    "STPPRN": "step-parent", "PRNFOST": "foster parent", "ADOPTP": "adoptive parent",
    "ADOPTF": "adoptive father", "ADOPTM": "adoptive mother", "GUARD": "guardian", "Carer": "carer",
    "Guardian": "guardian", "SIB": "sibling", "NSIB": "natural sibling", "HSIB": "half-sibling",
    "HBRO": "half-brother", "HSIS": "half-sister", "STPSIB": "step-sibling", "BRO": "brother",
    "SIS": "sister",
}  # fmt: skip


# Characters XML 1.0 does not allow (a narrative must be well-formed XHTML): replaced, shown.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escaped(text: str) -> str:
    """`text` as XHTML character data: escaped, characters XML forbids replaced by U+FFFD."""
    return escape(NOT_XML.sub("\ufffd", text))


@dataclass(frozen=True, slots=True)
class Member:
    """One person of the family as shown: `group` places them in the diagram (subject, parent,
    step-parent, sibling, half-sibling, child); `missing` marks a father not recorded or not
    identified, who has no record to show."""

    name: str
    relation: str
    group: str
    flags: tuple[str, ...] = ()
    authority: str | None = None
    missing: str | None = None


def name_of(resource: dict[str, object]) -> str:
    """A person's name as written (`text`, else given names and family), or `unnamed`."""
    for name in resource.get("name") or []:  # type: ignore[attr-defined]
        if not isinstance(name, dict):
            continue
        if isinstance(name.get("text"), str):
            return str(name["text"])
        given = [g for g in name.get("given") or [] if isinstance(g, str)]
        family = [name["family"]] if isinstance(name.get("family"), str) else []
        if given or family:
            return " ".join([*given, *family])
    return "unnamed"


def flag_lines(family: Family, flags: list[Held], vocabulary: Vocabulary) -> tuple[str, ...]:
    """`Child protection plan since 2025-01-02 (Leeds City Council)` for each safeguarding flag."""
    return tuple(
        f"{kind_of(vocabulary, flag)} since {start_of(flag)} "
        f"({recorder(family, flag).split(' (Organization/')[0]})"
        for flag in flags
        if vocabulary.flag_type(flag.resource.get("code"))
    )


def _authority(family: Family, patient: Held, vocabulary: Vocabulary) -> str | None:
    """`Organization/id` of the person's responsible local authority, if given."""
    for value in vocabulary.responsible_authorities(patient.resource):
        found = target_id(value, "Organization", family.base)
        if found is not None:
            return f"Organization/{found}"
    return None


def _named(family: Family, reference: str | None) -> str | None:
    return family.organizations.get(reference, reference) if reference else None


def _group(code: str, kind: str) -> str:
    if kind == "child":
        return "child"
    if kind == "parent":
        return "step-parent" if code in STEP else "parent"
    return "half-sibling" if code in HALF else "sibling"


def _relation(code: str, kind: str) -> str:
    words = WORDS.get(code, code)
    return f"child (this person is their {words})" if kind == "child" else words


def members(family: Family, vocabulary: Vocabulary, adult: bool) -> list[Member]:
    """The subject first, then everyone linked, then, for a child, a father placeholder when
    no father is recorded."""
    own = _authority(family, family.child, vocabulary)
    flags = flag_lines(family, list(family.flags), vocabulary)
    shown = [
        Member(name_of(family.child.resource), "this person", "subject", flags, _named(family, own))
    ]
    differing = _differing(family, vocabulary, own, adult)
    linked = {relative.via: relative for relative in family.relatives}
    for rp in family.related_persons:
        kin = kinship(rp.resource)
        if kin is not None:
            shown.append(
                _linked(family, vocabulary, rp, kin, linked.pop(rp.reference, None), differing)
            )
    for relative in linked.values():
        patient = relative.patient
        shown.append(
            Member(
                name_of(patient.resource),
                _relation(relative.relationship, relative.kind),
                _group(relative.relationship, relative.kind),
                flag_lines(family, flags_of(family, patient.logical_id), vocabulary),
                differing(patient),
            )
        )
    if not adult and not any(
        FATHERS & set(role_codes(rp.resource)) for rp in family.related_persons
    ):
        shown.append(Member("Father", "father", "parent", missing="not recorded"))
    return shown


def _linked(
    family: Family,
    vocabulary: Vocabulary,
    rp: Held,
    kin: tuple[str, str],
    relative: Relative | None,
    differing: Callable[[Held | None], str | None],
) -> Member:
    """A person the subject's own RelatedPerson names, by their record where it is linked."""
    patient = relative.patient if relative is not None else None
    flags = flags_of(family, patient.logical_id) if patient is not None else []
    return Member(
        name_of((patient or rp).resource),
        _relation(kin[1], kin[0]),
        _group(kin[1], kin[0]),
        flag_lines(family, flags, vocabulary),
        differing(patient),
        _unidentified(rp),
    )


def _unidentified(rp: Held) -> str | None:
    """`not identified` for a father RelatedPerson carrying no identifier (as the warning)."""
    if not FATHERS & set(role_codes(rp.resource)):
        return None
    identifiers = rp.resource.get("identifier")
    found = [i for i in identifiers if isinstance(i, dict)] if isinstance(identifiers, list) else []
    return None if found else "not identified"


def _differing(
    family: Family, vocabulary: Vocabulary, own: str | None, adult: bool
) -> Callable[[Held | None], str | None]:
    """A relative's local authority, named only where it differs: for a child, from the
    child's own authority; for an adult, lying in another district than the adult's home."""
    lives_in = address_district(family.child)

    def named(patient: Held | None) -> str | None:
        theirs = _authority(family, patient, vocabulary) if patient is not None else None
        if theirs is None:
            return None
        if adult:
            district = family.districts.get(theirs)
            if lives_in is None or district is None or district.casefold() == lives_in.casefold():
                return None
        elif theirs == own:
            return None
        return _named(family, theirs)

    return named
