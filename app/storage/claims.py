"""Claims: rows whose primary key lets one live resource alone hold something, so that of two
concurrent writers only one can (the other's unit of work fails and is retried).

A conditional create's criteria (`conditional_key`), a Patient's NHS numbers
(`nhs_number_claim`) and a child's one active flag of a kind (`flag_claim`). Looking up a
claim's holder is an integrity check: it sees every live resource, whoever writes.
"""

from app.errors import WriteConflict
from app.storage.repository import Repository
from app.storage.statements import every_live


async def claim_conditional_key(
    repo: Repository, resource_type: str, match_key: str, pk: int
) -> int | None:
    """Claim a conditional-create key for `pk`; returns the holder's pk if another holds it.

    The key's primary key makes concurrent claims race-free: on PostgreSQL a second claimer
    waits for the first to commit, then sees the conflict.
    """
    row = await repo.conn.fetchrow(
        "INSERT INTO conditional_key (resource_type, match_key, resource_pk) VALUES ($1, $2, $3) "
        "ON CONFLICT (resource_type, match_key) DO NOTHING RETURNING resource_pk",
        resource_type,
        match_key,
        pk,
    )
    if row is not None:
        return None
    holder = await repo.conn.fetchrow(
        "SELECT resource_pk FROM conditional_key WHERE resource_type = $1 AND match_key = $2",
        resource_type,
        match_key,
    )
    if holder is None:
        raise WriteConflict("conditional create key vanished while claiming it")
    return int(holder[0])


async def take_over_conditional_key(
    repo: Repository, resource_type: str, match_key: str, pk: int, holder_pk: int
) -> None:
    """Move a stale key (its holder no longer matches) to `pk`; losing a race raises."""
    taken = await repo.conn.fetchrow(
        "UPDATE conditional_key SET resource_pk = $3 "
        "WHERE resource_type = $1 AND match_key = $2 AND resource_pk = $4 RETURNING resource_pk",
        resource_type,
        match_key,
        pk,
        holder_pk,
    )
    if taken is None:
        raise WriteConflict("conditional create raced with another writer")


_NHS_HOLDER = (
    "SELECT c.resource_pk, r.logical_id FROM nhs_number_claim c "
    f"JOIN resource r ON r.pk = c.resource_pk WHERE c.nhs_number = $1 AND {every_live('r')}"
)


async def claim_nhs_numbers(repo: Repository, pk: int, nhs_numbers: set[str]) -> dict[str, str]:
    """Claim NHS numbers for a Patient; returns those already held by another live Patient."""
    conn = repo.conn
    held = await conn.fetch("SELECT nhs_number FROM nhs_number_claim WHERE resource_pk = $1", pk)
    for (number,) in held:
        if number not in nhs_numbers:
            await conn.execute("DELETE FROM nhs_number_claim WHERE nhs_number = $1", number)
    clashes: dict[str, str] = {}
    for number in sorted(nhs_numbers):
        await conn.execute(
            "INSERT INTO nhs_number_claim (nhs_number, resource_pk) VALUES ($1, $2) "
            "ON CONFLICT (nhs_number) DO NOTHING",
            number,
            pk,
        )
        row = await conn.fetchrow(_NHS_HOLDER, number)
        if row is not None and row[0] != pk:
            clashes[number] = row[1]
    return clashes


async def release_flag_claims(repo: Repository, pk: int) -> None:
    """Give up every flag claim resource `pk` holds (it was ended, deleted or changed kind)."""
    await repo.conn.execute("DELETE FROM flag_claim WHERE resource_pk = $1", pk)


async def claim_flag(repo: Repository, pk: int, patient_id: str, flag_type: str) -> str | None:
    """Claim (patient, flag type) for resource `pk`; the logical id of another live holder,
    or None when `pk` holds it now."""
    await repo.conn.execute(
        "INSERT INTO flag_claim (patient_id, flag_type, resource_pk) VALUES ($1, $2, $3) "
        "ON CONFLICT (patient_id, flag_type) DO NOTHING",
        patient_id,
        flag_type,
        pk,
    )
    row = await repo.conn.fetchrow(
        "SELECT c.resource_pk, r.logical_id FROM flag_claim c JOIN resource r "
        f"ON r.pk = c.resource_pk WHERE c.patient_id = $1 AND c.flag_type = $2 "
        f"AND {every_live('r')}",
        patient_id,
        flag_type,
    )
    return None if row is None or row[0] == pk else str(row[1])
