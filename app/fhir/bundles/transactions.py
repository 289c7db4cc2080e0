"""`POST /fhir` with a transaction or batch Bundle: every entry through the same service
functions as a single request; a transaction in one database transaction, all or nothing.

Spec: http://hl7.org/fhir/R4/http.html#transaction
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access.trail import trail_of
from app.criteria import Query
from app.errors import FhirError, Unprocessable, WriteConflict
from app.fhir import auditing, permissions, wire
from app.fhir.bundles import idempotency
from app.fhir.bundles import references as bundle_refs
from app.fhir.bundles import results as entry_results
from app.fhir.bundles.budget import Budget
from app.fhir.bundles.entries import (
    ORDER,
    Entry,
    entries_of,
    identity_clashes,
    in_entry,
    parse_entry,
)
from app.fhir.context import app_context
from app.fhir.patching import fhirpath_patcher, json_patcher
from app.fhir.presence import still_there
from app.fhir.search import parsing as search
from app.fhir.search import running as searching
from app.flags.codes import Vocabulary
from app.ids import new_logical_id
from app.records import reads, service, writing
from app.records.reads import Repository

Targets = dict[str, str]  # reference as written -> Type/id
YIELD_EVERY = 16  # entries parsed and validated between turns of the event loop


@dataclass(slots=True)
class Plan:
    """One attempt's decisions (a retried transaction decides afresh): what references become,
    the id each create and conditional update writes, and every resource the Bundle writes."""

    targets: Targets = field(default_factory=dict)
    ids: dict[int, str] = field(default_factory=dict)
    written: frozenset[tuple[str, str]] = frozenset()

    def id_of(self, entry: Entry) -> str | None:
        """The entry's id: from its URL, or assigned in this attempt."""
        return self.ids.get(entry.index, entry.logical_id)


async def transaction_or_batch(request: Request) -> Response:
    """batch/transaction (http://hl7.org/fhir/R4/http.html#transaction)."""
    wire.check_accept(request)
    context = app_context(request)
    raw = await wire.read_body(request, context.settings.max_body_bytes, wire.JSON_TYPES)
    body = wire.parse_json(raw, bounded=False)
    kind, raw_entries = entries_of(body, context.settings.max_bundle_entries)
    if kind == "batch":
        _audit_as_batch(request)
        return await _batch(request, raw_entries)
    entries, caller = [], context.caller(request)
    for index, found in enumerate(raw_entries):
        await _turn(index)
        entries.append(parse_entry(found, index, context.base, caller))
    identity_clashes(entries)
    return await idempotency.write_once(
        request, context, lambda repository: _transaction(repository, request, entries)
    )


def _audit_as_batch(request: Request) -> None:
    """A batch's entries commit one by one: its one AuditEvent is stored once they are done,
    with the answer, not inside any entry's transaction."""
    trail = trail_of(request.scope)
    if trail is not None:
        trail.subtype, trail.record_in = "batch", None


ROUTES = [Route("/fhir", transaction_or_batch, methods=["POST"], name="transaction")]


async def _turn(index: int) -> None:
    """Let the event loop run every YIELD_EVERY entries: validating a large Bundle in one go
    would hold up every other request (and a write holding the writer) for all of it."""
    if index and index % YIELD_EVERY == 0:
        await asyncio.sleep(0)


async def _transaction(repository: Repository, request: Request, entries: list[Entry]) -> Response:
    """Deletes; then ids and references; then conditional creates, the other creates together,
    updates and patches; then reads. Every id promised to other entries is written
    (`_as_promised`), so no reference dangles."""
    repository.expect_more()
    results: dict[int, bytes] = {}
    ordered = sorted(entries, key=lambda e: (ORDER[e.method], e.index))
    deletes = [e for e in ordered if e.method == "DELETE"]
    for entry in deletes:
        await still_there(request)
        results[entry.index] = await _run(repository, request, entry, Plan())
    plan = await _assign_ids(repository, request, entries)
    await _resolve_references(repository, request, entries, plan.targets)
    rest = ordered[len(deletes) :]
    plain = [e for e in rest if e.method == "POST" and e.if_none_exist is None]
    for entry in [e for e in rest if e.method == "POST" and e not in plain]:
        await still_there(request)
        results[entry.index] = await _run(repository, request, entry, plan)
    results.update(await _create_together(repository, request, plain, plan))
    budget = Budget(app_context(request).settings.max_response_bytes)
    for entry in [e for e in rest if e.method != "POST"]:
        await still_there(request)
        results[entry.index] = await _run(repository, request, entry, plan)
        budget.spend(results[entry.index], entry.index)  # a read past it fails the whole
    await still_there(request)  # the last look before the commit: a client gone gets nothing
    body = entry_results.bundle("transaction-response", [results[e.index] for e in entries])
    return wire.json_response(request, body)


