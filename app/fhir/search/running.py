"""The search interaction: parameters -> storage query -> page, includes, total -> Bundle.

Spec: http://hl7.org/fhir/R4/http.html#search, http://hl7.org/fhir/R4/search.html
"""

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from app.errors import Invalid, Issue
from app.fhir import elements, wire
from app.fhir.bundles import assembly as bundles
from app.fhir.context import AppContext, app_context, caller_of
from app.fhir.search import options as search_options
from app.fhir.search import parsing as search
from app.fhir.search.options import Include
from app.registry import RESOURCE_TYPES
from app.storage import includes as inc
from app.storage import query as sq
from app.storage.db import Connection, Row

SHAPING = ("_count", "_sort", "_total", "_summary", "_elements", "_include", "_revinclude",
           "_include:iterate", "_revinclude:iterate")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Page:
    """One page of matches, and whether pages lie before and after it."""

    rows: list[Row]
    before: bool
    after: bool


def _page(rows: list[Row], count: int, cursor: tuple[Any, ...] | None, backwards: bool) -> Page:
    more = len(rows) > count
    if backwards:
        return Page(rows[-count:] if more else rows, more, True)
    return Page(rows[:count], cursor is not None, more)


async def _total(conn: Connection, request: Request, query: sq.Query, mode: str | None,
                 page: Page, first_page: bool) -> int | None:  # fmt: skip
    if mode == "accurate":
        return await sq.count(conn, caller_of(request), query)
    if mode == "estimate":
        return await sq.estimate(conn, caller_of(request), query)
    if mode is None and first_page and not page.after:
        return len(page.rows)
    return None


async def _included(conn: Connection, request: Request, resource_type: str, page: Page,
                    wanted: tuple[Include, ...]) -> tuple[list[Row], bool]:  # fmt: skip
    """Resources `_include`d and `_revinclude`d for a page: each once, never a match."""
    settings = app_context(request).settings
    seen = {(resource_type, row[1]) for row in page.rows}
    found: list[Row] = []
    frontier = [(row[0], resource_type, row[1]) for row in page.rows]
    for depth in range(settings.include_depth):
        rules = [i for i in wanted if depth == 0 or i.iterate]
        fresh: list[Row] = []
        for rule in rules:
            room = settings.max_included - len(found) - len(fresh)
            if room <= 0:
                return found + fresh, True
            for row in await _apply(conn, request, rule, frontier, room):
                if (row[1], row[2]) not in seen:
                    seen.add((row[1], row[2]))
                    fresh.append(row)
        if not fresh:
            break
        found += fresh
        frontier = [(row[0], row[1], row[2]) for row in fresh]
    return found, False


async def _apply(conn: Connection, request: Request, rule: Include,
                 frontier: list[tuple[int, str, str]], room: int) -> list[Row]:  # fmt: skip
    caller = caller_of(request)
    if not rule.reverse:
        pks = [pk for pk, rtype, _ in frontier if rule.source_type in ("*", rtype)]
        params = None if rule.param is None else [rule.param]
        return await inc.referenced(conn, caller, pks, params, rule.target_type, room)
    rows: list[Row] = []
    for source, param in _reverse_pairs(rule):
        targets = [(t, i) for _, t, i in frontier if rule.target_type in (None, t)]
        wanted = [(t, i) for t, i in targets if t in RESOURCE_TYPES[source].params[param].targets]
        if wanted:
            rows += await inc.referencing(conn, caller, wanted, source, param, room - len(rows))
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
    sort: tuple[sq.SortKey, ...]
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
        first.get("_count"), settings.default_page_size, settings.max_page_size,
        settings.count_over_max == "refuse",
    )  # fmt: skip
    return Options(
        count=count,
        sort=sort,
        total=search_options.total_mode(first.get("_total")),
        summary=elements.parse_summary(first.get("_summary")),
        elements=elements.parse_elements([v for k, v in pairs if k == "_elements"]),
        includes=search_options.includes(pairs),
        cursor=search_options.decode_cursor(first.get("_cursor"), len(sort)),
    )


async def run(request: Request, resource_type: str, pairs: list[tuple[str, str]], path: str,
              compartment: str | None = None) -> Response:  # fmt: skip
    """Answer a search of `resource_type` (in a Patient's compartment if given)."""
    async with app_context(request).db.searcher() as conn:
        body = await searchset(conn, request, resource_type, pairs, path, compartment)
    return wire.json_response(request, body)


async def searchset(conn: Connection, request: Request, resource_type: str,
                    pairs: list[tuple[str, str]], path: str,
                    compartment: str | None = None) -> bytes:  # fmt: skip
    """The searchset Bundle of a search, read through `conn` (a bundle's own transaction)."""
    context = app_context(request)
    parsed = search.parse(resource_type, pairs, context.base)
    if parsed.ignored and wire.prefer(request, "handling") == "strict":
        raise Invalid(parsed.ignored)
    opts = _options(context, resource_type, pairs)
    after, backwards = opts.cursor if opts.cursor else (None, False)
    query = sq.Query(resource_type, parsed.criteria, opts.count + 1, opts.sort, after, backwards,
                     compartment=compartment)  # fmt: skip
    warnings = list(parsed.ignored)
    included: list[Row] = []
    total: int | None
    if opts.summary == "count" or opts.count == 0:
        total = await sq.count(conn, caller_of(request), query)
        page = Page([], False, False)
    else:
        rows = await sq.search(conn, caller_of(request), query)
        page = _page(rows, opts.count, after, backwards)
        included, capped = await _included(conn, request, resource_type, page, opts.includes)
        if capped:
            warnings.append(Issue(f"included resources were cut off at "
                                  f"{context.settings.max_included}", "too-costly",
                                  severity="warning"))  # fmt: skip
        total = await _total(conn, request, query, opts.total, page, after is None)
    links = _links(context.base, path, parsed, pairs, opts, page)
    return bundles.searchset(
        context.base, resource_type, page.rows, included, links=links, total=total,
        warnings=warnings, shape=lambda b, main: _shape(b, opts, main),
    )  # fmt: skip


def _shape(body: bytes, opts: Options, main: bool) -> bytes:
    return elements.shape_bytes(body, summary=opts.summary,
                                elements=opts.elements if main else None)  # fmt: skip


def _links(base: str, path: str, parsed: search.ParsedSearch, pairs: list[tuple[str, str]],
           opts: Options, page: Page) -> list[tuple[str, str]]:  # fmt: skip
    kept = [(k, v) for k, v in pairs if k in SHAPING and k != "_count"]
    applied = [*parsed.applied, *kept, ("_count", str(opts.count))]
    links = [("self", bundles.page_url(base, path, [*applied, *_cursor_pair(pairs)]))]
    links.append(("first", bundles.page_url(base, path, applied)))
    if page.rows and page.before:
        cursor = search_options.encode_cursor(tuple(page.rows[0][3:]), backwards=True)
        links.append(("previous", bundles.page_url(base, path, [*applied, ("_cursor", cursor)])))
    if page.rows and page.after:
        cursor = search_options.encode_cursor(tuple(page.rows[-1][3:]), backwards=False)
        links.append(("next", bundles.page_url(base, path, [*applied, ("_cursor", cursor)])))
    return links


def _cursor_pair(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in pairs if k == "_cursor"][:1]
