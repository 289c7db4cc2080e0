"""Topic-based Subscriptions in R4 (Subscriptions R5 Backport IG): the topics a local authority
subscribes to, the rules a Subscription is written under, and the delivery state each write
keeps (`storage.subscriptions`).

A Subscription names its topic's canonical URL in `criteria`, a `rest-hook` channel, and either
an `endpoint` the server POSTs notification Bundles to (it must match the allow-list in
settings: `access.endpoints`) or none, holding its events for `$events`. `channel.payload` is
`application/fhir+json`, its content (`backport-payload-content`) `empty`, `id-only` (the
default) or `full-resource`. A client asks for it `requested` (or `off`); the notifier makes
it `active` after the handshake, or `error` after repeated failures.

Spec: https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/
"""

from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

from app.access.endpoints import endpoint_issues
from app.clock import now_micros
from app.errors import Issue
from app.flags.codes import (
    CHILD_PROTECTION_PLAN,
    LOOKED_AFTER_CHILD,
    SNOMED,
    UNBORN_CHILD_PROTECTION_PLAN,
    Vocabulary,
)
from app.flags.follow_ups import FollowUp
from app.storage import subscriptions
from app.storage.outbox import CHILD_SEEN, FLAG_RECORDED, RESPONSIBILITY
from app.storage.repository import Repository

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
PROFILE = f"{BACKPORT}/backport-subscription"
CONTENT = f"{BACKPORT}/backport-payload-content"
HEARTBEAT = f"{BACKPORT}/backport-heartbeat-period"
TIMEOUT = f"{BACKPORT}/backport-timeout"
MAX_COUNT = f"{BACKPORT}/backport-max-count"
FILTER = f"{BACKPORT}/backport-filter-criteria"
FHIR_JSON = "application/fhir+json"
CONTENTS = ("empty", "id-only", "full-resource")
NOTIFIER = "safeguard:notifier"  # the subject of the notifier's own writes (status changes)
STATUSES = ("requested", "active", "error", "off")
# The flags that make a health service's look at a child worth telling their author about.
PLANS = (CHILD_PROTECTION_PLAN, UNBORN_CHILD_PROTECTION_PLAN, LOOKED_AFTER_CHILD)


@dataclass(frozen=True, slots=True)
class Topic:
    """One event a local authority can subscribe to."""

    code: str
    title: str
    description: str


TOPICS = (
    Topic(
        FLAG_RECORDED,
        "A safeguarding flag about one of your children was recorded elsewhere",
        "A safeguarding Flag about a child you are responsible for was created, ended, marked "
        "entered-in-error or made active again by another organisation.",
    ),
    Topic(
        CHILD_SEEN,
        "One of your children on a plan was seen by a health service",
        "A health service read the safeguarding summary or Flags of a child with an active "
        "child protection plan, unborn child protection plan or looked-after-child flag you "
        "recorded (the CP-IS access notification).",
    ),
    Topic(
        RESPONSIBILITY,
        "The local authorities responsible for a child changed",
        "An authority became or stopped being responsible for a child you are, or were, "
        "responsible for.",
    ),
)


@cache
def plan_codes(vocabulary: Vocabulary) -> list[tuple[str, str]]:
    """(system, code) of every coding of the plan flag types: ours and their SNOMED CT
    equivalents."""
    codes = []
    for concept in vocabulary.flag_types:
        if concept.code in PLANS:
            codes.append((vocabulary.flag_type_system, concept.code))
            if concept.snomed:
                codes.append((SNOMED, concept.snomed))
    return codes


def topic_url(vocabulary: Vocabulary, code: str) -> str:
    """The canonical URL of a topic."""
    return vocabulary.url("SubscriptionTopic", code)


def topic_of(vocabulary: Vocabulary, url: object) -> str | None:
    """The topic code a canonical URL names, if it is one of ours."""
    return next((t.code for t in TOPICS if topic_url(vocabulary, t.code) == url), None)


def as_asked(resource: dict[str, Any], subject: str) -> dict[str, Any]:
    """A Subscription as a client writes it: status `requested` (or `off`), for the notifier
    to activate; no `error`. The notifier's own writes keep what they say."""
    if subject == NOTIFIER:
        return resource
    status = "off" if resource.get("status") == "off" else "requested"
    kept = {k: v for k, v in resource.items() if k not in ("error", "_error")}
    return kept | {"status": status}


