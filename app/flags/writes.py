"""What the safeguarding domain says of every resource written or deleted, on every path:
the rules it breaks, the check of its change from the stored version, the writes that follow
its save, and the Organization that authored it.

Spec: http://hl7.org/fhir/R4/flag.html
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.access import Caller, writing
from app.errors import Conflict, Issue, Unprocessable
from app.flags import care_teams, flag_rules, subscribing
from app.flags.codes import Vocabulary
from app.flags.follow_ups import (
    FollowUp,
    one_active,
    one_lead,
    patient_claims,
    relative_link,
    unlink,
)
from app.normalise import target_id

NOT_AN_ORGANISATION = ""  # an author that is not an Organization here
Guard = Callable[[dict[str, Any], dict[str, Any]], None]  # (stored, new): raises if refused
FLAG_ACTIONS = {"inactive": "ended", "active": "reactivated"}  # a status change, as an action


@dataclass(frozen=True, slots=True)
class DomainWrite:
    """The domain's part in one write, decided before the transaction opens."""

    issues: list[Issue]
    follow_ups: tuple[FollowUp, ...] = ()
    guard: Guard | None = None
    author_org: str | None = None
    responsible: tuple[str, ...] = ()  # Organizations it makes responsible for its child
    safeguarding_status: str | None = None  # a safeguarding Flag's status; None for others

    def flag_action(self, stored: dict[str, Any] | None) -> str | None:
        """What this write does to a safeguarding Flag, given its stored version (None: it is
        new): created, ended, entered-in-error or reactivated; None when its status stays,
        or it is no safeguarding Flag. Each is a `flag-recorded-elsewhere` notification."""
        status = self.safeguarding_status
        if status is None:
            return None
        if stored is None:
            return "created"
        if stored.get("status") == status:
            return None
        return FLAG_ACTIONS.get(status, status)


def on_write(
    resource: dict[str, Any], logical_id: str, vocabulary: Vocabulary, base_url: str
) -> DomainWrite:
    """The rules, follow-up writes and author of `resource`, to be stored as `logical_id`."""
    resource_type = resource["resourceType"]
    if resource_type == "Patient":
        authorities = (
            _author_id(target_id(reference, "Organization", base_url))
            for reference in vocabulary.responsible_authorities(resource)
        )
        responsible = tuple(org for org in authorities if org is not None)
        return DomainWrite([], (patient_claims(resource, logical_id),), responsible=responsible)
    if resource_type == "RelatedPerson":
        return DomainWrite([], (relative_link(resource),))
    if resource_type == "Subscription":
        issues = subscribing.subscription_issues(resource, vocabulary)
        return DomainWrite(issues, (subscribing.keep_state(resource, logical_id, vocabulary),))
    if resource_type == "CareTeam":
        return DomainWrite(
            care_teams.care_team_issues(resource, vocabulary, base_url),
            (one_lead(care_teams.lead_claim(resource, vocabulary, base_url)),),
            author_org=author_of(resource, vocabulary, base_url),
        )
    if resource_type != "Flag":
        return DomainWrite([], author_org=author_of(resource, vocabulary, base_url))
    claim = flag_rules.one_active_claim(resource, vocabulary, base_url)
    author = author_of(resource, vocabulary, base_url)
    status = resource.get("status")
    return DomainWrite(
        flag_rules.flag_issues(resource, vocabulary, base_url),
        (one_active(claim),),
        _fixed_code_and_subject(vocabulary, base_url),
        author,
        # an authority raising an active flag about a child becomes responsible for them
        (author,) if author is not None and status == "active" else (),
        str(status) if flag_rules.is_safeguarding(resource, vocabulary) else None,
    )


