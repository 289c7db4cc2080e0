"""The family of a summary as a person reads it: the subject, then each parent, step-parent,
sibling, half-sibling and child with their active safeguarding flags, the father shown as not
recorded or not identified where that is so, and a child's local authority where it differs
from the subject's. What the narrative and the HTML page (`summary_page`) show; pure.
"""

from dataclasses import dataclass

from app.flags.codes import Vocabulary
from app.flags.summary_warnings import (
    FATHERS,
    Family,
    Held,
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
    "STPPRN": "step-parent", "PRNFOST": "foster parent", "Carer": "carer",
    "Guardian": "guardian", "SIB": "sibling", "NSIB": "natural sibling", "HSIB": "half-sibling",
    "HBRO": "half-brother", "HSIS": "half-sister", "STPSIB": "step-sibling", "BRO": "brother",
    "SIS": "sister",
}  # fmt: skip


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
    """The name of the child's responsible local authority, if given."""
    for value in vocabulary.responsible_authorities(patient.resource):
        found = target_id(value, "Organization", family.base)
        if found is not None:
            return family.organizations.get(f"Organization/{found}", f"Organization/{found}")
    return None


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
    shown = [
        Member(
            name_of(family.child.resource),
            "this person",
            "subject",
            flag_lines(family, list(family.flags), vocabulary),
            own,
        )
    ]
    linked = {relative.via: relative for relative in family.relatives}
    for rp in family.related_persons:
        kin = kinship(rp.resource)
        if kin is None:
            continue
        relative = linked.pop(rp.reference, None)
        patient = relative.patient if relative is not None else None
        flags = flags_of(family, patient.logical_id) if patient is not None else []
        name = name_of((patient or rp).resource)
        missing = _unidentified(rp) if kin[1] in FATHERS else None
        authority = _differing(family, patient, own, vocabulary)
        shown.append(
            Member(
                name,
                _relation(kin[1], kin[0]),
                _group(kin[1], kin[0]),
                flag_lines(family, flags, vocabulary),
                authority,
                missing,
            )
        )
    for relative in linked.values():
        flags = flags_of(family, relative.patient.logical_id)
        shown.append(
            Member(
                name_of(relative.patient.resource),
                _relation(relative.relationship, relative.kind),
                _group(relative.relationship, relative.kind),
                flag_lines(family, flags, vocabulary),
                _differing(family, relative.patient, own, vocabulary),
            )
        )
    fathers = (FATHERS & set(role_codes(rp.resource)) for rp in family.related_persons)
    if not adult and not any(fathers):
        shown.append(Member("Father", "father", "parent", missing="not recorded"))
    return shown


def _unidentified(rp: Held) -> str | None:
    identifiers = rp.resource.get("identifier")
    return None if isinstance(identifiers, list) and identifiers else "not identified"


def _differing(
    family: Family, patient: Held | None, own: str | None, vocabulary: Vocabulary
) -> str | None:
    """A relative's local authority, shown only when it differs from the subject's."""
    if patient is None:
        return None
    theirs = _authority(family, patient, vocabulary)
    return theirs if theirs is not None and theirs != own else None
