"""The notifier: numbers the outbox's notifications for the Subscriptions they reach and
delivers them, in the background of every server process, resuming after a restart from what
the database holds.

Each pass: dispatch (`storage.subscriptions.dispatch`, one process at a time), then every
Subscription with work due: `requested` ones get a handshake (or, with no endpoint, become
`active` at once: their events wait for `$events`), `active` ones their next events, up to
their max count per Bundle, or a heartbeat when their period has passed without a POST. A
Subscription is claimed for one delivery at a time (its `next_attempt_at` moved to a lease),
so processes do not send the same events together. A failed POST is retried after an
exponential back-off with jitter; after `notify_max_failures` in a row the status becomes
`error` (events are still numbered and kept for `$events`; asking `requested` again restarts
delivery from the first event not yet delivered). Delivery is at-least-once: a process killed
between a POST and its record sends those events again, with the same numbers.
"""

import asyncio
import logging
import random
import time
from contextlib import suppress
from dataclasses import replace

import httpx

from app.clock import now_micros
from app.fhir import notifications
from app.flags.codes import Vocabulary
from app.notify import sending
from app.records.reads import Repository
from app.records.store import Store
from app.records.subscriptions import (
    THE_NOTIFIER,
    Delivery,
    Event,
    events_of,
    set_status,
    visible_bodies,
)
from app.settings import Settings
from app.storage import subscriptions as storage

log = logging.getLogger("safeguard.notify")

DISPATCH_BATCH = 500  # notifications numbered per transaction
DUE_BATCH = 200  # Subscriptions looked at per pass
DEFAULT_MAX_COUNT = 100  # events per notification Bundle unless the Subscription says
PARALLEL = 8  # deliveries in flight at once
BURST_SECONDS = 2.0  # how long one claim of a Subscription may go on POSTing its backlog
RECORD_SECONDS = 0.1  # how often a burst records what it delivered
READ_AHEAD = 500  # events read at once for a burst
PURGE_EVERY = 60_000_000  # microseconds between purges of expired events
MICROS = 1_000_000


