"""Read, vread, history and search: the read side of the interactions.

Spec: http://hl7.org/fhir/R4/http.html#read, #vread, #history, #search
"""

from app.access import Caller
from app.errors import Gone, NotFound
from app.storage import query as sq
from app.storage import repository as repo
from app.storage.db import Connection, Row


async def read(
    conn: Connection, caller: Caller, resource_type: str, logical_id: str
) -> repo.Current:
    """The current version; 404 if unknown, 410 if deleted."""
    current = await repo.read_current(conn, caller, resource_type, logical_id)
    if current is None:
        raise NotFound.of(f"{resource_type}/{logical_id} is not known")
    if current.deleted:
        raise Gone.of(f"{resource_type}/{logical_id} was deleted", code="deleted")
    return current


async def vread(
    conn: Connection, caller: Caller, resource_type: str, logical_id: str, version_id: int
) -> repo.Version:
    """One version; 404 if it never existed, 410 if it is a deletion."""
    version = await repo.read_version(conn, caller, resource_type, logical_id, version_id)
    if version is None:
        raise NotFound.of(f"{resource_type}/{logical_id}/_history/{version_id} is not known")
    if version.body is None:
        raise Gone.of(f"{resource_type}/{logical_id} was deleted at version {version_id}")
    return version


async def history(
    conn: Connection,
    caller: Caller,
    *,
    resource_type: str | None = None,
    logical_id: str | None = None,
    since: int | None = None,
    before_seq: int | None = None,
    count: int,
) -> list[repo.Version]:
    """Versions newest first; an unknown instance is 404."""
    if logical_id is not None and resource_type is not None:
        current = await repo.read_current(conn, caller, resource_type, logical_id)
        if current is None:
            raise NotFound.of(f"{resource_type}/{logical_id} is not known")
    return await repo.history(
        conn,
        caller,
        resource_type=resource_type,
        logical_id=logical_id,
        since=since,
        before_seq=before_seq,
        count=count,
    )


async def search(conn: Connection, caller: Caller, query: sq.Query) -> list[Row]:
    """Live resources matching every criterion, as (pk, logical_id, body)."""
    return await sq.search(conn, caller, query)
