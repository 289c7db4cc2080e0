"""Claims: rows whose primary key lets one live resource alone hold something, so that of two
concurrent writers only one can (the other's unit of work fails and is retried).

A conditional create's criteria (`conditional_key`), a Patient's NHS numbers
(`nhs_number_claim`) and a child's one active flag of a kind (`flag_claim`). A claim names its
holder by pk only: whether the writer may be told who holds it is for the writer's own reads.
"""

from app.errors import WriteConflict
from app.storage.repository import Repository


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


async def claim_nhs_numbers(repo: Repository, pk: int, nhs_numbers: set[str]) -> dict[str, int]:
    """Claim NHS numbers for a Patient; those another Patient holds, with the holder's pk."""
    conn = repo.conn
    held = await conn.fetch("SELECT nhs_number FROM nhs_number_claim WHERE resource_pk = $1", pk)
    for (number,) in held:
        if number not in nhs_numbers:
            await conn.execute("DELETE FROM nhs_number_claim WHERE nhs_number = $1", number)
    clashes: dict[str, int] = {}
    for number in sorted(nhs_numbers):
        await conn.execute(
            "INSERT INTO nhs_number_claim (nhs_number, resource_pk) VALUES ($1, $2) "
            "ON CONFLICT (nhs_number) DO NOTHING",
            number,
            pk,
        )
        row = await conn.fetchrow(
            "SELECT resource_pk FROM nhs_number_claim WHERE nhs_number = $1", number
        )
        if row is not None and row[0] != pk:
            clashes[number] = int(row[0])
    return clashes


async def release_flag_claims(repo: Repository, pk: int) -> None:
    """Give up every flag claim resource `pk` holds (it was ended, deleted or changed kind)."""
    await repo.conn.execute("DELETE FROM flag_claim WHERE resource_pk = $1", pk)


async def claim_flag(repo: Repository, pk: int, patient_id: str, flag_type: str) -> int | None:
    """Claim (patient, flag type) for resource `pk`; the pk of another holder, or None when
    `pk` holds it now."""
    await repo.conn.execute(
        "INSERT INTO flag_claim (patient_id, flag_type, resource_pk) VALUES ($1, $2, $3) "
        "ON CONFLICT (patient_id, flag_type) DO NOTHING",
        patient_id,
        flag_type,
        pk,
    )
    row = await repo.conn.fetchrow(
        "SELECT resource_pk FROM flag_claim WHERE patient_id = $1 AND flag_type = $2",
        patient_id,
        flag_type,
    )
    return None if row is None or row[0] == pk else int(row[0])