class Notifier:
    """One process's notifier task."""

    def __init__(self, store: Store, settings: Settings, base: str, vocabulary: Vocabulary) -> None:
        self._store = store
        self._settings = settings
        self._base = base
        self._vocabulary = vocabulary
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(PARALLEL)
        self._purged_at = 0
        self._failing = False

    def start(self) -> None:
        """Start in the background (unless the interval is 0: other processes notify)."""
        if self._settings.notify_interval_seconds > 0:
            self._task = asyncio.create_task(self._run(), name="notifier")

    async def close(self) -> None:
        """Stop after the pass under way."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        interval = self._settings.notify_interval_seconds
        while not self._stop.is_set():
            try:
                await self.run_once()
                if self._failing:
                    log.info("notifications flowing again")
                self._failing = False
            except Exception as exc:  # the database is out of reach: the next pass retries
                if not self._failing:
                    log.warning("notifications not processed: %s", type(exc).__name__)
                self._failing = True
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)

    async def run_once(self) -> int:
        """One pass: dispatch, deliver what is due, purge expired events; deliveries made."""
        async with self._store.reading(THE_NOTIFIER) as repository:
            pending = await storage.any_pending(repository.conn)  # the writer is not taken idly
        while pending and await self._store.write(THE_NOTIFIER, _dispatch) == DISPATCH_BATCH:
            pass
        now = now_micros()
        async with self._store.reading(THE_NOTIFIER) as repository:
            due = await storage.due(repository.conn, now, DUE_BATCH)
        work = [state for state in due if self._has_work(state, now)]
        done = await asyncio.gather(*(self._deliver(state) for state in work))
        if now - self._purged_at > PURGE_EVERY:
            self._purged_at = now
            cutoff = now - self._settings.notify_event_retention * MICROS
            await self._store.write(
                THE_NOTIFIER, lambda repo: storage.purge_events(repo.conn, cutoff, 5000)
            )
        return sum(done)

    def _has_work(self, state: Delivery, now: int) -> bool:
        if state.status == "requested" or state.events_total > state.delivered_through:
            return True
        period = state.channel.get("heartbeat")
        if not period or state.endpoint is None:
            return False
        return (state.last_sent_at or state.started_at) + int(period) * MICROS <= now

    async def _deliver(self, state: Delivery) -> int:
        """Deliver what is due to one Subscription, if this process claims it: POSTs one after
        another while its events last (for `BURST_SECONDS` at most); how many succeeded."""
        async with self._slots:
            if state.endpoint is None:  # held for $events: nothing to shake hands with
                await self._status(state, "active")
                return 0
            lease = now_micros() + int((self._timeout(state) + BURST_SECONDS + 5) * MICROS)
            if not await self._store.write(
                THE_NOTIFIER, lambda repo: storage.claim(repo.conn, state, lease)
            ):
                return 0
            return await self._burst(state, lease)

    async def _burst(self, state: Delivery, lease: int) -> int:
        """POST to a claimed Subscription until nothing is left or the burst's time is up.
        Events are read ahead (`READ_AHEAD`) and what was delivered is recorded every
        `RECORD_SECONDS` and at the end, the lease kept until then: a process killed between
        sends the unrecorded events again, under the same numbers."""
        ends, recorded_at, sent = time.monotonic() + BURST_SECONDS, time.monotonic(), 0
        backlog: list[Event] = []
        through = state.delivered_through
        while True:
            try:
                through = await self._send(state, backlog)
            except sending.Undelivered as failure:
                if through > state.delivered_through:
                    await self._delivered(state.pk, through, 0)
                await self._failed(state, str(failure))
                return sent
            sent += 1
            if state.status == "requested":
                await self._status(state, "active")
            more = through < state.events_total and time.monotonic() < ends
            if not more or time.monotonic() - recorded_at >= RECORD_SECONDS:
                await self._delivered(state.pk, through, lease if more else 0)
                recorded_at = time.monotonic()
            if not more:
                return sent
            state = replace(state, status="active", delivered_through=through, failures=0)

    async def _delivered(self, pk: int, through: int, hold: int) -> None:
        moment = now_micros()
        await self._store.write(
            THE_NOTIFIER, lambda repo: storage.delivered(repo.conn, pk, through, moment, hold)
        )

    async def _next_events(self, state: Delivery, backlog: list[Event]) -> list[Event]:
        """The events of the next notification, taken from `backlog` (read ahead as needed)."""
        if not backlog:
            since, until = state.delivered_through + 1, state.events_total
            async with self._store.reading(THE_NOTIFIER) as repository:
                backlog += await events_of(repository, state.pk, since, until, READ_AHEAD)
        wanted = state.channel.get("max_count") or DEFAULT_MAX_COUNT
        taken = backlog[:wanted]
        del backlog[:wanted]
        return taken

    async def _send(self, state: Delivery, backlog: list[Event]) -> int:
        """POST the handshake, the next events or a heartbeat; the last event number sent."""
        kind, events = "heartbeat", list[Event]()
        if state.status == "requested":
            kind = "handshake"
        elif state.events_total > state.delivered_through:
            kind = "event-notification"
            events = await self._next_events(state, backlog)
        bodies: dict[str, bytes] = {}
        if events and state.channel.get("content") == "full-resource":
            references = notifications.focus_references(events)
            bodies = await visible_bodies(self._store, state, references)
        body = notifications.notification(self._base, self._vocabulary, state, kind, events, bodies)
        assert state.endpoint is not None
        if self._client is None:
            self._client = sending.client()
        networks = self._vocabulary.private_networks
        headers = state.channel.get("headers") or []
        await sending.post(
            self._client, state.endpoint, body, headers, networks, self._timeout(state)
        )
        return events[-1].number if events else state.delivered_through

    async def _failed(self, state: Delivery, reason: str) -> None:
        failures = state.failures + 1
        delay = min(
            self._settings.notify_retry_max_seconds,
            self._settings.notify_retry_seconds * 2 ** (failures - 1),
        )
        retry_at = now_micros() + int(delay * random.uniform(0.5, 1.0) * MICROS)  # noqa: S311
        await self._store.write(
            THE_NOTIFIER,
            lambda repo: storage.failed(repo.conn, state.pk, failures, retry_at, reason),
        )
        if failures >= self._settings.notify_max_failures:
            await self._status(state, "error", f"{failures} deliveries in a row failed: {reason}")

    async def _status(self, state: Delivery, status: str, error: str | None = None) -> None:
        await set_status(self._store, self._vocabulary, self._base, state.logical_id, status, error)

    def _timeout(self, state: Delivery) -> float:
        asked = state.channel.get("timeout")
        limit = self._settings.notify_timeout_seconds
        return float(min(asked, limit)) if asked else limit


async def _dispatch(repository: Repository) -> int:
    """Number a batch of notifications, if this is the one dispatcher now."""
    if not await storage.become_dispatcher(repository.conn):
        return 0
    return await storage.dispatch(repository.conn, DISPATCH_BATCH)
