"""A child's lead professional, recorded as a FHIR CareTeam: `subject` the child, one
participant whose `role` is `lead-professional` (the project's `care-team-role` code system)
and whose `member` is an Organization or a Practitioner, `period`; the team's authoring
organisation is its `managingOrganization`. A child has at most one active lead: an active
CareTeam with a lead claims (child, lead-professional), race-free like a flag's one-active
claim; ending it (status inactive, with period.end) gives the claim up.

Spec: http://hl7.org/fhir/R4/careteam.html
"""

from typing import Any

from app.errors import Issue
from app.flags.codes import LEAD_PROFESSIONAL, Vocabulary
from app.normalise import split_reference, target_id

LEAD_CLAIM = f"care-team:{LEAD_PROFESSIONAL}"  # the claim's kind beside the flag types
LEAD_MEMBERS = ("Organization", "Practitioner")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def leads(resource: dict[str, Any], vocabulary: Vocabulary) -> list[tuple[int, dict[str, Any]]]:
    """(index, participant) of each participant whose role is lead professional."""
    system = vocabulary.care_team_role_system
    found = []
    for index, participant in enumerate(_list(resource.get("participant"))):
        if not isinstance(participant, dict):
            continue
        codings = [
            coding
            for role in _list(participant.get("role"))
            if isinstance(role, dict)
            for coding in _list(role.get("coding"))
            if isinstance(coding, dict)
        ]
        if any(c.get("system") == system and c.get("code") == LEAD_PROFESSIONAL for c in codings):
            found.append((index, participant))
    return found


def member_type(participant: dict[str, Any], base_url: str) -> str | None:
    """The type a participant's member refers to (by reference, else its logical `type`)."""
    member = participant.get("member")
    if not isinstance(member, dict):
        return None
    reference = member.get("reference")
    if isinstance(reference, str):
        found = split_reference(reference, base_url)[0]
        if found is None and "://" in reference:  # another server's: .../Practitioner/id
            parts = reference.rstrip("/").split("/")
            found = parts[-2] if len(parts) >= 2 else None
        return found
    given = member.get("type")
    return given if isinstance(given, str) else None


def care_team_issues(
    resource: dict[str, Any], vocabulary: Vocabulary, base_url: str
) -> list[Issue]:
    """422s of a CareTeam: its subject a Patient, one lead at most, a lead an Organization or
    a Practitioner."""
    issues = []
    if target_id(resource.get("subject"), "Patient", base_url) is None:
        issues.append(
            Issue("a CareTeam's subject is the child's Patient", "required", ("CareTeam.subject",))
        )
    found = leads(resource, vocabulary)
    for index, participant in found:
        if member_type(participant, base_url) not in LEAD_MEMBERS:
            issues.append(
                Issue(
                    "the lead professional is an Organization or a Practitioner",
                    "value",
                    (f"CareTeam.participant[{index}].member",),
                )
            )
    for index, _ in found[1:]:
        issues.append(
            Issue(
                "a CareTeam names one lead professional",
                "business-rule",
                (f"CareTeam.participant[{index}].role",),
            )
        )
    return issues


def lead_claim(
    resource: dict[str, Any], vocabulary: Vocabulary, base_url: str
) -> tuple[str, str] | None:
    """(child's Patient id, `LEAD_CLAIM`) when the CareTeam is active with a lead."""
    child = target_id(resource.get("subject"), "Patient", base_url)
    if resource.get("status") != "active" or child is None or not leads(resource, vocabulary):
        return None
    return child, LEAD_CLAIM


def managing_organisation(resource: dict[str, Any], base_url: str) -> str | None:
    """The id of the Organization managing the team (its first managingOrganization)."""
    for reference in _list(resource.get("managingOrganization")):
        found = target_id(reference, "Organization", base_url)
        if found is not None:
            return found
    return None