def _vocabulary(request: Request) -> Vocabulary:
    return app_context(request).vocabulary


async def _create_together(
    repository: Repository, request: Request, entries: list[Entry], plan: Plan
) -> dict[int, bytes]:
    """Unconditional creates: each checked as `service.create` would, then all written at
    once, with the writes that follow each (`writing.save_together`)."""
    base = app_context(request).base
    prepared = []
    for entry in entries:
        bundle_refs.rewrite(entry.slots, plan.targets)
        assert entry.resource is not None  # a POST entry has one (parse_entry)
        prepared.append(
            writing.prepare(
                entry.resource,
                base,
                plan.id_of(entry),
                plan.written,
                vocabulary=_vocabulary(request),
                caller=repository.caller,
            )
        )
    live = await writing.live_targets(repository, prepared)
    for entry, item in zip(entries, prepared, strict=True):
        refused = writing.refusal(item, live)
        if refused is not None:
            raise in_entry(refused, entry.index, entry.resource_type)

    def located(position: int, error: FhirError) -> FhirError:
        return in_entry(error, entries[position].index, entries[position].resource_type)

    written = await writing.save_together(repository, prepared, located)
    return {
        entry.index: entry_results.written(
            request, service.WriteResult(entry.resource_type, version, created=True)
        )
        for entry, (_, version) in zip(entries, written, strict=True)
    }


async def _run(repository: Repository, request: Request, entry: Entry, plan: Plan) -> bytes:
    """One entry processed; its errors name the entry."""
    try:
        return await _process(repository, request, entry, plan)
    except FhirError as error:
        raise in_entry(error, entry.index, entry.resource_type) from None


def _condition(resource_type: str, query: str | None, base: str, where: str) -> service.Conditional:
    """The criteria of a conditional URL, ifNoneExist or reference; errors name `where`."""
    pairs = parse_qsl(query or "", keep_blank_values=True)
    try:
        parsed = search.conditional(resource_type, pairs, base)
    except FhirError as error:
        raise _located(error, where) from None
    return service.Conditional(Query(resource_type, parsed.criteria, 2), parsed.normalised)


def _located(error: FhirError, where: str) -> FhirError:
    return type(error)([replace(issue, expression=(where,)) for issue in error.issues])


async def _assign_ids(repository: Repository, request: Request, entries: list[Entry]) -> Plan:
    """The id each create and update will have, and fullUrl -> Type/id for references."""
    base = app_context(request).base
    plan = Plan()
    for entry in entries:
        if entry.method == "POST" or (entry.method == "PUT" and entry.logical_id is None):
            try:
                plan.ids[entry.index] = await _id_for(repository, entry, base)
            except FhirError as error:
                raise in_entry(error, entry.index, entry.resource_type) from None
        logical_id = plan.id_of(entry)
        if entry.method in ("POST", "PUT") and logical_id is not None:
            plan.written |= {(entry.resource_type, logical_id)}
            if entry.full_url is not None:
                plan.targets[entry.full_url] = f"{entry.resource_type}/{logical_id}"
    return plan


async def _id_for(repository: Repository, entry: Entry, base: str) -> str:
    """A create's or conditional update's id: its condition's match, the body's, or new."""
    query = entry.if_none_exist if entry.method == "POST" else entry.query
    if query is not None:
        where = f"{entry.where}.request." + ("url" if entry.query else "ifNoneExist")
        condition = _condition(entry.resource_type, query, base, where)
        match = await service.single_match(repository, condition, "create")
        if match is not None:
            return match.logical_id
    body_id = entry.resource.get("id") if entry.resource and entry.method == "PUT" else None
    return body_id if isinstance(body_id, str) else new_logical_id()


