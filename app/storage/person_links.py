"""A RelatedPerson's link to the person's own Patient record, matched by an identifier (the
domain says which system: the NHS number) and kept as index rows of a custom reference
search parameter (`RelatedPerson?linked-patient=`): written when either side is written, so
the link holds whichever record came first. On PostgreSQL both sides lock the identifier (a
transaction-scoped advisory lock) before looking for the other, so of two concurrent writes
the second sees the first committed: the link is never lost. Links are kept whoever writes
(`every_live`); who may read them is decided when they are searched."""

from app.storage.repository import Repository
from app.storage.statements import every_live

PARAM = "linked-patient"


async def link_related_person(repo: Repository, pk: int, nhs_numbers: set[str]) -> None:
    """Index RelatedPerson `pk` under the live Patients holding its NHS numbers (claimed)."""
    conn = repo.conn
    await conn.execute("DELETE FROM idx_reference WHERE resource_pk = $1 AND param = $2", pk, PARAM)
    await _lock(repo, nhs_numbers)
    # A claim being given up by a Patient's delete or renumbering in flight is waited for, then
    # read again (a locking read sees the newest row): no link to a Patient that just went.
    waits = " FOR SHARE OF c" if conn.dialect == "postgresql" else ""
    for number in sorted(nhs_numbers):
        await conn.execute(
            "INSERT INTO idx_reference (resource_pk, param, target_type, target_id) "
            "SELECT $1, $2, 'Patient', r.logical_id FROM nhs_number_claim c "
            f"JOIN resource r ON r.pk = c.resource_pk WHERE c.nhs_number = $3 "
            f"AND {every_live('r')}{waits}",
            pk,
            PARAM,
            number,
        )


async def link_patient(
    repo: Repository, patient_id: str, system: str, nhs_numbers: set[str]
) -> None:
    """Index every live RelatedPerson whose identifier `system|number` is one of the Patient's
    NHS numbers under it."""
    await unlink_patient(repo, patient_id)
    await _lock(repo, nhs_numbers)
    for number in sorted(nhs_numbers):
        await repo.conn.execute(
            "INSERT INTO idx_reference (resource_pk, param, target_type, target_id) "
            "SELECT DISTINCT t.resource_pk, $1, 'Patient', $2 FROM idx_token t "
            "JOIN resource r ON r.pk = t.resource_pk WHERE t.param = 'identifier' "
            "AND t.code = $3 AND t.system = $4 AND r.resource_type = 'RelatedPerson' "
            f"AND {every_live('r')}",
            PARAM,
            patient_id,
            number,
            system,
        )


async def unlink_patient(repo: Repository, patient_id: str) -> None:
    """Remove every link to the Patient (deleted, or its NHS numbers changed)."""
    await repo.conn.execute(
        "DELETE FROM idx_reference WHERE param = $1 AND target_id = $2 AND target_type = 'Patient'",
        PARAM,
        patient_id,
    )


async def _lock(repo: Repository, nhs_numbers: set[str]) -> None:
    """Hold each NHS number until the transaction ends (PostgreSQL; SQLite has one writer)."""
    if repo.conn.dialect != "postgresql":
        return
    for number in sorted(nhs_numbers):  # one order everywhere: no deadlock
        await repo.conn.fetchrow(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"nhs:{number}"
        )
