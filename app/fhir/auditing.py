"""What each answer held, noted in the request's trail for its AuditEvent (`app.audit`): the
resource read, the query a search sent, the Patients its parameters name, and each Patient
whose data the answer carried. Writes are noted by storage as they are made.
"""

from collections.abc import Iterable
from urllib.parse import urlencode

from starlette.requests import Request

from app.access.trail import trail_of
from app.normalise import split_reference
from app.registry import RESOURCE_TYPES


def read_one(
    request: Request, resource_type: str, logical_id: str, patient_id: str | None, version: int = 0
) -> None:
    """A resource the answer holds (one read, vread or history of it)."""
    trail = trail_of(request.scope)
    if trail is not None:
        trail.saw(resource_type, logical_id, patient_id, version)


def operation(request: Request, asked: str) -> None:
    """What an operation was asked for (a path and query below the base, no patient data),
    for the AuditEvent's query entity."""
    trail = trail_of(request.scope)
    if trail is not None:
        trail.query = asked


def held_data_of(request: Request, patient_ids: Iterable[str | None]) -> None:
    """The Patients whose data an answer of many resources holds (the compartments of its
    resources; a Patient is in its own)."""
    trail = trail_of(request.scope)
    if trail is not None:
        for patient_id in patient_ids:
            if patient_id is not None:
                trail.named(patient_id)


def searched(
    request: Request,
    resource_type: str,
    pairs: list[tuple[str, str]],
    base: str,
    compartment: str | None = None,
) -> None:
    """A search sent in a form or a Bundle entry: the query and the Patients its parameters
    name (a GET search's the audit middleware took from its URL as sent)."""
    trail = trail_of(request.scope)
    if trail is None or (request.method == "GET" and trail.subtype.startswith("search")):
        return
    if trail.subtype.startswith("search") and (trail.query is None or request.method == "POST"):
        trail.query = f"{resource_type}?{urlencode(pairs)}" if pairs else resource_type
    if compartment is not None:
        trail.named(compartment)
    for patient_id in named_patients(resource_type, pairs, base):
        trail.named(patient_id)


def named_patients(resource_type: str, pairs: list[tuple[str, str]], base: str) -> list[str]:
    """Ids of the Patients a search's parameters name: `_id` of a Patient search, and the
    values of reference parameters that can point at a Patient (`Patient/x`, or a bare id
    where Patient is the only target or the `:Patient` modifier says so)."""
    params = RESOURCE_TYPES[resource_type].params if resource_type in RESOURCE_TYPES else {}
    found: list[str] = []
    for name, value in pairs:
        param, _, modifier = name.partition(":")
        if "." in param:
            continue  # a chain names a Patient only through its own criteria
        if param == "_id" and resource_type == "Patient":
            found += [v for v in value.split(",") if v]
            continue
        definition = params.get(param)
        if definition is None or definition.type != "reference":
            continue
        if "Patient" not in definition.targets and definition.targets:
            continue
        bare = modifier == "Patient" or definition.targets == ("Patient",)
        for one in value.split(","):
            target_type, target_id = split_reference(one, base)
            if target_type == "Patient" or (target_type is None and bare and "/" not in one):
                found.append(target_id)
    return [f for f in found if f]
