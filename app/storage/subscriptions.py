"""Subscriptions' delivery state and numbered events (migration 0016).

`save_state` keeps `subscription_state` in step with each write of a Subscription (in the
write's transaction); the notifier (`app.notify`) numbers the outbox's notifications for the
Subscriptions they reach (`dispatch`: one transaction takes a batch from `notification`,
writes a `subscription_event` per Subscription with the next number, and deletes the batch),
then delivers them and records how that went (`delivered`, `failed`). Only the notifier
changes `events_total` and `delivered_through`, and on PostgreSQL only one process dispatches
at a time (an advisory lock), so numbers are gapless and each is given once.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from app.nhs import NHS_NUMBER_SYSTEM
from app.storage.db import Connection
from app.storage.statements import every_live

DISPATCH_LOCK = 0x5AFE0016  # advisory lock: the one dispatcher
NUMBERED = ("requested", "active", "error")  # statuses whose Subscriptions get events
DELIVERING = ("requested", "active")  # statuses the notifier POSTs for


@dataclass(frozen=True, slots=True)
class State:
    """What a Subscription's save sets of its delivery state."""

    pk: int
    logical_id: str
    owner_org: str
    topic: str
    endpoint: str | None
    channel: str  # JSON (`flags.subscribing.delivery`)
    status: str


# A client asking again (`requested`) starts delivery afresh: failures forgotten, due at once.
_SAVE = (
    "INSERT INTO subscription_state (resource_pk, logical_id, owner_org, topic, endpoint, "
    "channel, status, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT "
    "(resource_pk) DO UPDATE SET topic = excluded.topic, endpoint = excluded.endpoint, "
    "channel = excluded.channel, status = excluded.status, failures = CASE WHEN "
    "excluded.status = 'requested' THEN 0 ELSE subscription_state.failures END, "
    "next_attempt_at = CASE WHEN excluded.status = 'requested' THEN 0 ELSE "
    "subscription_state.next_attempt_at END"
)


async def save_state(conn: Connection, state: State, now: int) -> None:
    """Create or update a Subscription's delivery state (its owner and counters stay)."""
    await conn.execute(
        _SAVE,
        state.pk,
        state.logical_id,
        state.owner_org,
        state.topic,
        state.endpoint,
        state.channel,
        state.status,
        now,
    )


async def drop_state(conn: Connection, pk: int) -> None:
    """Forget a deleted Subscription's delivery state and events."""
    await conn.execute("DELETE FROM subscription_event WHERE subscription_pk = $1", pk)
    await conn.execute("DELETE FROM subscription_state WHERE resource_pk = $1", pk)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One Subscription's delivery state, as the notifier and `$status` read it."""

    pk: int
    logical_id: str
    owner_org: str
    topic: str
    endpoint: str | None
    channel: dict[str, Any]
    status: str
    events_total: int
    delivered_through: int
    failures: int
    next_attempt_at: int
    last_sent_at: int | None
    started_at: int
    error: str | None

    def with_content(self, content: str) -> "Delivery":
        """The same, with the payload content asked for (`$events`' `content`)."""
        return replace(self, channel=self.channel | {"content": content})


_STATE = (
    "SELECT resource_pk, logical_id, owner_org, topic, endpoint, channel, status, "
    "events_total, delivered_through, failures, next_attempt_at, last_sent_at, started_at, "
    "error FROM subscription_state"
)


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        int(row[0]),
        row[1],
        row[2],
        row[3],
        row[4],
        orjson.loads(row[5]),
        row[6],
        int(row[7]),
        int(row[8]),
        int(row[9]),
        int(row[10]),
        None if row[11] is None else int(row[11]),
        int(row[12]),
        row[13],
    )


async def state_of(conn: Connection, pk: int) -> Delivery | None:
    """The delivery state of Subscription `pk` (the caller has read the Subscription)."""
    row = await conn.fetchrow(f"{_STATE} WHERE resource_pk = $1", pk)
    return None if row is None else _delivery(row)


async def due(conn: Connection, now: int, limit: int) -> list[Delivery]:
    """Subscriptions the notifier may act on now: those with an endpoint (a handshake, events
    or a heartbeat may be due: it decides), and those without one still to activate."""
    rows = await conn.fetch(
        f"{_STATE} WHERE status IN ('requested', 'active') AND next_attempt_at <= $1 AND "
        "(endpoint IS NOT NULL OR status = 'requested') ORDER BY next_attempt_at, resource_pk "
        "LIMIT $2",
        now,
        limit,
    )
    return [_delivery(row) for row in rows]


async def claim(conn: Connection, state: Delivery, lease_until: int) -> bool:
    """Take Subscription `pk` for one delivery, until `lease_until`, if it is still as `state`
    found it (no other process took it or delivered meanwhile)."""
    row = await conn.fetchrow(
        "UPDATE subscription_state SET next_attempt_at = $2 WHERE resource_pk = $1 AND "
        "next_attempt_at = $3 AND delivered_through = $4 AND status = $5 RETURNING resource_pk",
        state.pk,
        lease_until,
        state.next_attempt_at,
        state.delivered_through,
        state.status,
    )
    return row is not None


async def become_dispatcher(conn: Connection) -> bool:
    """Whether this transaction is the one dispatcher (PostgreSQL: an advisory lock; SQLite's
    one writer already is)."""
    if conn.dialect != "postgresql":
        return True
    row = await conn.fetchrow("SELECT pg_try_advisory_xact_lock($1)", DISPATCH_LOCK)
    return row is not None and bool(row[0])


