"""A RelatedPerson's link to the person's own Patient record, matched by NHS number and kept
as index rows of the custom search parameter `RelatedPerson?linked-patient=`: written when
either side is written, so the link holds whichever record came first. On PostgreSQL both
sides lock the NHS number (a transaction-scoped advisory lock) before looking for the other,
so of two concurrent writes the second sees the first committed: the link is never lost."""

from app.access import Caller
from app.storage.db import Connection

PARAM = "linked-patient"
NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"


async def link_related_person(
    conn: Connection, caller: Caller, pk: int, nhs_numbers: set[str]
) -> None:
    """Index RelatedPerson `pk` under the live Patients holding its NHS numbers."""
    await conn.execute("DELETE FROM idx_reference WHERE resource_pk = $1 AND param = $2", pk, PARAM)
    await _lock(conn, nhs_numbers)
    for number in sorted(nhs_numbers):
        await conn.execute(
            "INSERT INTO idx_reference (resource_pk, param, target_type, target_id) "
            "SELECT $1, $2, 'Patient', r.logical_id FROM nhs_number_claim c "
            "JOIN resource r ON r.pk = c.resource_pk WHERE c.nhs_number = $3 AND NOT r.deleted",
            pk,
            PARAM,
            number,
        )


async def link_patient(
    conn: Connection, caller: Caller, patient_id: str, nhs_numbers: set[str]
) -> None:
    """Index every live RelatedPerson carrying one of the Patient's NHS numbers under it."""
    await unlink_patient(conn, caller, patient_id)
    await _lock(conn, nhs_numbers)
    for number in sorted(nhs_numbers):
        await conn.execute(
            "INSERT INTO idx_reference (resource_pk, param, target_type, target_id) "
            "SELECT DISTINCT t.resource_pk, $1, 'Patient', $2 FROM idx_token t "
            "JOIN resource r ON r.pk = t.resource_pk WHERE t.param = 'identifier' "
            "AND t.code = $3 AND t.system = $4 AND r.resource_type = 'RelatedPerson' "
            "AND NOT r.deleted",
            PARAM,
            patient_id,
            number,
            NHS_NUMBER_SYSTEM,
        )


async def unlink_patient(conn: Connection, caller: Caller, patient_id: str) -> None:
    """Remove every link to the Patient (deleted, or its NHS numbers changed)."""
    await conn.execute(
        "DELETE FROM idx_reference WHERE param = $1 AND target_id = $2 AND target_type = 'Patient'",
        PARAM,
        patient_id,
    )


async def _lock(conn: Connection, nhs_numbers: set[str]) -> None:
    """Hold each NHS number until the transaction ends (PostgreSQL; SQLite has one writer)."""
    if conn.dialect != "postgresql":
        return
    for number in sorted(nhs_numbers):  # one order everywhere: no deadlock
        await conn.fetchrow(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"nhs:{number}"
        )
