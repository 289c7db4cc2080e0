"""An auditor's search of the trail, run: chains resolved, one page read on its keyset, the
total if asked, then a searchset Bundle of the AuditEvents as stored, with self, first,
previous and next links. Newest first unless `_sort=date`.

Spec: http://hl7.org/fhir/R4/http.html#search, http://hl7.org/fhir/R4/search.html#return
"""

from dataclasses import dataclass, replace
from typing import Any

from starlette.requests import Request

from app.access import Caller
from app.access.trail import trail_of
from app.audit.chain import seal_pending
from app.audit.search import AuditSearch, Identifier, parse
from app.criteria import SortKey
from app.errors import Invalid
from app.fhir import auditing, elements, wire
from app.fhir.bundles import assembly as bundles
from app.fhir.context import app_context
from app.fhir.search import options as search_options
from app.records.reads import Match
from app.registry.audit import AUDIT_EVENT
from app.settings import Settings
from app.storage import audit_search as storage
from app.storage.audit_search import AuditMatch, AuditQuery, LinkTest
from app.storage.db import Connection

SORTS = {"date": False, "-date": True}  # `_sort` -> descending
KEPT = ("_sort", "_total", "_summary")  # result parameters each link repeats
MAX_PATIENTS = 1000  # Patients one patient.identifier value may resolve to


def clients_system(canonical_base: str) -> str:
    """The identifier system of this server's clients, as AuditEvent agents carry them."""
    return f"{canonical_base}/clients"


@dataclass(frozen=True, slots=True)
class Options:
    """The result parameters of one search."""

    count: int
    descending: bool
    total: str | None
    summary: str | None
    cursor: tuple[tuple[Any, ...], bool] | None

    @property
    def sort(self) -> tuple[SortKey, ...]:
        """The sort a cursor is issued under."""
        return (SortKey("date", "date", self.descending),)


def options(settings: Settings, pairs: list[tuple[str, str]]) -> Options:
    """`_count`, `_sort`, `_total`, `_summary` and `_cursor`, each checked (400 otherwise)."""
    first = {k: v for k, v in reversed(pairs)}
    raw_sort = first.get("_sort", "-date")
    if raw_sort not in SORTS:
        raise Invalid.of(f"_sort: {AUDIT_EVENT} sorts by date or -date only", "_sort")
    summary = elements.parse_summary(first.get("_summary"))
    if summary not in (None, "false", "count"):
        raise Invalid.of(f"_summary={summary} is not supported on {AUDIT_EVENT}", "_summary")
    count = search_options.page_size(
        first.get("_count"),
        settings.default_page_size,
        settings.max_page_size,
        settings.count_over_max == "refuse",
    )
    sort = (SortKey("date", "date", SORTS[raw_sort]),)
    return Options(
        count=count,
        descending=SORTS[raw_sort],
        total=search_options.total_mode(first.get("_total")),
        summary=summary,
        cursor=search_options.decode_cursor(first.get("_cursor"), sort),
    )


async def resolve(conn: Connection, identifiers: tuple[Identifier, ...]) -> tuple[LinkTest, ...]:
    """The Patients that hold or held any of these identifiers, live, changed or deleted, as
    patient links (none: a group that never holds)."""
    ids: dict[str, None] = {}
    for identifier in identifiers:
        for patient_id, body in await storage.patient_versions_holding(conn, identifier.value):
            if patient_id not in ids and identifier.held_by(body):
                ids[patient_id] = None
    if len(ids) > MAX_PATIENTS:
        raise Invalid.of(
            f"patient.identifier matches more than {MAX_PATIENTS} Patients", code="too-costly"
        )
    return tuple(LinkTest("patient", f"Patient/{patient_id}") for patient_id in ids)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of AuditEvents, whether pages lie before and after it, and the total."""

    rows: list[AuditMatch]
    before: bool
    after: bool
    total: int | None


async def _page(conn: Connection, caller: Caller, query: AuditQuery, opts: Options) -> Page:
    if opts.summary == "count" or opts.count == 0:
        return Page([], False, False, await storage.count(conn, caller, query))
    rows = await storage.search(conn, caller, query)
    more = len(rows) > opts.count
    if query.backwards:
        page = Page(rows[-opts.count :] if more else rows, more, True, None)
    else:
        page = Page(rows[: opts.count], query.after is not None, more, None)
    if opts.total == "accurate":
        return replace(page, total=await storage.count(conn, caller, query))
    if opts.total == "estimate":
        return replace(page, total=await storage.estimate(conn, caller, query))
    if opts.total is None and query.after is None and not page.after:
        return replace(page, total=len(page.rows))
    return page


async def searchset(request: Request, caller: Caller, pairs: list[tuple[str, str]]) -> bytes:
    """The searchset Bundle of an auditor's search (http://hl7.org/fhir/R4/search.html)."""
    context = app_context(request)
    settings = context.settings
    found = parse(pairs, context.base, clients_system(settings.canonical_base))
    if found.ignored and wire.prefer(request, "handling") == "strict":
        raise Invalid.strictly(found.ignored)
    opts = options(settings, pairs)
    after, backwards = opts.cursor if opts.cursor else (None, False)
    await seal_pending(context.store.db)  # every committed record linked, so findable
    async with context.store.db.searcher() as conn:
        chains = [await resolve(conn, group) for group in found.identifiers]
        query = AuditQuery(
            links=(*found.links, *chains),
            columns=tuple(found.columns),
            dates=tuple(found.dates),
            count=opts.count + 1,
            descending=opts.descending,
            after=(after[0], after[1]) if after else None,
            backwards=backwards,
        )
        page = await _page(conn, caller, query, opts)
    _note(request, pairs, context.base, [*found.patients, *_patients(chains)])
    return bundles.searchset(
        context.base,
        AUDIT_EVENT,
        [Match(row.pk, row.id, row.body, (row.recorded, row.pk)) for row in page.rows],
        [],
        links=_links(context.base, found, pairs, opts, page),
        total=page.total,
        warnings=found.ignored,
        shape=lambda body, _: body,
    )


def _patients(chains: list[tuple[LinkTest, ...]]) -> list[str]:
    return [t.value.split("/", 1)[1] for group in chains for t in group if t.value is not None]


def _note(request: Request, pairs: list[tuple[str, str]], base: str, patients: list[str]) -> None:
    """The query, and each Patient it asks after, in the auditor's own AuditEvent."""
    auditing.searched(request, AUDIT_EVENT, pairs, base)
    trail = trail_of(request.scope)
    if trail is not None:
        for patient_id in patients:
            trail.named(patient_id)


def _links(
    base: str, found: AuditSearch, pairs: list[tuple[str, str]], opts: Options, page: Page
) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in pairs if k in KEPT]
    applied = [*found.applied, *kept, ("_count", str(opts.count))]
    cursor = [(k, v) for k, v in pairs if k == "_cursor"][:1]
    links = [("self", bundles.page_url(base, AUDIT_EVENT, [*applied, *cursor]))]
    links.append(("first", bundles.page_url(base, AUDIT_EVENT, applied)))
    for relation, row, backwards, shown in (
        ("previous", page.rows[:1], True, page.before),
        ("next", page.rows[-1:], False, page.after),
    ):
        if row and shown:
            mark = search_options.encode_cursor((row[0].recorded, row[0].pk), backwards, opts.sort)
            links.append(
                (relation, bundles.page_url(base, AUDIT_EVENT, [*applied, ("_cursor", mark)]))
            )
    return links
