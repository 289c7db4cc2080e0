"""`$status` and `$events` on a Subscription (Subscriptions R5 Backport): what the notifier
knows of it, and its numbered events, for an authority that polls instead of (or as well as)
receiving them, or that was down. Both read the Subscription as the caller may (only its
organisation and system clients see one), 404 otherwise.

Spec: https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/OperationDefinition-backport-subscription-status.html
and OperationDefinition-backport-subscription-events.html
"""

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.clock import instant, now_micros
from app.errors import Invalid
from app.fhir import auditing, notifications, permissions, wire
from app.fhir.context import app_context
from app.flags.subscribing import CONTENTS
from app.ids import new_logical_id
from app.records import subscriptions

STATUS, EVENTS = "$status", "$events"


def _number(request: Request, name: str) -> int | None:
    """A non-negative event number parameter (R4 string, holding an integer)."""
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise Invalid.of(f"{name} must be a non-negative whole number", name)
    return int(value)


async def status(request: Request) -> Response:
    """$status: the Subscription's SubscriptionStatus, in a searchset Bundle."""
    wire.check_accept(request)
    permissions.permit(request, "Subscription", "read")
    logical_id = wire.known_id("Subscription", request.path_params["logical_id"])
    context = app_context(request)
    async with context.reading(request) as repository:
        state = await subscriptions.state_for(repository, logical_id)
    auditing.operation(request, f"Subscription/{logical_id}/{STATUS}")
    found = notifications.status_parameters(
        context.base, context.vocabulary, state, "query-status", []
    )
    bundle = {
        "resourceType": "Bundle",
        "id": new_logical_id(),
        "meta": {"lastUpdated": instant(now_micros())},
        "type": "searchset",
        "total": 1,
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [
            {
                "fullUrl": f"urn:uuid:{found['id']}",
                "resource": found,
                "search": {"mode": "match"},
            }
        ],
    }
    return wire.json_response(request, orjson.dumps(bundle))


async def events(request: Request) -> Response:
    """$events: events `eventsSinceNumber` to `eventsUntilNumber` (both included; at most a
    page, `_count` or the page size), as a notification Bundle of type query-event."""
    wire.check_accept(request)
    permissions.permit(request, "Subscription", "read")
    logical_id = wire.known_id("Subscription", request.path_params["logical_id"])
    since = _number(request, "eventsSinceNumber") or 1
    until = _number(request, "eventsUntilNumber")
    content = request.query_params.get("content")
    if content is not None and content not in CONTENTS:
        raise Invalid.of(f"content must be one of {', '.join(CONTENTS)}", "content")
    context = app_context(request)
    limit = min(
        _number(request, "_count") or context.settings.default_page_size * 5,
        context.settings.max_page_size,
    )
    async with context.reading(request) as repository:
        state = await subscriptions.state_for(repository, logical_id)
        last = state.events_total if until is None else min(until, state.events_total)
        found = await subscriptions.events_of(repository, state.pk, since, last, max(limit, 1))
    if content is not None:
        state = state.with_content(content)
    bodies: dict[str, bytes] = {}
    if state.channel.get("content") == "full-resource":
        references = notifications.focus_references(found)
        bodies = await subscriptions.readable_bodies(
            context.store, context.caller(request), references
        )
    auditing.operation(request, f"Subscription/{logical_id}/{EVENTS}")
    body = notifications.notification(
        context.base, context.vocabulary, state, "query-event", found, bodies
    )
    return wire.json_response(request, body)


ROUTES = [
    Route(
        f"/fhir/Subscription/{{logical_id}}/{STATUS}",
        status,
        methods=["GET"],
        name="subscription_status",
    ),
    Route(
        f"/fhir/Subscription/{{logical_id}}/{EVENTS}",
        events,
        methods=["GET"],
        name="subscription_events",
    ),
]
