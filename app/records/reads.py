"""The read interactions, for every resource type, on a caller's repository: read, vread,
history, search, its count, and what to include beside a page of matches. What the caller may
not see is answered as if it did not exist.

Spec: http://hl7.org/fhir/R4/http.html#read, #vread, #history, #search
"""

from collections.abc import Sequence

from app.criteria import Query
from app.errors import Gone, NotFound
from app.storage import changes, feed, includes, query
from app.storage import repository as storage
from app.storage.budgeted import Fitted
from app.storage.changes import Mark
from app.storage.includes import Included
from app.storage.query import Match
from app.storage.repository import Current, Repository, Version

__all__ = [
    "Current",
    "Fitted",
    "Included",
    "Mark",
    "Match",
    "Repository",
    "Version",
    "count",
    "estimate",
    "history",
    "read",
    "referenced",
    "referencing",
    "search",
    "vread",
]


async def read(repository: Repository, resource_type: str, logical_id: str) -> Current:
    """The current version; 404 if unknown, 410 if deleted."""
    current = await storage.read_current(repository, resource_type, logical_id)
    if current is None:
        raise NotFound.of(f"{resource_type}/{logical_id} is not known")
    if current.deleted:
        raise Gone.of(f"{resource_type}/{logical_id} was deleted", code="deleted")
    return current


async def vread(
    repository: Repository, resource_type: str, logical_id: str, version_id: int
) -> Version:
    """One version; 404 if it never existed, 410 if it is a deletion."""
    version = await storage.read_version(repository, resource_type, logical_id, version_id)
    if version is None:
        raise NotFound.of(f"{resource_type}/{logical_id}/_history/{version_id} is not known")
    if version.body is None:
        raise Gone.of(f"{resource_type}/{logical_id} was deleted at version {version_id}")
    return version


async def history(
    repository: Repository,
    *,
    resource_types: Sequence[str] | None = None,
    logical_id: str | None = None,
    since: int | None = None,
    after: Mark | None = None,
    count: int,
    max_bytes: int,
) -> tuple[Fitted[Version], Mark]:
    """Changes newest first (versions, their bodies within `max_bytes`, and deletions for what
    writes have hidden from the caller: `storage.changes`), and the page's mark (its first
    page's watermark, `app.storage.feed`); an unknown instance is 404.

    `after` is the mark of the page before; the first page takes its point first
    (`feed.poll_point`: never before its own `_since`, so a client's polls never go back over
    what it has received).
    """
    if logical_id is not None and resource_types is not None:
        found = await storage.read_current(repository, resource_types[0], logical_id)
        if found is None:
            raise NotFound.of(f"{resource_types[0]}/{logical_id} is not known")
    mark = after or Mark(await feed.poll_point(repository.conn, since))
    found_versions = await changes.history(
        repository,
        resource_types=resource_types,
        logical_id=logical_id,
        since=since,
        mark=mark,
        count=count,
        max_bytes=max_bytes,
    )
    return found_versions, mark


async def search(repository: Repository, wanted: Query, max_bytes: int) -> Fitted[Match]:
    """A page of the live resources matching every criterion, in page order, their bodies
    within `max_bytes` (the first always read)."""
    return await query.search_within(repository, wanted, max_bytes)


async def count(repository: Repository, wanted: Query) -> int:
    """How many live resources match (`_total=accurate`, `_summary=count`)."""
    return await query.count(repository, wanted)


async def estimate(repository: Repository, wanted: Query) -> int:
    """About how many live resources match (`_total=estimate`)."""
    return await query.estimate(repository, wanted)


async def referenced(
    repository: Repository,
    source_pks: Sequence[int],
    params: Sequence[str] | None,
    target_type: str | None,
    limit: int,
) -> list[Included]:
    """What the resources `source_pks` reference through `params` (any, if None): _include."""
    return await includes.referenced(repository, source_pks, params, target_type, limit)


async def referencing(
    repository: Repository,
    targets: Sequence[tuple[str, str]],
    source_type: str,
    param: str,
    limit: int,
) -> list[Included]:
    """The `source_type` resources whose `param` references one of `targets`: _revinclude."""
    return await includes.referencing(repository, targets, source_type, param, limit)
