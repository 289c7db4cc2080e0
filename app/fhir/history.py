"""History pages, the change feed: what `_history` answers at system, type and instance level.

A page holds the changes before its first page's watermark, newest first, and names that
watermark as its Bundle.meta.lastUpdated, so `_since=<it>` is the next poll (README, "Change
feed"; `app.storage.feed`). Spec: http://hl7.org/fhir/R4/http.html#history
"""

from starlette.requests import Request
from starlette.responses import Response

from app.errors import Invalid
from app.fhir import auditing, wire
from app.fhir.bundles import assembly as bundles
from app.fhir.context import AppContext, app_context
from app.fhir.search import options as search_options
from app.records import reads

KEPT = ("_since", "_count", "_type")  # what a `next` link carries besides its cursor


async def page(
    request: Request, path: str, types: tuple[str, ...] | None, logical_id: str | None
) -> Response:
    """One history page at `path` (its Bundle, with `next` while more remain)."""
    wire.check_accept(request)
    context, params = app_context(request), request.query_params
    count = _page_size(context, params.get("_count"))
    cursor = search_options.history_cursor(params.get("_cursor"))
    async with context.reading(request) as repository:
        found, mark = await reads.history(
            repository,
            resource_types=types,
            logical_id=logical_id,
            since=search_options.since(params.get("_since")),
            after=None if cursor is None else reads.Mark(*cursor),
            count=count + 1,
            max_bytes=context.settings.max_response_bytes,
        )
    # The page stops early where its bodies would pass max_response_bytes: `next` goes on there.
    versions = found.rows[:count]
    if logical_id is not None and types is not None and versions:
        auditing.read_one(request, types[0], logical_id, versions[0].patient_id)
    auditing.held_data_of(request, (v.patient_id for v in versions))
    more = found.read > len(versions)
    body = bundles.history(
        context.base,
        versions,
        self_url=bundles.page_url(context.base, path, params.multi_items()),
        next_url=_next_url(request, path, mark, versions[-1]) if more else None,
        last_updated=mark.watermark,
    )
    return wire.json_response(request, body)


def _page_size(context: AppContext, raw: str | None) -> int:
    settings = context.settings
    count = search_options.page_size(raw, settings.default_page_size, settings.max_page_size)
    if count == 0:
        raise Invalid.of("_count=0 is not supported on history", "_count")
    return count


def _next_url(request: Request, path: str, mark: reads.Mark, last: reads.Version) -> str:
    """The link to the page after `last`, cut at the same watermark."""
    place = f"{mark.watermark}.{last.changed_at}.{last.seq}" + (".1" if last.kind else "")
    kept = [(k, v) for k, v in request.query_params.multi_items() if k in KEPT]
    return bundles.page_url(app_context(request).base, path, [*kept, ("_cursor", place)])
