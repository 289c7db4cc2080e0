"""What one request touched, gathered while it runs, for its AuditEvent (`app.audit`).

Every layer that learns something adds it here: the audit middleware the interaction and who
asked, the FHIR layer the query and each resource and Patient in an answer, storage each
version written. `app.audit` turns it into the request's AuditEvent; a write's is stored in
the write's own transaction (`record_in`), every other one before the answer is sent.
"""

import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

TRAIL = "safeguard.trail"  # where a request's trail is kept in its ASGI scope
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # http://hl7.org/fhir/R4/datatypes.html#id


@dataclass(slots=True)
class Trail:
    """The audit facts of one request, in the order they were learnt."""

    request_id: str
    subtype: str  # the interaction, a code of http://hl7.org/fhir/restful-interaction
    action: str  # C R U D E
    address: str | None = None  # the client's network address
    query: str | None = None  # the query as sent (path?query), for searches and operations
    patients: dict[str, None] = field(default_factory=dict)  # Patient ids, an ordered set
    entities: dict[str, None] = field(default_factory=dict)  # relative references, ordered
    claimed_client: str | None = None  # a client id asserted but not (yet) authenticated
    # Set by `app.audit`: stores the AuditEvent in a write's transaction (its connection);
    # `success_row` builds it, for storage to store within the write's own statement.
    record_in: Callable[[Any], Awaitable[None]] | None = None
    success_row: Callable[[], Any] | None = None
    recorded: bool = False  # stored already, with the write it audits
    rides: bool = False  # stored by the write's own statement, if that commits

    def saw(
        self, resource_type: str, logical_id: str, patient_id: str | None, version: int = 0
    ) -> None:
        """A resource in the answer or written (its Patient, if in a compartment)."""
        reference = f"{resource_type}/{logical_id}"
        self.entities[f"{reference}/_history/{version}" if version else reference] = None
        if patient_id is not None:
            self.patients[patient_id] = None
        elif resource_type == "Patient":
            self.patients[logical_id] = None

    def named(self, patient_id: str) -> None:
        """A Patient the request names (a search parameter, a compartment, an operation); a
        value that cannot be an id names none (the query as sent keeps it)."""
        if FHIR_ID.fullmatch(patient_id):
            self.patients[patient_id] = None

    def mark(self) -> int:
        """Where the trail's resources stand, to go back to when an attempt is undone."""
        return len(self.entities)

    def undo_to(self, mark: int) -> None:
        """Forget the resources noted since `mark` (a write attempt that rolled back); the
        Patients it concerned stay named."""
        for key in list(self.entities)[mark:]:
            del self.entities[key]


def trail_of(scope: MutableMapping[str, Any]) -> Trail | None:
    """The request's trail (None outside an audited request)."""
    trail: Trail | None = scope.get(TRAIL)
    return trail
