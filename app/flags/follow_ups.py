"""Writes that follow a resource's save in the same unit of work, and what they need: a
Patient's claims on its NHS numbers and the family links they make, a RelatedPerson's link to
the relative's own record (by NHS number), and a child's one active flag of a kind.

`writes.on_write` says which a resource needs; `records` runs them for every write path
(single requests, conditional writes, transaction creates written together, batch entries).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.errors import Conflict, FhirError, Issue, NhsNumberHeld
from app.nhs import NHS_NUMBER_SYSTEM, nhs_numbers
from app.storage import claims, person_links
from app.storage.repository import Repository, read_by_pk

Write = Callable[[Repository, int, bool], Awaitable[None]]  # (repository, pk, existed)


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A write that follows the save of resource `pk`; `existed`: the save was an update."""

    run: Write
    on_create: bool = True  # also due when the save created the resource

    def due(self, existed: bool) -> bool:
        """Whether it runs after this save."""
        return existed or self.on_create


def claimed_numbers(resource: dict[str, Any]) -> set[str]:
    """The NHS numbers a resource holds alone: a Patient's own (a RelatedPerson's name
    someone else's record)."""
    return set(nhs_numbers(resource).values()) if resource["resourceType"] == "Patient" else set()


def patient_claims(resource: dict[str, Any], logical_id: str) -> FollowUp:
    """Claim the Patient's NHS numbers (422 naming each held by another live Patient), then
    link the RelatedPersons that carry them."""
    numbers = nhs_numbers(resource)

    async def claim_and_link(repo: Repository, pk: int, existed: bool) -> None:
        clashes = await claims.claim_nhs_numbers(repo, pk, set(numbers.values()))
        if clashes:
            raise await _held(repo, numbers, clashes)
        if numbers or existed:
            await person_links.link_patient(
                repo, logical_id, NHS_NUMBER_SYSTEM, set(numbers.values())
            )

    return FollowUp(claim_and_link)


async def _held(
    repo: Repository, numbers: dict[str, str], clashes: dict[str, int]
) -> NhsNumberHeld:
    """422 for each NHS number another Patient holds, naming it if the writer may read it."""
    issues = []
    for number, holder in clashes.items():
        named = await _named(repo, holder, "Patient", "another Patient")
        where = tuple(e for e, n in numbers.items() if n == number)
        issues.append(Issue(f"NHS number {number} already belongs to {named}", "duplicate", where))
    return NhsNumberHeld(issues, frozenset(clashes.values()))


async def _named(repo: Repository, pk: int, resource_type: str, unnamed: str) -> str:
    """`Type/id` of resource `pk` if the caller may read it; otherwise `unnamed`, so that no
    refusal names what the caller may not see."""
    found = await read_by_pk(repo, pk)
    return f"{resource_type}/{found.logical_id}" if found is not None else unnamed


def relative_link(resource: dict[str, Any]) -> FollowUp:
    """Link a RelatedPerson to the own records of the people its NHS numbers name."""
    numbers = set(nhs_numbers(resource).values())

    async def link(repo: Repository, pk: int, existed: bool) -> None:
        await person_links.link_related_person(repo, pk, numbers)

    return FollowUp(link, on_create=bool(numbers))


def one_active(claim: tuple[str, str] | None) -> FollowUp:
    """Hold the child's one active flag of its kind (409 naming the flag that holds it); an
    updated flag first gives up what it held."""

    def refusal(patient_id: str, flag_type: str, named: str) -> FhirError:
        return Conflict.of(
            f"Patient/{patient_id} already has an active {flag_type} flag, {named}: "
            "end it (status inactive with period.end) before raising another",
            "Flag.code",
            code="duplicate",
        )

    return _held_alone(claim, ("Flag", "held by a flag"), refusal)


def one_lead(claim: tuple[str, str] | None) -> FollowUp:
    """Hold the child's one active lead professional (409 naming the CareTeam that holds it);
    an updated CareTeam first gives up what it held."""

    def refusal(patient_id: str, _: str, named: str) -> FhirError:
        return Conflict.of(
            f"Patient/{patient_id} already has an active lead professional, {named}: end "
            "that CareTeam (status inactive with period.end) before recording another",
            "CareTeam.participant",
            code="duplicate",
        )

    return _held_alone(claim, ("CareTeam", "held by a care team"), refusal)


def _held_alone(
    claim: tuple[str, str] | None,
    holders: tuple[str, str],
    refusal: Callable[[str, str, str], FhirError],
) -> FollowUp:
    """Claim (child, kind) for the saved resource (`claims.claim_flag`), after giving up what
    an updated one held; `refusal` names the holder (`holders`: its type, and the words used
    instead when the writer may not read it)."""

    async def hold(repo: Repository, pk: int, existed: bool) -> None:
        if existed:
            await claims.release_flag_claims(repo, pk)
        if claim is None:
            return
        patient_id, kind = claim
        holder = await claims.claim_flag(repo, pk, patient_id, kind)
        if holder is not None:
            named = await _named(repo, holder, *holders)
            raise refusal(patient_id, kind, named)

    return FollowUp(hold, on_create=claim is not None)


def unlink(patient_id: str) -> FollowUp:
    """A deleted Patient's family links go with it."""

    async def remove(repo: Repository, pk: int, existed: bool) -> None:
        await person_links.unlink_patient(repo, patient_id)

    return FollowUp(remove)