async def _resolve_references(
    repository: Repository, request: Request, entries: list[Entry], targets: Targets
) -> None:
    """Add each conditional reference's one match to `targets` (none is 422, several 412);
    a placeholder no entry's fullUrl declares is 422."""
    base = app_context(request).base
    for entry in entries:
        for element, reference in bundle_refs.references(entry.slots):
            if reference in targets:
                continue
            if bundle_refs.is_placeholder(reference):
                raise Unprocessable.of(
                    f"no entry has the fullUrl {reference}", element, code="not-found"
                )
            search = bundle_refs.conditional(reference, base)
            if search is None:
                continue
            resource_type, query = search
            condition = _condition(resource_type, query, base, element)
            try:
                match = await service.single_match(repository, condition, "reference")
            except FhirError as error:
                raise _located(error, element) from None
            if match is None:
                raise Unprocessable.of(
                    f"no {resource_type} matches {reference}", element, code="not-found"
                )
            targets[reference] = f"{resource_type}/{match.logical_id}"


async def _process(repository: Repository, request: Request, entry: Entry, plan: Plan) -> bytes:
    """One entry through the service function of its interaction; its response entry."""
    base = app_context(request).base
    bundle_refs.rewrite(entry.slots, plan.targets)
    resource = entry.resource
    if entry.method == "POST" and resource is not None:
        created = await _create(repository, request, entry, resource, plan)
        return entry_results.written(request, created)
    if entry.method == "PUT" and resource is not None:
        updated = await _update(repository, request, entry, resource, plan)
        return entry_results.written(request, updated)
    if entry.method == "PATCH" and entry.logical_id is not None:
        limit = app_context(request).settings.max_body_bytes
        patching = fhirpath_patcher if isinstance(entry.patch, dict) else json_patcher
        patcher = patching(entry.resource_type, entry.logical_id, entry.patch, limit)
        result = await service.patch(
            repository,
            entry.resource_type,
            entry.logical_id,
            patcher,
            base,
            entry.if_match,
            vocabulary=_vocabulary(request),
        )
        return entry_results.written(request, result)
    if entry.method == "DELETE":
        return entry_results.deleted(await _delete(repository, request, entry))
    return await _read(repository, request, entry, base)


async def _create(
    repository: Repository, request: Request, entry: Entry, resource: dict[str, Any], plan: Plan
) -> service.WriteResult:
    base = app_context(request).base
    condition = None
    if entry.if_none_exist is not None:
        where = f"{entry.where}.request.ifNoneExist"
        condition = _condition(entry.resource_type, entry.if_none_exist, base, where)
    prepared = writing.prepare(
        resource,
        base,
        plan.id_of(entry),
        plan.written,
        vocabulary=_vocabulary(request),
        caller=repository.caller,
    )
    return _as_promised(plan, entry, await service.create(repository, prepared, condition))


async def _update(
    repository: Repository, request: Request, entry: Entry, resource: dict[str, Any], plan: Plan
) -> service.WriteResult:
    base, caller = app_context(request).base, app_context(request).caller(request)
    logical_id = plan.id_of(entry)
    if entry.query is None:
        assert logical_id is not None
        prepared = writing.prepare(
            resource,
            base,
            logical_id,
            plan.written,
            vocabulary=_vocabulary(request),
            caller=repository.caller,
        )
        updated = await service.update(repository, prepared, entry.if_match)
        return permissions.created(caller, updated, entry.where)
    condition = _condition(entry.resource_type, entry.query, base, f"{entry.where}.request.url")
    result = await service.conditional_update(
        repository,
        resource,
        condition,
        base,
        entry.if_match,
        new_id=logical_id,
        vocabulary=_vocabulary(request),
    )
    return _as_promised(plan, entry, permissions.created(caller, result, entry.where))


def _as_promised(plan: Plan, entry: Entry, result: service.WriteResult) -> service.WriteResult:
    """The result, if it has the id other entries were told; if a concurrent write changed the
    condition's match since, the whole transaction is retried and decides afresh."""
    promised = plan.ids.get(entry.index)
    if promised is not None and result.version.logical_id != promised:
        raise WriteConflict(f"{entry.where}: the condition's match changed meanwhile")
    return result


