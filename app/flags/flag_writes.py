"""A safeguarding Flag's checks at write time, against what the database holds: its code and
subject are fixed once created, and a child holds at most one active flag of some kinds.
Spec: http://hl7.org/fhir/R4/flag.html
"""

from dataclasses import dataclass
from typing import Any

from app.access import Caller
from app.errors import Conflict, Unprocessable
from app.flags import flag_rules
from app.flags.codes import Vocabulary
from app.storage import flag_claims
from app.storage.db import Connection


@dataclass(frozen=True, slots=True)
class FlagFacts:
    """What a Flag's write checks against the database: its rules' vocabulary and base URL,
    and the (patient id, flag type) it must hold alone, if any."""

    vocabulary: Vocabulary
    base_url: str
    one_active: tuple[str, str] | None


def check_flag_change(before: dict[str, Any], after: dict[str, Any], flag: FlagFacts) -> None:
    """422 if a safeguarding flag's code or subject changed."""
    if flag_rules.is_safeguarding(before, flag.vocabulary) or flag_rules.is_safeguarding(
        after, flag.vocabulary
    ):
        issues = flag_rules.change_issues(before, after, flag.base_url)
        if issues:
            raise Unprocessable(issues)


async def claim_one_active(
    conn: Connection, caller: Caller, pk: int, flag: FlagFacts, existed: bool
) -> None:
    """Hold the child's one active flag of its kind; 409 naming the flag that holds it."""
    if existed:
        await flag_claims.release(conn, caller, pk)
    if flag.one_active is None:
        return
    patient_id, flag_type = flag.one_active
    holder = await flag_claims.claim(conn, caller, pk, patient_id, flag_type)
    if holder is not None:
        raise Conflict.of(
            f"Patient/{patient_id} already has an active {flag_type} flag, Flag/{holder}: "
            "end it (status inactive with period.end) before raising another",
            "Flag.code",
            code="duplicate",
        )


def refuse_flag_delete(body: dict[str, Any], logical_id: str) -> None:
    """409: a safeguarding flag is ended by a status change, so its history shows why."""
    if flag_rules.is_safety(body):
        raise Conflict.of(
            f"Flag/{logical_id} is a safeguarding flag: end it with status inactive (and "
            "period.end) or entered-in-error, with a removal reason, instead of deleting it",
            "Flag",
            code="business-rule",
        )
