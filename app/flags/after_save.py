"""Writes that follow a resource's save in the same transaction: a Patient's claims on its NHS
numbers, the family links between RelatedPersons and Patient records (by NHS number), and a
child's one active flag of a kind."""

from typing import Any

from app.access import Caller
from app.errors import Issue, NhsNumberHeld
from app.flags.flag_writes import FlagFacts, claim_one_active
from app.records import rules
from app.storage import person_links
from app.storage import repository as repo
from app.storage.db import Connection


def needed(resource: dict[str, Any], flag: FlagFacts | None, existed: bool) -> bool:
    """Whether saving `resource` is followed by more writes."""
    resource_type = resource["resourceType"]
    if resource_type == "Patient":
        return True
    if resource_type == "RelatedPerson":
        return existed or bool(rules.nhs_numbers(resource))
    return flag is not None and (flag.one_active is not None or existed)


async def write(
    conn: Connection,
    caller: Caller,
    pk: int,
    logical_id: str,
    resource: dict[str, Any],
    flag: FlagFacts | None,
    existed: bool,
) -> None:
    """The writes `needed` says follow the save of resource `pk`."""
    resource_type = resource["resourceType"]
    if resource_type == "Patient":
        numbers = await _claim_nhs_numbers(conn, caller, pk, resource)
        if numbers or existed:
            await person_links.link_patient(conn, caller, logical_id, numbers)
    elif resource_type == "RelatedPerson":
        numbers = set(rules.nhs_numbers(resource).values())
        await person_links.link_related_person(conn, caller, pk, numbers)
    elif flag is not None:
        await claim_one_active(conn, caller, pk, flag, existed)


async def _claim_nhs_numbers(
    conn: Connection, caller: Caller, pk: int, resource: dict[str, Any]
) -> set[str]:
    """Claim the Patient's NHS numbers; 422 naming each one another live Patient holds."""
    numbers = rules.nhs_numbers(resource)
    clashes = await repo.claim_nhs_numbers(conn, caller, pk, set(numbers.values()))
    if clashes:
        raise NhsNumberHeld(
            [
                Issue(
                    f"NHS number {number} already belongs to Patient/{holder}",
                    "duplicate",
                    tuple(e for e, n in numbers.items() if n == number),
                )
                for number, holder in clashes.items()
            ],
            frozenset(clashes.values()),
        )
    return set(numbers.values())
