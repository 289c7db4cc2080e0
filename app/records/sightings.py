"""The CP-IS access notification: when a health client reads a child's safeguarding summary or
Flags while the child has an active child protection plan, unborn child protection plan or
looked-after-child flag authored by a local authority, that authority is told which
organisation looked, and when (`child-seen-elsewhere`).

The plans are looked up after the answer is read and before it is sent; the notification is
stored in a transaction of its own, with the request's AuditEvent, so an answer that went out
was noted (and nothing is written for a child who is on no plan).
"""

from collections.abc import Iterable

from app.access import Caller
from app.access.trail import Trail
from app.access.visibility import HEALTH
from app.clock import now_micros
from app.flags.codes import Vocabulary
from app.flags.subscribing import plan_codes
from app.records.store import Store
from app.storage import outbox


async def note_seen(
    store: Store,
    caller: Caller,
    trail: Trail | None,
    children: Iterable[str],
    vocabulary: Vocabulary,
) -> int:
    """Tell the authorities whose plans cover any of `children` that the caller looked at
    them, if it is a health client; how many notifications were recorded."""
    looked_at = sorted(set(children))
    if caller.role != HEALTH or not looked_at:
        return 0
    codes = plan_codes(vocabulary)
    async with store.reading(caller) as repository:
        plans = await outbox.plans_of(repository.conn, looked_at, codes)
    if not plans:
        return 0
    moment = now_micros()
    return await store.write(
        caller, lambda repo: outbox.record_sightings(repo.conn, caller, plans, moment), trail
    )
