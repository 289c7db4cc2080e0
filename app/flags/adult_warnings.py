"""The warnings of a parent's or carer's summary: what the children whose records link this
person (as father, mother, step-parent, foster parent, carer or guardian) mean for the adult
in front of a clinician. Pure rules over one `Family` (no database), like `summary_warnings`.

- `child-subject-to-plan`: a linked child has an active child-protection-plan,
  unborn-child-protection-plan or looked-after-child flag.
- `child-on-register-elsewhere`: such a child's responsible local authority (the child's
  responsible-local-authority extension, else the author of the flag) lies in another district
  than the adult's home address, where both are known (Patient.address.district and the
  authority's Organization.address.district).
"""

from collections.abc import Iterator
from datetime import date

from app.flags import codes
from app.flags.codes import Vocabulary
from app.flags.summary_warnings import (
    CHILD_ELSEWHERE,
    CHILD_PLAN,
    Family,
    Finding,
    Held,
    Relative,
    flags_of,
    kind_of,
    label,
    of_type,
    recorder,
    start_of,
)
from app.normalise import target_id

ON_A_PLAN = (
    codes.CHILD_PROTECTION_PLAN,
    codes.UNBORN_CHILD_PROTECTION_PLAN,
    codes.LOOKED_AFTER_CHILD,
)


def _on_a_plan(family: Family, vocabulary: Vocabulary) -> Iterator[tuple[Relative, Held]]:
    """Each linked child with each of its active plan or looked-after flags."""
    for relative in family.relatives:
        if relative.kind == "child":
            flags = flags_of(family, relative.patient.logical_id)
            for flag in of_type(vocabulary, flags, ON_A_PLAN):
                yield relative, flag


def _as_linked(family: Family, child: Relative) -> str:
    """`Amy Smith (Patient/2), whose record names Jane Smith (Patient/1) as MTH`."""
    return (
        f"{label(child.patient)}, whose record names {label(family.child)} as "
        f"{child.relationship} ({child.via})"
    )


def child_subject_to_plan(family: Family, vocabulary: Vocabulary) -> list[Finding]:
    """`child-subject-to-plan`: a linked child on a plan or looked after."""
    return [
        Finding(
            CHILD_PLAN,
            f"{_as_linked(family, child)}, has an active flag '{kind_of(vocabulary, flag)}' "
            f"since {start_of(flag)} ({flag.reference}, recorded by {recorder(family, flag)}).",
            (child.patient.reference, flag.reference),
        )
        for child, flag in _on_a_plan(family, vocabulary)
    ]


def address_district(held: Held, today: date | None = None) -> str | None:
    """The district of a Patient's current home address, or of an Organization's current
    address; None if none gives one. An address is current unless its use is `old` or its
    `period.end` is before `today`."""
    addresses = [a for a in held.resource.get("address") or [] if isinstance(a, dict)]
    current = [a for a in addresses if a.get("use") != "old" and not _ended(a, today)]
    if held.resource_type == "Patient":
        current = [a for a in current if a.get("use") in ("home", None)]
        current.sort(key=lambda a: a.get("use") != "home")  # a home address before one unsaid
    district = current[0].get("district") if current else None
    return district.strip() if isinstance(district, str) and district.strip() else None


def _ended(address: dict[str, object], today: date | None) -> bool:
    period = address.get("period")
    end = period.get("end") if isinstance(period, dict) else None
    if not isinstance(end, str):
        return False
    return today is None or end[:10] < today.isoformat()


def _authorities(family: Family, child: Held, flag: Held, vocabulary: Vocabulary) -> list[str]:
    """`Organization/id` of the child's responsible local authorities: its extension's, else
    the flag's author."""
    named = [
        target_id(value, "Organization", family.base)
        for value in vocabulary.responsible_authorities(child.resource)
    ]
    if not any(named):
        named = [target_id(flag.resource.get("author"), "Organization", family.base)]
    return [f"Organization/{found}" for found in dict.fromkeys(named) if found]


def child_on_register_elsewhere(
    family: Family, vocabulary: Vocabulary, today: date | None = None
) -> list[Finding]:
    """`child-on-register-elsewhere`: a linked child on a plan or looked after by an authority
    of another district than the adult's home."""
    lives_in = address_district(family.child, today)
    if lives_in is None:
        return []
    found = []
    for child, flag in _on_a_plan(family, vocabulary):
        for authority in _authorities(family, child.patient, flag, vocabulary):
            district = family.districts.get(authority)
            if district is None or district.casefold() == lives_in.casefold():
                continue
            name = family.organizations.get(authority) or authority
            text = (
                f"{_as_linked(family, child)}, has an active flag '{kind_of(vocabulary, flag)}' "
                f"since {start_of(flag)} ({flag.reference}, recorded by "
                f"{recorder(family, flag)}) and is the responsibility of {name} ({authority}, "
                f"{district}), while {label(family.child)} lives in {lives_in}: the child is "
                f"on another authority's register."
            )
            about = (child.patient.reference, flag.reference)
            found.append(Finding(CHILD_ELSEWHERE, text, about))
    return found


def adult_findings(
    family: Family, vocabulary: Vocabulary, today: date | None = None
) -> list[Finding]:
    """Every warning about the subject as a parent or carer of linked children."""
    return [
        *child_subject_to_plan(family, vocabulary),
        *child_on_register_elsewhere(family, vocabulary, today),
    ]
