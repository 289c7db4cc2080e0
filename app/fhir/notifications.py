"""Notification Bundles of topic-based Subscriptions in R4 (Subscriptions R5 Backport): a
`history` Bundle whose first entry is the SubscriptionStatus, a Parameters resource, followed
by an entry per resource the events name (with the resource itself for `full-resource`
content). The same shape answers `$events`; `$status` lists the Parameters alone.

Each event's `notification-event` part names its number, when it happened, its focus and the
child (with its NHS number) and the organisation concerned as additional context; an
extension on it (`notification-cause`) says what happened and who made it happen.

Spec: https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/notifications.html
"""

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from app.clock import instant, now_micros
from app.flags.codes import Vocabulary
from app.flags.subscribing import BACKPORT, topic_url
from app.ids import new_logical_id
from app.nhs import NHS_NUMBER_SYSTEM
from app.records.subscriptions import Delivery, Event

STATUS_PROFILE = f"{BACKPORT}/backport-subscription-status-r4"
BUNDLE_PROFILE = f"{BACKPORT}/backport-subscription-notification-r4"
CAUSE = "notification-cause"  # our extension on a notification-event: what happened, by whom


def status_parameters(
    base: str, vocabulary: Vocabulary, state: Delivery, kind: str, events: Sequence[Event]
) -> dict[str, Any]:
    """The SubscriptionStatus of a notification of `kind` (handshake, heartbeat,
    event-notification, query-status, query-event) carrying `events`."""
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": _url(base, state)}},
        {"name": "topic", "valueCanonical": topic_url(vocabulary, state.topic)},
        {"name": "status", "valueCode": state.status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(state.events_total)},
    ]
    parameters += [_event(base, vocabulary, event, state.channel) for event in events]
    if state.error and state.status == "error":
        parameters.append({"name": "error", "valueCodeableConcept": {"text": state.error}})
    return {
        "resourceType": "Parameters",
        "id": new_logical_id(),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": parameters,
    }


def notification(
    base: str,
    vocabulary: Vocabulary,
    state: Delivery,
    kind: str,
    events: Sequence[Event],
    bodies: Mapping[str, bytes],
) -> bytes:
    """The notification Bundle: the status, then each focus (its body where `bodies` has it)."""
    status = status_parameters(base, vocabulary, state, kind, events)
    entries = [
        {
            "fullUrl": f"urn:uuid:{status['id']}",
            "resource": status,
            "request": {"method": "GET", "url": f"{_url(base, state)}/$status"},
            "response": {"status": "200"},
        }
    ]
    if state.channel.get("content") != "empty":
        for reference in dict.fromkeys(_focus(event) for event in events):
            entries.append(_focus_entry(base, reference, bodies.get(reference)))
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "id": new_logical_id(),
            "meta": {"profile": [BUNDLE_PROFILE], "lastUpdated": instant(now_micros())},
            "type": "history",
            "timestamp": instant(now_micros()),
            "entry": entries,
        }
    )


def focus_references(events: Sequence[Event]) -> list[str]:
    """`Type/id` of each resource the events are about, for a full-resource notification."""
    return list(dict.fromkeys(_focus(event) for event in events))


def _focus(event: Event) -> str:
    return str(event.detail["focus"]).split("/_history/")[0]


def _focus_entry(base: str, reference: str, body: bytes | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "fullUrl": f"{base}/{reference}",
        "request": {"method": "PUT", "url": reference},
        "response": {"status": "200"},
    }
    if body is not None:
        entry["resource"] = orjson.loads(body)
    return entry


def _event(
    base: str, vocabulary: Vocabulary, event: Event, channel: Mapping[str, Any]
) -> dict[str, Any]:
    detail = event.detail
    parts: list[dict[str, Any]] = [
        {"name": "event-number", "valueString": str(event.number)},
        {"name": "timestamp", "valueInstant": instant(event.occurred_at)},
    ]
    if channel.get("content") != "empty":
        parts.append(
            {"name": "focus", "valueReference": {"reference": f"{base}/{detail['focus']}"}}
        )
        parts += [
            {"name": "additional-context", "valueReference": reference}
            for reference in _context(base, detail)
        ]
    return {
        "name": "notification-event",
        "extension": [_cause(base, vocabulary, detail)],
        "part": parts,
    }


def _context(base: str, detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The child (with its NHS number), the organisation that acted, and the plans seen."""
    child: dict[str, Any] = {"reference": f"{base}/Patient/{detail['child']}"}
    if detail.get("nhs"):
        child["identifier"] = {"system": NHS_NUMBER_SYSTEM, "value": detail["nhs"]}
    found = [child]
    if detail.get("organization"):
        found.append({"reference": f"{base}/Organization/{detail['organization']}"})
    found += [{"reference": f"{base}/{plan}"} for plan in detail.get("plans", [])]
    return found


def _cause(base: str, vocabulary: Vocabulary, detail: Mapping[str, Any]) -> dict[str, Any]:
    """What happened (`action`), who did it (`organization`, `client`) and, for a change of
    responsibility, the authorities `before` and `after`."""
    inner: list[dict[str, Any]] = [{"url": "topic", "valueCode": detail["topic"]}]
    if detail.get("action"):
        inner.append({"url": "action", "valueCode": detail["action"]})
    if detail.get("organization"):
        organization = {"reference": f"Organization/{detail['organization']}"}
        inner.append({"url": "organization", "valueReference": organization})
    inner.append({"url": "client", "valueUri": vocabulary.client_source(detail["client"])})
    for side in ("before", "after"):
        inner += [
            {"url": side, "valueReference": {"reference": f"Organization/{org}"}}
            for org in detail.get(side, [])
        ]
    return {"url": vocabulary.url("StructureDefinition", CAUSE), "extension": inner}


def _url(base: str, state: Delivery) -> str:
    return f"{base}/Subscription/{state.logical_id}"
