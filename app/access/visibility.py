"""Which stored rows a caller may see, as SQL: the one place read access becomes a filter.

`storage.statements.Sql.visible` places `row_tests` wherever a statement reads `resource`
or `resource_version` (both carry a row's type, subject Patient, authoring organisation and
restricted label), so what a caller may not see is absent from every answer, as if it did not
exist. The rules:

- `system`: every row of the types its scopes let it read.
- `health`: every row, except a restricted one (`meta.security` R) it did not author.
- `local-authority`: Organizations, what it authored, and everything about a child for whom
  it is a responsible local authority: the one the Patient's responsible-local-authority
  extension names, or the author of an active Flag about the child. Both are indexed on
  the resource that confers the responsibility as reference rows of `RESPONSIBLE`, so the
  test is a correlated probe per row: the child's conferring rows, then their reference
  rows. (An `IN` list of every child the authority holds is hashed afresh by each statement,
  a cost that grows with the authority, and PostgreSQL, charging that cost to every index
  probe, read whole tables instead: 0.3 s a page for an authority of 100,000 children.)
  A Patient search by exact NHS number sees that Patient too.
- `auditor`: nothing of the safeguarding record (its own resources come with the audit trail).

A Subscription is held restricted (`PRIVATE_TYPES`), so only its organisation and system
clients see it.

A write that hides a resource from callers who could see it just before (a restricted label
added, a child or a record moving away from an authority, an authority's last active Flag
about a child ended) leaves them a tombstone (`storage.vanishing`): `losses` says who, from
what decides sight of the row before and after, and `tombstone_tests` which tombstones reach
a caller. History shows one as a deletion only while the resource stays hidden from it.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from app.access.caller import Caller
from app.criteria import Criterion, TokenValue
from app.nhs import NHS_NUMBER_SYSTEM, nhs_number_is_valid

RESPONSIBLE = "_responsible"  # index parameter: an Organization responsible for the child
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
RESTRICTED = "R"
Bind = Callable[[object], str]  # a value -> its placeholder in the statement
CONFERRING_TYPES = ("Flag", "Patient")  # the types whose rows can make an Organization responsible
_CONFERRING = "(" + ", ".join(f"'{t}'" for t in CONFERRING_TYPES) + ")"
HEALTH, LOCAL_AUTHORITY = "health", "local-authority"  # the roles a tombstone can reach
# Types held restricted whatever they say: a Subscription (its endpoint, its events) is seen by
# the organisation that made it and by system clients only.
PRIVATE_TYPES = frozenset({"Subscription"})


def sees_everything(caller: Caller) -> bool:
    """Whether every row passes `row_tests` for this caller."""
    return caller.role == "system" and caller.readable_types is None


def row_tests(caller: Caller, alias: str, bind: Bind) -> list[str]:
    """The SQL tests a row of `alias` must pass for `caller` to see it (none: every row)."""
    tests = []
    readable = caller.readable_types
    if readable is not None:
        tests.append(_types_test(alias, sorted(readable), bind))
    if caller.role == "health":
        organisation = bind(caller.organisation)
        tests.append(f"(NOT {alias}.restricted OR {alias}.author_org = {organisation})")
    elif caller.role == "local-authority":
        tests.append(_local_authority(caller, alias, bind))
    elif caller.role == "auditor":
        tests.append(f"{alias}.resource_type = 'AuditEvent'")
    return tests


def _local_authority(caller: Caller, alias: str, bind: Bind) -> str:
    organisation = bind(caller.organisation)
    seen = [
        f"{alias}.resource_type = 'Organization'",
        f"{alias}.author_org = {organisation}",
        f"EXISTS (SELECT 1 FROM resource g JOIN idx_reference x ON x.resource_pk = g.pk "
        f"WHERE g.resource_type IN {_CONFERRING} AND g.patient_id = {alias}.patient_id AND "
        f"x.param = '{RESPONSIBLE}' AND x.target_id = {organisation} AND "
        "x.target_type = 'Organization')",
    ]
    if caller.nhs_number is not None:
        seen.append(
            f"({alias}.resource_type = 'Patient' AND {alias}.logical_id IN (SELECT n.logical_id "
            "FROM idx_token t JOIN resource n ON n.pk = t.resource_pk WHERE t.param = "
            f"'identifier' AND t.system = {bind(NHS_NUMBER_SYSTEM)} AND t.code = "
            f"{bind(caller.nhs_number)} AND n.resource_type = 'Patient'))"
        )
    return f"({' OR '.join(seen)})"


def is_restricted(resource: dict[str, object]) -> bool:
    """Whether a resource is held restricted: it carries the restricted confidentiality label
    (`meta.security` R), or is of a type only its organisation sees (`PRIVATE_TYPES`)."""
    if resource.get("resourceType") in PRIVATE_TYPES:
        return True
    meta = resource.get("meta")
    labels = meta.get("security") if isinstance(meta, dict) else None
    return isinstance(labels, list) and any(
        isinstance(label, dict)
        and label.get("system") == CONFIDENTIALITY
        and label.get("code") == RESTRICTED
        for label in labels
    )


def finding_by_nhs_number(
    caller: Caller, resource_type: str, criteria: tuple[Criterion, ...], compartment: str | None
) -> Caller:
    """The caller a search's matches are read for: for a local authority's Patient search by
    one exact NHS number (`identifier=<NHS number system>|<number>`, nothing else), one that
    also sees that Patient, the way an authority finds a child who has just moved in; the
    caller itself otherwise. Includes are read for the caller itself."""
    if caller.role != "local-authority" or resource_type != "Patient" or compartment:
        return caller
    if len(criteria) != 1:
        return caller
    only = criteria[0]
    if only.param != "identifier" or only.kind != "token" or only.negate or len(only.values) != 1:
        return caller
    value = only.values[0]
    if not isinstance(value, TokenValue) or value.system != NHS_NUMBER_SYSTEM:
        return caller
    number = value.code
    if number is None or not nhs_number_is_valid(number):
        return caller
    return replace(caller, nhs_number=number)


@dataclass(frozen=True, slots=True)
class Sight:
    """What decides who sees a row of one resource: besides its type, its child, its author, its
    restricted label, and the Organizations responsible for that child."""

    patient_id: str | None
    author_org: str | None
    restricted: bool
    responsible: frozenset[str] = frozenset()


class Audience(NamedTuple):
    """Who lost sight of a resource: an organisation of a role or, with `organisation` None,
    every organisation of the role but `but` (None: every one)."""

    role: str
    organisation: str | None
    but: str | None = None


def losses(resource_type: str, before: Sight, after: Sight) -> list[Audience]:
    """Who could see a resource with `before` and cannot with `after` (the rules above)."""
    lost = []
    if after.restricted and not before.restricted:
        lost.append(Audience(HEALTH, None, after.author_org))
    elif after.restricted and before.author_org not in (None, after.author_org):
        lost.append(Audience(HEALTH, before.author_org))
    if resource_type != "Organization":
        seers = _authority_seers(before) - _authority_seers(after)
        lost.extend(Audience(LOCAL_AUTHORITY, org) for org in sorted(seers))
    return lost


def _authority_seers(sight: Sight) -> set[str]:
    return {org for org in (sight.author_org, *sight.responsible) if org is not None}


def tombstone_tests(caller: Caller, alias: str, bind: Bind) -> list[str] | None:
    """The SQL tests a `tombstone` row of `alias` must pass to reach `caller`: it names the
    caller's role and organisation (or every organisation of the role but another), and the
    caller may read its type; None when no tombstone ever reaches the caller (its role's sight
    never narrows: `system`, `auditor`)."""
    if caller.role not in (HEALTH, LOCAL_AUTHORITY) or caller.organisation is None:
        return None
    organisation = bind(caller.organisation)
    tests = [
        f"{alias}.audience_role = {bind(caller.role)}",
        f"({alias}.audience_org = {organisation} OR ({alias}.audience_org IS NULL AND "
        f"({alias}.except_org IS NULL OR {alias}.except_org <> {organisation})))",
    ]
    readable = caller.readable_types
    if readable is not None:
        tests.append(_types_test(alias, sorted(readable), bind))
    return tests


def _types_test(alias: str, types: Iterable[str], bind: Bind) -> str:
    marks = ", ".join(bind(name) for name in types)
    return f"{alias}.resource_type IN ({marks})" if marks else "1 = 0"