async def any_pending(conn: Connection) -> bool:
    """Whether some notification waits to be numbered."""
    return await conn.fetchrow("SELECT 1 FROM notification LIMIT 1") is not None


async def dispatch(conn: Connection, batch: int) -> int:
    """Number the next `batch` notifications for the Subscriptions they reach and take them
    off the outbox; how many notifications were taken."""
    pending = await conn.fetch(
        "SELECT seq, topic, recipient_org, occurred_at, detail FROM notification "
        "ORDER BY seq LIMIT $1",
        batch,
    )
    if not pending:
        return 0
    reached = await _reached(conn, sorted({row[2] for row in pending}))
    numbers = {pk: total for pk, (_, _, total, _) in reached.items()}
    numbers_of = await _nhs_numbers(
        conn, sorted({orjson.loads(row[4])["child"] for row in pending})
    )
    events = []
    for _, topic, recipient, occurred_at, detail in pending:
        told = [
            pk
            for pk, (owner, wanted, _, started) in reached.items()
            if owner == recipient and wanted == topic and occurred_at >= started
        ]
        if not told:
            continue
        content = orjson.loads(detail)
        content |= {"topic": topic, "nhs": numbers_of.get(content["child"])}
        text = orjson.dumps(content).decode()
        for pk in told:
            numbers[pk] += 1
            events.append((pk, numbers[pk], occurred_at, text))
    if events:
        await conn.executemany(
            "INSERT INTO subscription_event (subscription_pk, event_number, occurred_at, "
            "detail) VALUES ($1, $2, $3, $4)",
            events,
        )
        moved = [(pk, total) for pk, total in numbers.items() if total != reached[pk][2]]
        await conn.executemany(
            "UPDATE subscription_state SET events_total = $2 WHERE resource_pk = $1", moved
        )
    marks = ", ".join(f"${n + 1}" for n in range(len(pending)))
    await conn.execute(f"DELETE FROM notification WHERE seq IN ({marks})", *(r[0] for r in pending))
    return len(pending)


async def _reached(
    conn: Connection, organisations: list[str]
) -> dict[int, tuple[str, str, int, int]]:
    """pk -> (owner, topic, events so far, started) of the Subscriptions of `organisations`
    that get events."""
    marks = ", ".join(f"${n + 1}" for n in range(len(organisations)))
    statuses = ", ".join(f"'{status}'" for status in NUMBERED)
    rows = await conn.fetch(
        "SELECT resource_pk, owner_org, topic, events_total, started_at FROM "
        f"subscription_state WHERE owner_org IN ({marks}) AND status IN ({statuses})",
        *organisations,
    )
    return {int(r[0]): (r[1], r[2], int(r[3]), int(r[4])) for r in rows}


async def _nhs_numbers(conn: Connection, children: list[str]) -> dict[str, str]:
    """The NHS number of each child's live Patient, where it has one."""
    if not children:
        return {}
    marks = ", ".join(f"${n + 2}" for n in range(len(children)))
    rows = await conn.fetch(
        "SELECT p.logical_id, t.code FROM resource p JOIN idx_token t ON t.resource_pk = p.pk "
        f"WHERE p.resource_type = 'Patient' AND p.logical_id IN ({marks}) AND {every_live('p')} "
        "AND t.param || '' = 'identifier' AND t.system = $1",  # probed by the Patient's pk
        NHS_NUMBER_SYSTEM,
        *children,
    )
    return {row[0]: row[1] for row in rows}


async def events(
    conn: Connection, pk: int, since: int, until: int, limit: int
) -> list[tuple[int, int, dict[str, Any]]]:
    """(number, occurred_at, detail) of Subscription `pk`'s events numbered `since` to
    `until`, both included, `limit` at most, in order."""
    rows = await conn.fetch(
        "SELECT event_number, occurred_at, detail FROM subscription_event WHERE "
        "subscription_pk = $1 AND event_number >= $2 AND event_number <= $3 "
        "ORDER BY event_number LIMIT $4",
        pk,
        since,
        until,
        limit,
    )
    return [(int(row[0]), int(row[1]), orjson.loads(row[2])) for row in rows]


async def delivered(conn: Connection, pk: int, through: int, now: int, hold: int = 0) -> None:
    """A POST to Subscription `pk`'s endpoint succeeded, carrying events up to `through`;
    `hold`: the claim's lease, kept while the same claim goes on POSTing (0: released)."""
    await conn.execute(
        "UPDATE subscription_state SET delivered_through = CASE WHEN delivered_through > $2 "
        "THEN delivered_through ELSE $2 END, failures = 0, next_attempt_at = $4, "
        "last_sent_at = $3, error = NULL WHERE resource_pk = $1",
        pk,
        through,
        now,
        hold,
    )


async def failed(conn: Connection, pk: int, failures: int, retry_at: int, error: str) -> None:
    """A POST to Subscription `pk`'s endpoint failed: the next try is due at `retry_at`."""
    await conn.execute(
        "UPDATE subscription_state SET failures = $2, next_attempt_at = $3, error = $4 "
        "WHERE resource_pk = $1",
        pk,
        failures,
        retry_at,
        error,
    )


async def purge_events(conn: Connection, before: int, batch: int) -> int:
    """Delete up to `batch` events that happened before `before`; how many went."""
    rows = await conn.fetch(
        "SELECT subscription_pk, event_number FROM subscription_event WHERE occurred_at < $1 "
        "LIMIT $2",
        before,
        batch,
    )
    await conn.executemany(
        "DELETE FROM subscription_event WHERE subscription_pk = $1 AND event_number = $2",
        [(row[0], row[1]) for row in rows],
    )
    return len(rows)