def subscription_issues(resource: dict[str, Any], vocabulary: Vocabulary) -> list[Issue]:
    """Why a Subscription may not be written: a topic not ours, a channel we do not serve."""
    issues = []
    if topic_of(vocabulary, resource.get("criteria")) is None:
        known = ", ".join(topic_url(vocabulary, t.code) for t in TOPICS)
        issues.append(_issue(f"criteria must be one of this server's topics: {known}", "criteria"))
    if _extensions(resource.get("_criteria"), FILTER):
        issues.append(_issue("filter criteria are not supported on these topics", "criteria"))
    if resource.get("status") not in STATUSES:  # a client's is `requested` or `off` by now
        issues.append(_issue("status must be requested, active, error or off", "status"))
    channel = resource.get("channel")
    channel = channel if isinstance(channel, dict) else {}
    if channel.get("type") != "rest-hook":
        issues.append(_issue("only rest-hook channels are served", "channel.type"))
    endpoint = channel.get("endpoint")
    if endpoint is not None:
        where = "Subscription.channel.endpoint"
        issues += endpoint_issues(
            endpoint, vocabulary.endpoints, vocabulary.private_networks, where
        )
    issues += _payload_issues(channel)
    issues += _header_issues(channel.get("header"))
    return issues


def _payload_issues(channel: dict[str, Any]) -> list[Issue]:
    issues = []
    payload = channel.get("payload")
    if payload is not None and payload != FHIR_JSON:
        issues.append(_issue(f"payload must be {FHIR_JSON}", "channel.payload"))
    for content in _extensions(channel.get("_payload"), CONTENT):
        if content.get("valueCode") not in CONTENTS:
            issues.append(
                _issue(f"payload content must be one of {', '.join(CONTENTS)}", "channel.payload")
            )
    for url, low, high in ((HEARTBEAT, 1, 86400), (TIMEOUT, 1, 60), (MAX_COUNT, 1, 1000)):
        for found in _extensions(channel, url):
            value = found.get("valueUnsignedInt", found.get("valuePositiveInt"))
            if not isinstance(value, int) or not low <= value <= high:
                name = url.rsplit("/", 1)[1]
                issues.append(_issue(f"{name} must be from {low} to {high}", "channel.extension"))
    return issues


def _header_issues(headers: object) -> list[Issue]:
    """Each channel header is `Name: value` on one line."""
    issues = []
    for header in headers if isinstance(headers, list) else []:
        name, colon, _ = str(header).partition(":")
        if not colon or not name.strip() or any(c in str(header) for c in "\r\n\0"):
            issues.append(_issue("each header must be 'Name: value' on one line", "channel.header"))
    return issues


def _issue(diagnostics: str, element: str) -> Issue:
    return Issue(diagnostics, "business-rule", (f"Subscription.{element}",))


def _extensions(element: object, url: str) -> list[dict[str, Any]]:
    found = element.get("extension") if isinstance(element, dict) else None
    return [e for e in found or [] if isinstance(e, dict) and e.get("url") == url]


def delivery(resource: dict[str, Any]) -> dict[str, Any]:
    """What the notifier needs of a Subscription's channel, besides its endpoint."""
    channel = resource.get("channel") or {}
    contents = _extensions(channel.get("_payload"), CONTENT)
    content = contents[0].get("valueCode") if contents else "id-only"

    def number(url: str) -> int | None:
        found = _extensions(channel, url)
        return found[0].get("valueUnsignedInt", found[0].get("valuePositiveInt")) if found else None

    return {
        "content": content if channel.get("payload") else "empty",
        "headers": [str(h) for h in channel.get("header") or []],
        "heartbeat": number(HEARTBEAT),
        "timeout": number(TIMEOUT),
        "max_count": number(MAX_COUNT),
    }


def keep_state(resource: dict[str, Any], logical_id: str, vocabulary: Vocabulary) -> FollowUp:
    """After a Subscription's save: its delivery state follows what it now says."""
    topic = topic_of(vocabulary, resource.get("criteria")) or ""
    endpoint = (resource.get("channel") or {}).get("endpoint")
    channel = orjson.dumps(delivery(resource)).decode()
    status = str(resource.get("status"))

    async def save_state(repo: Repository, pk: int, existed: bool) -> None:
        owner = repo.caller.organisation or ""
        state = subscriptions.State(pk, logical_id, owner, topic, endpoint, channel, status)
        await subscriptions.save_state(repo.conn, state, now_micros())

    return FollowUp(save_state)


def forget_state() -> FollowUp:
    """After a Subscription's delete: its delivery state and events go."""

    async def drop(repo: Repository, pk: int, existed: bool) -> None:
        await subscriptions.drop_state(repo.conn, pk)

    return FollowUp(drop)
