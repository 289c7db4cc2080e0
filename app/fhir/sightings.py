"""Which children's Flags an answer showed a health client, so that the authorities whose
plans cover them are told before it goes (`records.sightings`: the CP-IS access notification).
Reads, searches and the safeguarding summary note the children as they assemble the answer;
the route then calls `tell` once its repository is returned.
"""

from collections.abc import Iterable

from starlette.requests import Request

from app.access.trail import trail_of
from app.fhir.context import app_context
from app.records import sightings

SEEN = "safeguard.children_seen"  # request scope: the children whose Flags the answer shows


def saw_flags_of(request: Request, children: Iterable[str | None]) -> None:
    """Note the children whose Flags the answer shows."""
    seen: set[str] = request.scope.setdefault(SEEN, set())
    seen.update(child for child in children if child is not None)


async def tell(request: Request) -> None:
    """Record the notifications due for what the answer shows (health clients only)."""
    seen = request.scope.pop(SEEN, None)
    if not seen:
        return
    context = app_context(request)
    await sightings.note_seen(
        context.store,
        context.caller(request),
        trail_of(request.scope),
        seen,
        context.vocabulary,
    )
