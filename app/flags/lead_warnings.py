"""`no-lead-professional`: a child whose safeguarding flags and conditions are recorded by two
or more services, with no active CareTeam naming a lead professional (`care_teams`), so that no
one professional is responsible for seeing the plans through. Pure, like `summary_warnings`.
"""

from app.flags.care_teams import leads
from app.flags.codes import Vocabulary
from app.flags.summary_warnings import (
    NO_LEAD,
    Family,
    Finding,
    label,
    recording_organization,
)
from app.normalise import target_id


def services(family: Family, vocabulary: Vocabulary) -> dict[str, list[str]]:
    """`Organization/id` -> the references of the child's active safeguarding flags it
    authored and active conditions it recorded, in the order first met."""
    found: dict[str, list[str]] = {}
    for flag in family.flags:
        author = target_id(flag.resource.get("author"), "Organization", family.base)
        if author is not None and vocabulary.flag_type(flag.resource.get("code")):
            found.setdefault(f"Organization/{author}", []).append(flag.reference)
    for condition in family.conditions:
        recorder = recording_organization(condition.resource, vocabulary, family.base)
        if isinstance(recorder, str) and recorder.startswith("Organization/"):
            found.setdefault(recorder, []).append(condition.reference)
    return found


def no_lead_professional(family: Family, vocabulary: Vocabulary) -> list[Finding]:
    """`no-lead-professional`: two or more services, and no active lead (never said to a
    caller that may not read CareTeams: it could not know)."""
    if not family.teams_seen or any(leads(t.resource, vocabulary) for t in family.care_teams):
        return []
    involved = services(family, vocabulary)
    if len(involved) < 2:
        return []
    named = "; ".join(
        f"{family.organizations.get(org, 'an unnamed organisation')} ({org}: {', '.join(refs)})"
        for org, refs in involved.items()
    )
    text = (
        f"No lead professional is recorded for {label(family.child)}, whose safeguarding flags "
        f"and conditions are recorded by {len(involved)} services: {named}. Agree which one "
        "leads and record it as the child's CareTeam."
    )
    about = (family.child.reference, *(r for refs in involved.values() for r in refs))
    return [Finding(NO_LEAD, text, about)]
