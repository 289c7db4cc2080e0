"""Subscriptions as the notifier and the `$status` and `$events` operations work with them:
a caller's Subscription and its delivery state, its numbered events, the resources an event
names (read as the Subscription's organisation may read them), and the status changes the
notifier makes (a new version of the Subscription, written as `subscribing.NOTIFIER`).

Spec: https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/components.html
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from app.access import Caller
from app.errors import NotFound, PreconditionFailed
from app.flags.codes import Vocabulary
from app.flags.subscribing import NOTIFIER
from app.records import reads, service
from app.records.store import Store
from app.records.writing import prepare
from app.storage import subscriptions as storage
from app.storage.repository import Repository, read_current
from app.storage.subscriptions import Delivery

__all__ = [
    "Delivery",
    "Event",
    "events_of",
    "readable_bodies",
    "set_status",
    "state_for",
    "visible_bodies",
]

THE_NOTIFIER = Caller(subject=NOTIFIER, role="system")


@dataclass(frozen=True, slots=True)
class Event:
    """One numbered event of a Subscription."""

    number: int
    occurred_at: int
    detail: dict[str, Any]


async def state_for(repository: Repository, logical_id: str) -> Delivery:
    """The delivery state of a Subscription the caller may read (404 as for none otherwise)."""
    current = await reads.read(repository, "Subscription", logical_id)
    state = await storage.state_of(repository.conn, current.pk)
    if state is None:
        raise NotFound.of(f"Subscription/{logical_id} is not known")
    return state


async def events_of(
    repository: Repository, pk: int, since: int, until: int, limit: int
) -> list[Event]:
    """Subscription `pk`'s events numbered `since` to `until` (both included), in order."""
    rows = await storage.events(repository.conn, pk, since, until, limit)
    return [Event(number, at, detail) for number, at, detail in rows]


def reader_for(state: Delivery) -> Caller:
    """Whom a Subscription's notifications are read for: its organisation, as an authority."""
    return Caller(
        subject=f"Subscription/{state.logical_id}",
        organisation=state.owner_org,
        role="local-authority",
    )


async def visible_bodies(
    store: Store, state: Delivery, references: Sequence[str]
) -> dict[str, bytes]:
    """The stored bodies of `Type/id` references that the Subscription's organisation may
    read now (a full-resource notification carries no more)."""
    return await readable_bodies(store, reader_for(state), references)


async def readable_bodies(
    store: Store, caller: Caller, references: Sequence[str]
) -> dict[str, bytes]:
    """The stored bodies of the live resources among `Type/id` references that `caller` may
    read."""
    found: dict[str, bytes] = {}
    async with store.reading(caller) as repository:
        for reference in dict.fromkeys(references):
            resource_type, _, logical_id = reference.partition("/")
            current = await read_current(repository, resource_type, logical_id)
            if current is not None and not current.deleted and current.body is not None:
                found[reference] = current.body
    return found


async def set_status(
    store: Store, vocabulary: Vocabulary, base: str, logical_id: str, status: str, error: str | None
) -> None:
    """Write a new version of a Subscription with `status` (and why, for `error`), unless it
    already says so or a client changed it meanwhile."""

    async def change(repository: Repository) -> None:
        current = await read_current(repository, "Subscription", logical_id)
        if current is None or current.deleted or current.body is None:
            return
        resource = orjson.loads(current.body)
        if resource.get("status") == status:
            return
        resource["status"] = status
        resource.pop("error", None)
        if error is not None:
            resource["error"] = error
        prepared = prepare(resource, base, logical_id, vocabulary=vocabulary, caller=THE_NOTIFIER)
        try:
            await service.update(repository, prepared, current.version_id)
        except PreconditionFailed:
            return  # a client's write came first: it decides the status now

    await store.write(THE_NOTIFIER, change)
