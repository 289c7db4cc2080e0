"""Claims on a child's one active flag of a kind (`flag_claim`): taken in the write's own
transaction, so of two concurrent writers only one can hold it."""

from app.access import Caller
from app.storage.db import Connection


async def release(conn: Connection, caller: Caller, pk: int) -> None:
    """Give up every claim resource `pk` holds (it was ended, deleted or changed kind)."""
    await conn.execute("DELETE FROM flag_claim WHERE resource_pk = $1", pk)


async def claim(
    conn: Connection, caller: Caller, pk: int, patient_id: str, flag_type: str
) -> str | None:
    """Claim (patient, flag type) for resource `pk`; the logical id of another live holder,
    or None when `pk` holds it now."""
    await conn.execute(
        "INSERT INTO flag_claim (patient_id, flag_type, resource_pk) VALUES ($1, $2, $3) "
        "ON CONFLICT (patient_id, flag_type) DO NOTHING",
        patient_id,
        flag_type,
        pk,
    )
    row = await conn.fetchrow(
        "SELECT c.resource_pk, r.logical_id FROM flag_claim c "
        "JOIN resource r ON r.pk = c.resource_pk WHERE c.patient_id = $1 AND c.flag_type = $2",
        patient_id,
        flag_type,
    )
    return None if row is None or row[0] == pk else str(row[1])
