"""Idempotent retries: a write sent again with the same X-Request-ID gets the first answer.

Only a UUID X-Request-ID makes a write idempotent (other values are just traced). The first
2xx answer to a (client, request id) is stored in the write's own transaction, and for
`idempotency_window_seconds` a request with that id gets it back without writing again; the
same id on a different request (method, URL or body) is 422. The id is claimed (its row
inserted) before the write runs, so of concurrent first attempts one writes: the others'
claims wait for it, fail on the primary key once it commits, and are retried by
`AppContext.write`, which then replays its answer. (Claiming after the write would let a
loser's write fail first, on a rule such as a Patient's NHS number held by the winner.)
Spec: http://hl7.org/fhir/R4/http.html#custom (X-Request-Id); the pattern is that of
https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/
"""

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response

from app import metrics
from app.clock import now_micros
from app.errors import Contention, Unprocessable
from app.fhir import wire
from app.fhir.context import AppContext
from app.records import answers
from app.records.reads import Repository

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
PURGE_INTERVAL = 60.0  # seconds between purges of expired records, per process
PURGE_LIMIT = 1000  # records removed by one purge at most
IN_PROGRESS = 0  # the status of a claimed id whose answer is not stored yet
ABANDONED = 600 * 1_000_000  # microseconds after which an unanswered batch claim is dropped


@dataclass(slots=True)
class _PurgeClock:
    """When this process next removes expired records (on storing a new one)."""

    due: float = 0.0

    def take(self) -> bool:
        """Whether a purge is due now; if so the next one is an interval away."""
        now = time.monotonic()
        if now < self.due:
            return False
        self.due = now + PURGE_INTERVAL
        return True


_purge_clock = _PurgeClock()


def request_id(request: Request) -> str | None:
    """The request's X-Request-ID (lower case) if it is a UUID, else None."""
    value = request.headers.get("x-request-id")
    if value is None or not _UUID.fullmatch(value):
        return None
    return value.lower()


async def _fingerprint(request: Request, context: AppContext) -> str:
    """sha256 of the method, path, query string and raw body, each length-prefixed."""
    body = await wire.sized_body(request, context.settings.max_body_bytes)
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), request.scope["query_string"]):
        digest.update(len(part).to_bytes(8, "big") + part)
    digest.update(body)
    return digest.hexdigest()


def _record(fingerprint: str, response: Response) -> answers.Record:
    headers = [
        [name.decode("latin-1"), value.decode("latin-1")] for name, value in response.raw_headers
    ]
    body = bytes(response.body)
    return answers.Record(fingerprint, response.status_code, orjson.dumps(headers).decode(), body)


def _replayed(record: answers.Record) -> Response:
    metrics.IDEMPOTENT_REPLAYS.inc()
    response = Response(record.body, status_code=record.status)
    response.raw_headers = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in orjson.loads(record.headers)
    ]
    return response


def _window(context: AppContext) -> int:
    return context.settings.idempotency_window_seconds * 1_000_000


async def _recall(
    repository: Repository, key: str, fingerprint: str, window: int
) -> Response | None:
    """The stored answer to `key` if it is still kept; an expired one is removed."""
    record = await answers.find(repository, key)
    if record is None:
        return None
    age = now_micros() - record.created_at
    if age >= window or (record.status == IN_PROGRESS and age >= ABANDONED):
        await answers.forget(repository, key)
        return None
    if record.status == IN_PROGRESS:  # a batch claimed it and is still running
        raise Contention.of(
            f"the request with X-Request-ID {key} is still being processed; retry it later",
            "X-Request-ID",
        )
    if record.fingerprint != fingerprint:
        raise Unprocessable.of(
            f"X-Request-ID {key} was already used for a different request "
            "(method, URL or body); send a new id for a new request",
            "X-Request-ID",
        )
    return _replayed(record)


async def _purge_if_due(repository: Repository, window: int) -> None:
    """Drop expired records now and then; while a purge finds a full batch, the next write
    purges again, so the log keeps pace with any rate of writes."""
    if not _purge_clock.take():
        return
    if await answers.purge(repository, now_micros() - window, PURGE_LIMIT) >= PURGE_LIMIT:
        _purge_clock.due = 0.0


def _succeeded(response: Response) -> bool:
    return 200 <= response.status_code < 300


async def write_once(
    request: Request,
    context: AppContext,
    work: Callable[[Repository], Awaitable[Response]],
) -> Response:
    """Run `work` (which renders the response) in one write transaction, once per request id."""
    key = request_id(request)
    if key is None:
        return await context.write(request, work)
    fingerprint, window = await _fingerprint(request, context), _window(context)

    async def once(repository: Repository) -> Response:
        # The look-up is the first statement, so the claim and the write share one explicit
        # transaction (PostgreSQL's BEGIN waits for the first statement).
        replayed = await _recall(repository, key, fingerprint, window)
        if replayed is not None:
            return replayed
        await answers.claim(repository, key, fingerprint)
        response = await work(repository)
        if not _succeeded(response):
            await answers.forget(repository, key)
            return response
        await answers.complete(repository, key, _record(fingerprint, response))
        await _purge_if_due(repository, window)
        return response

    return await context.write(request, once)


async def batch_once(
    request: Request,
    context: AppContext,
    run: Callable[[], Awaitable[Response]],
) -> Response:
    """A batch Bundle once per request id. Its entries commit one by one, so the id is claimed
    in a transaction of its own first: a duplicate sent meanwhile is 409 (retry later), one
    sent afterwards gets the stored answer."""
    key = request_id(request)
    if key is None:
        return await run()
    fingerprint, window = await _fingerprint(request, context), _window(context)

    async def claim(repository: Repository) -> Response | None:
        replayed = await _recall(repository, key, fingerprint, window)
        if replayed is None:
            await answers.claim(repository, key, fingerprint)
        return replayed

    replayed = await context.write(request, claim)
    if replayed is not None:
        return replayed
    try:
        response = await run()
    except BaseException:
        await context.write(request, lambda repository: answers.forget(repository, key))
        raise
    if _succeeded(response):
        record = _record(fingerprint, response)
        await context.write(request, lambda repository: answers.complete(repository, key, record))
    else:
        await context.write(request, lambda repository: answers.forget(repository, key))
    return response
