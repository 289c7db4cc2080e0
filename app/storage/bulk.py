"""Bulk load: many new resources straight into the tables, a batch per transaction.

Each resource gets exactly the rows a create writes (`repository.save`): version 1 in
`resource` and `resource_version` (method POST), its index rows, the NHS numbers a Patient
claims, and the Organizations it makes responsible for its child (`child_authority`).
Nothing is checked (no rules, no reference checks, no uniqueness beyond the tables'
keys): the caller supplies valid, normalised resources whose references already hold, with
ids of its own if it wants to refer to them before loading. PostgreSQL gets each table by
COPY on a connection of its own; SQLite gets one `executemany` per table on its own
connection. Meant for test and benchmark populations.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import asyncpg

from app.access import SYSTEM, Caller
from app.clock import now_micros
from app.ids import new_logical_id
from app.storage.db import asyncpg_dsn, connect_sqlite, sqlite_path
from app.storage.indexer import derive
from app.storage.repository import stamp
from app.storage.writes import INDEX_KINDS, NewVersion

ClaimedNumbers = Callable[[dict[str, Any]], Iterable[str]]
# A resource -> (the resource as its writer writes it, its author, the Organizations it makes
# responsible for its child): the domain's rules, given by the caller of `bulk_load`.
WrittenAs = Callable[[dict[str, Any]], tuple[dict[str, Any], str | None, tuple[str, ...]]]


def _as_is(resource: dict[str, Any]) -> tuple[dict[str, Any], str | None, tuple[str, ...]]:
    return resource, None, ()


Record = tuple[Any, ...]

RESOURCE_COLUMNS = (
    "pk",
    "resource_type",
    "logical_id",
    "version_id",
    "last_updated",
    "deleted",
    "body",
    "patient_id",
    "owner_org",
    "author_org",
    "restricted",
)
VERSION_COLUMNS = (
    "resource_type",
    "logical_id",
    "version_id",
    "last_updated",
    "method",
    "body",
    "patient_id",
    "author_org",
    "restricted",
    "client_id",
    "client_org",
)
CLAIM_COLUMNS = ("nhs_number", "resource_pk")
# The child's responsible Organizations that a batch (pks {first}..{last}) names, as a create
# keeps them (`outbox`): one row per pair, whichever batch named it first.
_AUTHORITIES = (
    "INSERT INTO child_authority (patient_id, organisation) SELECT DISTINCT g.patient_id, "
    "x.target_id FROM resource g JOIN idx_reference x ON x.resource_pk = g.pk WHERE g.pk "
    "BETWEEN {first} AND {last} AND x.param = '_responsible' AND x.target_type = 'Organization' "
    "AND g.patient_id IS NOT NULL AND g.resource_type IN ('Flag', 'Patient') "
    "ON CONFLICT DO NOTHING"
)


@dataclass(slots=True)
class Batch:
    """One batch's rows, by table: the columns, then the records."""

    tables: dict[str, tuple[tuple[str, ...], list[Record]]] = field(default_factory=dict)

    def add(self, table: str, columns: tuple[str, ...], records: Iterable[Record]) -> None:
        """Append records to a table's rows."""
        self.tables.setdefault(table, (columns, []))[1].extend(records)


def new_version(
    resource: dict[str, Any],
    logical_id: str,
    base_url: str,
    caller: Caller,
    written_as: WrittenAs = _as_is,
) -> NewVersion:
    """Version 1 of a resource, derived exactly as `repository.save` derives a create."""
    micros = now_micros()
    resource, author_org, responsible = written_as(resource)
    derived = derive(resource, logical_id, base_url, author_org, responsible)
    return NewVersion(
        resource_type=resource["resourceType"],
        logical_id=logical_id,
        version_id=1,
        last_updated=micros,
        method="POST",
        body=stamp(resource, logical_id, 1, micros),
        patient_id=derived.patient_id,
        owner_org=caller.organisation,
        author_org=derived.author_org or caller.organisation,
        restricted=derived.restricted,
        client_id=caller.subject,
        client_org=caller.organisation,
        index=derived.index,
    )