def as_written_by(
    resource: dict[str, Any], caller: Caller, vocabulary: Vocabulary, base_url: str
) -> dict[str, Any]:
    """`resource` as `caller` may write it: its declared author checked against the caller's
    organisation (`access.writing`), and set to it when absent (a Flag's author, a Condition's
    recording organisation). 403 when it names another."""
    resource_type = resource["resourceType"]
    if resource_type == "Subscription":
        return subscribing.as_asked(resource, caller.subject)
    if resource_type == "Flag":
        declared = author_of(resource, vocabulary, base_url)
        if declared is None and resource.get("author") is not None:
            declared = NOT_AN_ORGANISATION  # a Practitioner, a Device...: not the caller's own
        author = writing.author_to_record(caller, declared, "Flag.author")
        if author is not None and declared is None:
            return resource | {"author": {"reference": f"Organization/{author}"}}
    elif resource_type == "Condition":
        declared = recorder(resource, vocabulary, base_url)
        expression = f"Condition.extension('{vocabulary.recording_organization_extension}')"
        author = writing.author_to_record(caller, declared, expression)
        if author is not None and declared is None:
            return _recorded_by(resource, author, vocabulary)
    elif resource_type == "CareTeam":
        return _managed_by(resource, caller, base_url)
    return resource


def _managed_by(resource: dict[str, Any], caller: Caller, base_url: str) -> dict[str, Any]:
    """A CareTeam's managing organisation checked against the caller's, set when absent."""
    declared = care_teams.managing_organisation(resource, base_url)
    if declared is None and resource.get("managingOrganization"):
        declared = NOT_AN_ORGANISATION
    author = writing.author_to_record(caller, declared, "CareTeam.managingOrganization")
    if author is not None and declared is None:
        return resource | {"managingOrganization": [{"reference": f"Organization/{author}"}]}
    return resource


def _recorded_by(resource: dict[str, Any], author: str, vocabulary: Vocabulary) -> dict[str, Any]:
    """A Condition with the recording-organization extension naming `author` added."""
    extension = {
        "url": vocabulary.recording_organization_extension,
        "valueReference": {"reference": f"Organization/{author}"},
    }
    return resource | {"extension": [*(resource.get("extension") or []), extension]}


def author_of(resource: dict[str, Any], vocabulary: Vocabulary, base_url: str) -> str | None:
    """The id of the Organization that authored a resource: a Flag's author, a Condition's
    recorder (the recording-organization extension), a CareTeam's managing organisation;
    None for other types."""
    if resource["resourceType"] == "Flag":
        return _author_id(target_id(resource.get("author"), "Organization", base_url))
    if resource["resourceType"] == "Condition":
        return recorder(resource, vocabulary, base_url)
    if resource["resourceType"] == "CareTeam":
        return _author_id(care_teams.managing_organisation(resource, base_url))
    return None


def _fixed_code_and_subject(vocabulary: Vocabulary, base_url: str) -> Guard:
    def guard(before: dict[str, Any], after: dict[str, Any]) -> None:
        """422 if a safeguarding flag's code or subject changed."""
        if flag_rules.is_safeguarding(before, vocabulary) or flag_rules.is_safeguarding(
            after, vocabulary
        ):
            issues = flag_rules.change_issues(before, after, base_url)
            if issues:
                raise Unprocessable(issues)

    return guard


def on_delete(resource_type: str, logical_id: str, body: dict[str, Any]) -> tuple[FollowUp, ...]:
    """The writes that follow deleting a live resource; 409 for a safeguarding flag, which is
    ended by a status change, so that its history shows who ended it and why."""
    if resource_type == "Flag" and flag_rules.is_safety(body):
        raise Conflict.of(
            f"Flag/{logical_id} is a safeguarding flag: end it with status inactive (and "
            "period.end) or entered-in-error, with a removal reason, instead of deleting it",
            "Flag",
            code="business-rule",
        )
    if resource_type == "Subscription":
        return (subscribing.forget_state(),)
    return (unlink(logical_id),) if resource_type == "Patient" else ()


def recorder(resource: dict[str, Any], vocabulary: Vocabulary, base_url: str) -> str | None:
    """The Organization a Condition's recording-organization extension names, as `id`."""
    recorded_by = vocabulary.recorded_by(resource)
    return _author_id(target_id(recorded_by, "Organization", base_url))


def _author_id(organization_id: str | None) -> str | None:
    """An Organization id as stored beside the resource (ids are at most 64 characters)."""
    return organization_id if organization_id is None or len(organization_id) <= 64 else None