async def _delete(repository: Repository, request: Request, entry: Entry) -> service.DeleteResult:
    base = app_context(request).base
    if entry.logical_id is not None:
        return await service.delete(
            repository, entry.resource_type, entry.logical_id, entry.if_match
        )
    condition = _condition(entry.resource_type, entry.query, base, f"{entry.where}.request.url")
    return await service.conditional_delete(repository, condition)


async def _read(repository: Repository, request: Request, entry: Entry, base: str) -> bytes:
    """read, vread or search inside the Bundle's transaction (it sees the entries' writes)."""
    resource_type = entry.resource_type
    if entry.logical_id is None:
        pairs = parse_qsl(entry.query or "", keep_blank_values=True)
        found = await searching.searchset(repository, request, resource_type, pairs, resource_type)
        return entry_results.read(None, found)
    full_url = f"{base}/{resource_type}/{entry.logical_id}"
    if entry.version is not None:
        version = await reads.vread(repository, resource_type, entry.logical_id, entry.version)
        assert version.body is not None
        auditing.read_one(
            request, resource_type, entry.logical_id, version.patient_id, version.version_id
        )
        return entry_results.read(full_url, version.body, version.version_id, version.last_updated)
    current = await reads.read(repository, resource_type, entry.logical_id)
    assert current.body is not None
    auditing.read_one(request, resource_type, entry.logical_id, current.patient_id)
    return entry_results.read(
        full_url, bytes(current.body), current.version_id, current.last_updated
    )


async def _batch(request: Request, raw_entries: list[Any]) -> Response:
    """Each entry on its own, in its own transaction; a failure is reported in its entry."""
    context = app_context(request)
    return await idempotency.batch_once(
        request, context, lambda: _batch_entries(request, raw_entries)
    )


async def _batch_entries(request: Request, raw_entries: list[Any]) -> Response:
    context = app_context(request)
    results: dict[int, bytes] = {}
    parsed: list[Entry] = []
    caller = context.caller(request)
    for index, found in enumerate(raw_entries):
        await _turn(index)
        try:
            parsed.append(_independent(parse_entry(found, index, context.base, caller)))
        except FhirError as error:
            results[index] = entry_results.failed(in_entry(error, index, _type_of(found)))
    budget = Budget(context.settings.max_response_bytes)
    # Entries left after the client has gone are not run, unless a retry may replay the
    # answer (a UUID X-Request-ID): entries commit one by one, so a batch stopped half-way and
    # forgotten would have its retry write the first half again.
    watched = idempotency.request_id(request) is None
    for entry in sorted(parsed, key=lambda e: (ORDER[e.method], e.index)):
        if watched:
            await still_there(request)
        if budget.full:  # not run: its answer would not be sent
            results[entry.index] = entry_results.failed(budget.refusal(entry.index))
            continue
        try:
            answer = await context.write(request, _alone(request, entry))
            budget.spend(answer, entry.index)
            results[entry.index] = answer
        except FhirError as error:
            results[entry.index] = entry_results.failed(error)
    body = entry_results.bundle("batch-response", [results[i] for i in range(len(raw_entries))])
    return wire.json_response(request, body)


def _alone(request: Request, entry: Entry) -> "Callable[[Repository], Awaitable[bytes]]":
    async def work(repository: Repository) -> bytes:
        plan = Plan()
        try:
            await _resolve_references(repository, request, [entry], plan.targets)
        except FhirError as error:
            raise in_entry(error, entry.index, entry.resource_type) from None
        return await _run(repository, request, entry, plan)

    return work


def _independent(entry: Entry) -> Entry:
    """A batch entry may not lean on another entry: placeholders are for transactions."""
    for element, reference in bundle_refs.references(entry.slots):
        if bundle_refs.is_placeholder(reference):
            raise Unprocessable.of(
                f"{reference} names another entry: "
                "batch entries are independent (send a transaction)",
                element,
            )
    return entry


def _type_of(found: Any) -> str | None:
    resource = found.get("resource") if isinstance(found, dict) else None
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    return kind if isinstance(kind, str) else None
