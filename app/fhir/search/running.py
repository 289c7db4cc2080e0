"""The search interaction: parameters -> storage query -> page, includes, total -> Bundle.

Spec: http://hl7.org/fhir/R4/http.html#search, http://hl7.org/fhir/R4/search.html
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.access.visibility import finding_by_nhs_number
from app.criteria import Query, SortKey
from app.errors import Invalid, Issue
from app.fhir import auditing, elements, presence, sightings, wire
from app.fhir.bundles import assembly as bundles
from app.fhir.context import AppContext, app_context
from app.fhir.search import options as search_options
from app.fhir.search import parsing as search
from app.fhir.search.options import Include
from app.records import reads
from app.records.reads import Fitted, Included, Match, Repository
from app.registry import RESOURCE_TYPES, RESULT_PARAMS
from app.settings import Settings

# The result parameters a page's links repeat (the cursor is each link's own).
SHAPING = RESULT_PARAMS - {"_format", "_pretty", "_cursor", "_contained"}


@dataclass(frozen=True, slots=True)
class Page:
    """One page of matches, whether pages lie before and after it, and whether it stopped
    short of `_count` at `max_response_bytes`."""

    rows: list[Match]
    before: bool
    after: bool
    cut: bool = False


def _page(
    found: Fitted[Match], count: int, cursor: tuple[Any, ...] | None, backwards: bool
) -> Page:
    """The page of `count` matches (read with one more, to know whether more follow), or of
    fewer if their bodies did not fit: its links then go on after the last one shown."""
    shown = min(len(found.rows), count)
    more = found.read > shown
    cut = shown < min(found.read, count)
    if backwards:
        return Page(found.rows[len(found.rows) - shown :], more, True, cut)
    return Page(found.rows[:shown], cursor is not None, more, cut)


async def _total(
    repository: Repository, query: Query, mode: str | None, page: Page, first_page: bool
) -> int | None:
    if mode == "accurate":
        return await reads.count(repository, query)
    if mode == "estimate":
        return await reads.estimate(repository, query)
    if mode is None and first_page and not page.after:
        return len(page.rows)
    return None


async def _included(
    repository: Repository,
    settings: Settings,
    resource_type: str,
    page: Page,
    wanted: tuple[Include, ...],
    still_there: Callable[[], Awaitable[None]],
) -> tuple[list[Included], str | None]:
    """Resources `_include`d and `_revinclude`d for a page: each once, never a match; and
    why they were cut off, if they were (`max_included` resources, or `max_response_bytes`
    for the page and its includes together). `:iterate` rounds stop if the client has gone."""
    if not wanted:
        return [], None
    seen = {(resource_type, match.logical_id) for match in page.rows}
    found: list[Included] = []
    frontier = [(match.pk, resource_type, match.logical_id) for match in page.rows]
    room_bytes = settings.max_response_bytes - sum(len(match.body) for match in page.rows)
    for depth in range(settings.include_depth):
        if depth:
            await still_there()
        rules = [i for i in wanted if depth == 0 or i.iterate]
        fresh: list[Included] = []
        for rule in rules:
            room = settings.max_included - len(found) - len(fresh)
            if room <= 0:
                return found + fresh, f"{settings.max_included} resources"
            for row in await _apply(repository, rule, frontier, room):
                if (row.resource_type, row.logical_id) in seen:
                    continue
                room_bytes -= len(row.body)
                if room_bytes < 0:
                    return found + fresh, f"{settings.max_response_bytes} bytes"
                seen.add((row.resource_type, row.logical_id))
                fresh.append(row)
        if not fresh:
            break
        found += fresh
        frontier = [(row.pk, row.resource_type, row.logical_id) for row in fresh]
    return found, None


async def _apply(
    repository: Repository, rule: Include, frontier: list[tuple[int, str, str]], room: int
) -> list[Included]:
    if not rule.reverse:
        pks = [pk for pk, rtype, _ in frontier if rule.source_type in ("*", rtype)]
        params = None if rule.param is None else [rule.param]
        return await reads.referenced(repository, pks, params, rule.target_type, room)
    rows: list[Included] = []
    for source, param in _reverse_pairs(rule):
        targets = [(t, i) for _, t, i in frontier if rule.target_type in (None, t)]
        wanted = [(t, i) for t, i in targets if t in RESOURCE_TYPES[source].params[param].targets]
        if wanted:
            rows += await reads.referencing(repository, wanted, source, param, room - len(rows))
    return rows


def _reverse_pairs(rule: Include) -> list[tuple[str, str]]:
    if rule.param is not None:
        return [(rule.source_type, rule.param)]
    return [
        (rtype.name, param.name)
        for rtype in RESOURCE_TYPES.values()
        for param in rtype.params.values()
        if param.type == "reference"
    ]


@dataclass(frozen=True, slots=True)
class Options:
    """The result-shaping parameters of one search."""

    count: int
    sort: tuple[SortKey, ...]
    total: str | None
    summary: str | None
    elements: tuple[str, ...] | None
    includes: tuple[Include, ...]
    cursor: tuple[tuple[Any, ...], bool] | None


def _options(context: AppContext, resource_type: str, pairs: list[tuple[str, str]]) -> Options:
    settings = context.settings
    first = {k: v for k, v in reversed(pairs)}
    sort = search_options.sort_keys(first.get("_sort"), resource_type)
    count = search_options.page_size(
        first.get("_count"),
        settings.default_page_size,
        settings.max_page_size,
        settings.count_over_max == "refuse",
    )
    return Options(
        count=count,
        sort=sort,
        total=search_options.total_mode(first.get("_total")),
        summary=elements.parse_summary(first.get("_summary")),
        elements=elements.parse_elements([v for k, v in pairs if k == "_elements"]),
        includes=search_options.includes(pairs),
        cursor=search_options.decode_cursor(first.get("_cursor"), sort),
    )


async def run(
    request: Request,
    resource_type: str,
    pairs: list[tuple[str, str]],
    path: str,
    compartment: str | None = None,
) -> Response:
    """Answer a search of `resource_type` (in a Patient's compartment if given)."""
    async with app_context(request).searching(request) as repository:
        body = await searchset(repository, request, resource_type, pairs, path, compartment)
    await sightings.tell(request)
    return wire.json_response(request, body)


@dataclass(slots=True)
class Found:
    """What a search found: the page, what it includes, the total if known, and warnings."""

    page: Page
    included: list[Included]
    total: int | None
    warnings: list[Issue]


async def searchset(
    repository: Repository,
    request: Request,
    resource_type: str,
    pairs: list[tuple[str, str]],
    path: str,
    compartment: str | None = None,
) -> bytes:
    """The searchset Bundle of a search, read through `repository` (in a transaction Bundle,
    the Bundle's own)."""
    context = app_context(request)
    parsed = search.parse(resource_type, pairs, context.base)
    if parsed.ignored and wire.prefer(request, "handling") == "strict":
        raise Invalid.strictly(parsed.ignored)
    opts = _options(context, resource_type, pairs)
    after, backwards = opts.cursor if opts.cursor else (None, False)
    criteria, count = parsed.criteria, opts.count + 1
    query = Query(resource_type, criteria, count, opts.sort, after, backwards, None, compartment)
    matching = finding_by_nhs_number(repository.caller, resource_type, criteria, compartment)
    found = await _find(
        repository._replace(caller=matching),
        repository,
        context.settings,
        query,
        opts,
        lambda: presence.still_there(request),
    )
    auditing.searched(request, resource_type, pairs, context.base, compartment)
    auditing.held_data_of(request, (row.patient_id for row in found.page.rows))
    auditing.held_data_of(request, (row.patient_id for row in found.included))
    if resource_type == "Flag":
        sightings.saw_flags_of(request, (row.patient_id for row in found.page.rows))
    flags = (row.patient_id for row in found.included if row.resource_type == "Flag")
    sightings.saw_flags_of(request, flags)
    return bundles.searchset(
        context.base,
        resource_type,
        found.page.rows,
        found.included,
        links=_links(context.base, path, parsed, pairs, opts, found.page),
        total=found.total,
        warnings=[*parsed.ignored, *found.warnings],
        shape=lambda b, main: _shape(b, opts, main),
    )


async def _find(
    matching: Repository,
    repository: Repository,
    settings: Settings,
    query: Query,
    opts: Options,
    still_there: Callable[[], Awaitable[None]],
) -> Found:
    """The page of `query` (none for a count alone), its includes and its total; matches are
    read through `matching`, includes through `repository` (access.visibility)."""
    if opts.summary == "count" or opts.count == 0:
        return Found(Page([], False, False), [], await reads.count(matching, query), [])
    found = await reads.search(matching, query, settings.max_response_bytes)
    page = _page(found, opts.count, query.after, query.backwards)
    included, cut_at = await _included(
        repository, settings, query.resource_type, page, opts.includes, still_there
    )
    warnings = []
    if page.cut:
        cut = (
            f"the page was cut short at {settings.max_response_bytes} bytes "
            "(SAFEGUARD_MAX_RESPONSE_BYTES): its next link goes on after its last match"
        )
        warnings.append(Issue(cut, "too-costly", severity="warning"))
    if cut_at is not None:
        cut = f"included resources were cut off at {cut_at}"
        warnings.append(Issue(cut, "too-costly", severity="warning"))
    total = await _total(matching, query, opts.total, page, query.after is None)
    return Found(page, included, total, warnings)


def _shape(body: bytes, opts: Options, main: bool) -> bytes:
    return elements.shape_bytes(
        body, summary=opts.summary, elements=opts.elements if main else None
    )


def _links(
    base: str,
    path: str,
    parsed: search.ParsedSearch,
    pairs: list[tuple[str, str]],
    opts: Options,
    page: Page,
) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in pairs if k in SHAPING and k != "_count"]
    applied = [*parsed.applied, *kept, ("_count", str(opts.count))]
    links = [("self", bundles.page_url(base, path, [*applied, *_cursor_pair(pairs)]))]
    links.append(("first", bundles.page_url(base, path, applied)))
    if page.rows and page.before:
        cursor = search_options.encode_cursor(page.rows[0].keys, True, opts.sort)
        links.append(("previous", bundles.page_url(base, path, [*applied, ("_cursor", cursor)])))
    if page.rows and page.after:
        cursor = search_options.encode_cursor(page.rows[-1].keys, False, opts.sort)
        links.append(("next", bundles.page_url(base, path, [*applied, ("_cursor", cursor)])))
    return links


def _cursor_pair(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in pairs if k == "_cursor"][:1]