def batch_rows(
    news: Sequence[NewVersion], pks: Sequence[int], claims: Sequence[Iterable[str]]
) -> Batch:
    """Every row a batch of new resources (with their pks and NHS number claims) writes."""
    batch = Batch()
    owned = [(n.patient_id, n.owner_org, n.author_org, n.restricted) for n in news]
    stamped = [(n.resource_type, n.logical_id, n.version_id, n.last_updated) for n in news]
    resources = zip(pks, stamped, news, owned, strict=True)
    rows = ((pk, *version, False, n.body, *owners) for pk, version, n, owners in resources)
    batch.add("resource", RESOURCE_COLUMNS, rows)
    versions = zip(stamped, news, owned, strict=True)
    histories = (
        (*version, n.method, n.body, who[0], who[2], who[3], n.client_id, n.client_org)
        for version, n, who in versions
    )
    batch.add("resource_version", VERSION_COLUMNS, histories)
    for kind, (table, columns, _) in INDEX_KINDS.items():
        names = ("resource_pk", "param", *columns)
        for n, pk in zip(news, pks, strict=True):
            batch.add(table, names, ((pk, *row) for row in getattr(n.index, kind)))
    for numbers, pk in zip(claims, pks, strict=True):
        batch.add("nhs_number_claim", CLAIM_COLUMNS, ((number, pk) for number in numbers))
    return batch


def _chunks(resources: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    items = iter(resources)
    while chunk := list(islice(items, size)):
        yield chunk


def _prepare(
    chunk: list[dict[str, Any]],
    base_url: str,
    caller: Caller,
    claimed: ClaimedNumbers,
    written_as: WrittenAs,
) -> tuple[list[NewVersion], list[list[str]]]:
    """The new versions of a chunk and each one's NHS number claims (Patients only)."""
    news = [
        new_version(r, r.get("id") or new_logical_id(), base_url, caller, written_as) for r in chunk
    ]
    claims = [sorted(set(claimed(r))) for r in chunk]
    return news, claims


async def bulk_load(
    url: str,
    resources: Iterable[dict[str, Any]],
    base_url: str,
    *,
    claimed_numbers: ClaimedNumbers,
    written_as: WrittenAs = _as_is,
    caller: Caller = SYSTEM,
    batch: int = 5000,
) -> list[str]:
    """Load new resources into the database at `url`; their ids, in order.

    `claimed_numbers` gives the NHS numbers a resource claims and `written_as` the resource
    as `caller` writes it, its author and the Organizations it makes responsible for its child
    (the rules live in the domain packages);
    each batch commits on its own, so a failure leaves the earlier batches loaded.
    """
    chunks = (
        _prepare(c, base_url, caller, claimed_numbers, written_as)
        for c in _chunks(resources, batch)
    )
    if url.startswith("postgres"):
        return await _load_postgres(asyncpg_dsn(url), chunks)
    if url.startswith("sqlite"):
        return _load_sqlite(sqlite_path(url), chunks)
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")


Chunks = Iterable[tuple[list[NewVersion], list[list[str]]]]


async def _load_postgres(dsn: str, chunks: Chunks) -> list[str]:
    """COPY each batch's rows, pks reserved from the resource table's sequence."""
    ids: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        sequence = await conn.fetchval("SELECT pg_get_serial_sequence('resource', 'pk')")
        for news, claims in chunks:
            async with conn.transaction():
                reserved = await conn.fetch(
                    "SELECT nextval($1::regclass) FROM generate_series(1, $2)", sequence, len(news)
                )
                pks = [row[0] for row in reserved]
                for table, (columns, records) in batch_rows(news, pks, claims).tables.items():
                    if records:
                        await conn.copy_records_to_table(table, records=records, columns=columns)
                if pks:
                    await conn.execute(_AUTHORITIES.format(first=pks[0], last=pks[-1]))
            ids.extend(n.logical_id for n in news)
    finally:
        await conn.close()
    return ids


def _load_sqlite(path: str, chunks: Chunks) -> list[str]:
    """Insert each batch's rows with explicit pks after the largest, under the write lock."""
    ids: list[str] = []
    conn = connect_sqlite(path)
    try:
        for news, claims in chunks:
            conn.execute("BEGIN IMMEDIATE")
            try:
                (last,) = conn.execute("SELECT COALESCE(MAX(pk), 0) FROM resource").fetchone()
                pks = range(last + 1, last + 1 + len(news))
                for table, (columns, records) in batch_rows(news, pks, claims).tables.items():
                    marks = ", ".join("?" * len(columns))
                    conn.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                        records,
                    )
                if pks:
                    conn.execute(_AUTHORITIES.format(first=pks[0], last=pks[-1]))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            ids.extend(n.logical_id for n in news)
    finally:
        conn.close()
    return ids
