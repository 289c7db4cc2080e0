"""Answers already given: the first successful answer to each (client, X-Request-ID) of a
write, kept a while so that a retried request gets it again instead of writing twice. The
client is the repository's caller; `fhir.bundles.idempotency` decides when to use them.

Spec: http://hl7.org/fhir/R4/http.html#custom (X-Request-Id)
"""

from app.storage import request_log
from app.storage.repository import Repository
from app.storage.request_log import Record

__all__ = ["Record", "claim", "complete", "find", "forget", "purge"]


async def find(repository: Repository, request_id: str) -> Record | None:
    """The caller's record of a request id, expired or not."""
    return await request_log.find(repository, request_id)


async def claim(repository: Repository, request_id: str, fingerprint: str) -> None:
    """Take a request id before its write runs (a concurrent claim fails once this commits)."""
    await request_log.claim(repository, request_id, fingerprint)


async def complete(repository: Repository, request_id: str, record: Record) -> None:
    """Store the answer to a request id claimed in this transaction."""
    await request_log.complete(repository, request_id, record)


async def forget(repository: Repository, request_id: str) -> None:
    """Drop a request id: expired, or claimed by a write that did not succeed."""
    await request_log.forget(repository, request_id)


async def purge(repository: Repository, before: int, limit: int) -> int:
    """Drop at most `limit` records (of any client) made before `before` (microseconds);
    how many were dropped."""
    return await request_log.purge(repository, before, limit)
