"""One write path for every resource: `prepare` checks a resource against the rules that need
no database and records what its save entails (index rows, the domain's guard and follow-up
writes); `save` and `save_together` store prepared resources and run their follow-ups, so no
path (single request, conditional write, transaction, batch entry) can skip one.

Spec: http://hl7.org/fhir/R4/http.html#create, #update
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from app.access import Caller, writing
from app.errors import FhirError, Issue, Unprocessable
from app.flags import writes as domain_rules
from app.flags.codes import Vocabulary
from app.flags.follow_ups import FollowUp
from app.ids import new_logical_id
from app.normalise import split_reference
from app.records import rules
from app.registry import RESOURCE_TYPES
from app.storage import repository as storage
from app.storage.indexer import Derived, derive
from app.storage.repository import Repository

Targets = dict[tuple[str, str], list[str]]  # (type, id) referenced -> the elements naming it
Locate = Callable[[int, FhirError], FhirError]  # (position in a list, error) -> error placed


@dataclass(frozen=True, slots=True)
class Prepared:
    """A resource checked against the rules that need no database, and what its write stores.

    Built before the transaction opens, so the writer is held only for the database work;
    `issues` are raised when the write is attempted, after the preconditions (RFC 9110 13.2.2).
    """

    resource: dict[str, Any]
    logical_id: str
    issues: list[Issue]
    targets: Targets
    derived: Derived
    domain: domain_rules.DomainWrite

    def follow_ups(self, existed: bool) -> list[FollowUp]:
        """The follow-up writes due after this save."""
        return [follow_up for follow_up in self.domain.follow_ups if follow_up.due(existed)]


def prepare(
    resource: dict[str, Any],
    base_url: str,
    logical_id: str | None = None,
    written_together: frozenset[tuple[str, str]] = frozenset(),
    *,
    vocabulary: Vocabulary,
    caller: Caller,
) -> Prepared:
    """Normalise and check `resource`, and derive its rows; a new id when none is given.

    References to `written_together` resources (created by the same transaction Bundle,
    which stands or falls as one) are not required to be live when this one is written.
    """
    resource = domain_rules.as_written_by(resource, caller, vocabulary, base_url)
    resource, found = rules.survey(_sourced(resource, None, vocabulary))
    resource = _sourced(resource, caller, vocabulary)  # after the survey: no reference to check
    resource_type = resource["resourceType"]
    logical_id = logical_id or new_logical_id()
    issues = rules.binding_issues(resource_type, resource)
    if resource_type in ("Patient", "RelatedPerson"):  # a relative's links by NHS number
        issues.extend(rules.nhs_number_issues(resource))
    domain = domain_rules.on_write(resource, logical_id, vocabulary, base_url)
    issues.extend(domain.issues)
    targets = _reference_targets(resource_type, logical_id, found, base_url)
    for target in written_together & targets.keys():
        del targets[target]
    derived = derive(resource, logical_id, base_url, domain.author_org, domain.responsible)
    return Prepared(resource, logical_id, issues, targets, derived, domain)


def written_as(
    caller: Caller, vocabulary: Vocabulary, base_url: str
) -> Callable[[dict[str, Any]], tuple[dict[str, Any], str | None, tuple[str, ...]]]:
    """What `prepare` makes of a resource (as `caller` writes it, its author, the Organizations
    it makes responsible for its child), for loads that bypass the API (`storage.bulk`)."""

    def written(resource: dict[str, Any]) -> tuple[dict[str, Any], str | None, tuple[str, ...]]:
        resource = domain_rules.as_written_by(resource, caller, vocabulary, base_url)
        resource = _sourced(resource, caller, vocabulary)
        domain = domain_rules.on_write(resource, resource.get("id") or "", vocabulary, base_url)
        return resource, domain.author_org, domain.responsible

    return written


def _sourced(
    resource: dict[str, Any], caller: Caller | None, vocabulary: Vocabulary
) -> dict[str, Any]:
    """`resource` with `meta.source` naming the client that writes it and a `meta` extension
    naming that client's organisation, replacing what the body said of either: every version
    records who wrote it (http://hl7.org/fhir/R4/resource-definitions.html#Meta.source).
    With no caller, both are only removed (what a body says of them is not checked)."""
    meta = resource.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    url = vocabulary.written_by_extension
    extensions = meta.get("extension")
    kept = [
        e
        for e in (extensions if isinstance(extensions, list) else [])
        if not (isinstance(e, dict) and e.get("url") == url)
    ]
    meta.pop("source", None)
    if caller is not None:
        meta["source"] = vocabulary.client_source(caller.subject)
        if caller.organisation is not None:
            organisation = {"reference": f"Organization/{caller.organisation}"}
            kept.append({"url": url, "valueReference": organisation})
    if kept:
        meta["extension"] = kept
    else:
        meta.pop("extension", None)
    return resource | {"meta": meta} if meta else {k: v for k, v in resource.items() if k != "meta"}


def _reference_targets(
    resource_type: str, logical_id: str, found: list[tuple[str, str]], base_url: str
) -> Targets:
    """(type, id) of each hosted resource referenced, with the elements that reference it."""
    targets: Targets = {}
    for expression, reference in found:
        target = split_reference(reference, base_url)
        if target[0] in RESOURCE_TYPES and target != (resource_type, logical_id):
            targets.setdefault((target[0], target[1]), []).append(expression)
    return targets


def unresolved(targets: Targets, live: set[tuple[str, str]]) -> Unprocessable | None:
    """422 naming each element whose referenced resource is not in `live`; None if all are."""
    issues = [
        Issue(
            f"{target[0]}/{target[1]} does not exist (or was deleted)",
            "not-found",
            (expression.removesuffix(".reference"),),
        )
        for target, expressions in targets.items()
        if target not in live
        for expression in expressions
    ]
    return Unprocessable(issues) if issues else None


def refusal(prepared: Prepared, live: set[tuple[str, str]]) -> Unprocessable | None:
    """Why `save_together` may not write `prepared`: a broken rule or a missing reference."""
    if prepared.issues:
        return Unprocessable(prepared.issues)
    return unresolved(prepared.targets, live)


async def save(
    repository: Repository,
    prepared: Prepared,
    current: storage.Current | None,
    method: str,
    *,
    last: bool,
) -> tuple[int, storage.Version]:
    """Write a prepared resource (422 if it broke a rule) and its follow-ups; `last`: nothing
    is written after it in this unit of work."""
    writing.check_type(repository.caller, prepared.resource["resourceType"])
    if prepared.issues:
        raise Unprocessable(prepared.issues)
    existed = current is not None
    stored = None if current is None or current.body is None else orjson.loads(current.body)
    guard = prepared.domain.guard
    if guard is not None and stored is not None:
        guard(stored, prepared.resource)
    follow_ups = prepared.follow_ups(existed)
    saved = await storage.save(
        repository,
        prepared.resource,
        prepared.logical_id,
        current,
        method,
        prepared.derived,
        list(prepared.targets),
        last and not follow_ups,
        prepared.domain.flag_action(stored),
    )
    if saved is None:
        live = await storage.live_among(repository, list(prepared.targets))
        raise unresolved(prepared.targets, live) or Unprocessable()
    await follow(repository, follow_ups, saved[0], existed=existed)
    return saved


async def save_together(
    repository: Repository, prepared: list[Prepared], located: Locate = lambda _, error: error
) -> list[tuple[int, storage.Version]]:
    """Version 1 of each prepared resource, written together (one round trip), then each
    one's follow-ups in order; each has passed `refusal` against `live_targets`. A follow-up's
    error, or a type the caller may not write, is raised as `located(position, error)`."""
    for position, item in enumerate(prepared):
        try:
            writing.check_type(repository.caller, item.resource["resourceType"])
        except FhirError as error:
            raise located(position, error) from None
    written = await storage.create_all(
        repository,
        [(item.resource, item.logical_id, item.derived) for item in prepared],
        [item.domain.flag_action(None) for item in prepared],
    )
    for position, (item, (pk, _)) in enumerate(zip(prepared, written, strict=True)):
        try:
            await follow(repository, item.follow_ups(False), pk, existed=False)
        except FhirError as error:
            raise located(position, error) from None
    return written


async def live_targets(repository: Repository, prepared: list[Prepared]) -> set[tuple[str, str]]:
    """The live resources among those `prepared` writes reference, locked until commit."""
    wanted = {target for item in prepared for target in item.targets}
    return await storage.live_among(repository, sorted(wanted), lock=True)


async def follow(
    repository: Repository, follow_ups: list[FollowUp], pk: int, *, existed: bool
) -> None:
    """Run the follow-up writes of resource `pk`'s save (or delete), in order."""
    for follow_up in follow_ups:
        await follow_up.run(repository, pk, existed)
