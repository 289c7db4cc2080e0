"""Resource interactions: every single request and (later) every bundle entry runs through here.

Services receive an open connection inside a transaction and never commit; the FHIR layer owns
the transaction. Spec: http://hl7.org/fhir/R4/http.html
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from app.access import Caller
from app.errors import (
    Gone,
    Invalid,
    Issue,
    NhsNumberHeld,
    NotFound,
    PreconditionFailed,
    Unprocessable,
    WriteConflict,
)
from app.flags import after_save, flag_rules
from app.flags.codes import Vocabulary
from app.flags.flag_writes import FlagFacts, check_flag_change, refuse_flag_delete
from app.ids import new_logical_id
from app.records import rules
from app.registry import RESOURCE_TYPES
from app.storage import query as sq
from app.storage import repository as repo
from app.storage.db import Connection
from app.storage.indexer import Derived, derive, split_reference


@dataclass(frozen=True, slots=True)
class Conditional:
    """A conditional URL's criteria, and its normalised text (the race-free create key)."""

    query: sq.Query
    normalised: str

    @property
    def match_key(self) -> str:
        """A fixed-length key for the normalised query."""
        return hashlib.sha256(self.normalised.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: the version now current, and whether it created the resource."""

    resource_type: str
    version: repo.Version
    created: bool = False
    existing: bool = False


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What a delete did; `version` is None when there was nothing live to delete."""

    resource_type: str
    logical_id: str | None
    version: repo.Version | None


Patcher = Callable[[dict[str, Any]], dict[str, Any]]


def _reference_targets(
    resource_type: str, logical_id: str, found: list[tuple[str, str]], base_url: str
) -> dict[tuple[str, str], list[str]]:
    """(type, id) of each hosted resource referenced, with the elements that reference it."""
    targets: dict[tuple[str, str], list[str]] = {}
    for expression, reference in found:
        target_type, target_id = split_reference(reference, base_url)
        if target_type in RESOURCE_TYPES and (target_type, target_id) != (
            resource_type,
            logical_id,
        ):
            targets.setdefault((target_type, target_id), []).append(expression)
    return targets


async def _missing_references(
    conn: Connection, caller: Caller, targets: dict[tuple[str, str], list[str]]
) -> Unprocessable:
    live = await repo.live_among(conn, caller, list(targets))
    return _unresolved(targets, live) or Unprocessable()


def _unresolved(
    targets: dict[tuple[str, str], list[str]], live: set[tuple[str, str]]
) -> Unprocessable | None:
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


async def live_targets(conn: Connection, caller: Caller, prepared: "list[Prepared]") -> set[Any]:
    """The live resources among those `prepared` writes reference, locked until commit."""
    wanted = {target for item in prepared for target in item.targets}
    return await repo.live_among(conn, caller, sorted(wanted), lock=True)


def refusal(prepared: "Prepared", live: set[tuple[str, str]]) -> Unprocessable | None:
    """Why `create_checked` may not write `prepared`: a broken rule or a missing reference."""
    if prepared.issues:
        return Unprocessable(prepared.issues)
    return _unresolved(prepared.targets, live)


async def create_checked(
    conn: Connection, caller: Caller, prepared: "list[Prepared]"
) -> list[WriteResult]:
    """Plain creates written together, each passed by `refusal` against `live_targets`.

    For a transaction Bundle's many creates: the rules are `create`'s, the writes one round
    trip. Patients are not for this (their NHS numbers are claimed one by one).
    """
    assert all(item.resource["resourceType"] != "Patient" for item in prepared)
    versions = await repo.create_all(
        conn, caller, [(item.resource, item.logical_id, item.derived) for item in prepared]
    )
    return [WriteResult(v.resource_type, v, created=True) for v in versions]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A resource checked against the rules that need no database, and what its write stores.

    Built before the transaction opens, so the writer is held only for the database work;
    `issues` are raised when the write is attempted, after the preconditions (RFC 9110 13.2.2).
    """

    resource: dict[str, Any]
    logical_id: str
    issues: list[Issue]
    targets: dict[tuple[str, str], list[str]]
    derived: Derived
    flag: FlagFacts | None = None


def prepare(
    resource: dict[str, Any],
    base_url: str,
    logical_id: str | None = None,
    written_together: frozenset[tuple[str, str]] = frozenset(),
    *,
    vocabulary: Vocabulary,
) -> Prepared:
    """Normalise and check `resource`, and derive its rows; a new id when none is given.

    References to `written_together` resources (created by the same transaction Bundle,
    which stands or falls as one) are not required to be live when this one is written.
    """
    resource, found = rules.survey(resource)
    resource_type = resource["resourceType"]
    issues = rules.binding_issues(resource_type, resource)
    flag = None
    if resource_type in ("Patient", "RelatedPerson"):  # a relative's links by NHS number
        issues.extend(rules.nhs_number_issues(resource))
    elif resource_type == "Flag":
        issues.extend(flag_rules.flag_issues(resource, vocabulary, base_url))
        one_active = flag_rules.one_active_claim(resource, vocabulary, base_url)
        flag = FlagFacts(vocabulary, base_url, one_active)
    logical_id = logical_id or new_logical_id()
    targets = _reference_targets(resource_type, logical_id, found, base_url)
    for target in written_together & targets.keys():
        del targets[target]
    derived = derive(resource, logical_id, base_url)
    return Prepared(resource, logical_id, issues, targets, derived, flag)


async def _save(
    conn: Connection,
    caller: Caller,
    prepared: Prepared,
    current: repo.Current | None,
    method: str,
    *,
    last: bool,
) -> tuple[int, repo.Version]:
    """Write a prepared resource (422 if it broke a rule); `last`: nothing is written after."""
    if prepared.issues:
        raise Unprocessable(prepared.issues)
    resource, targets, flag = prepared.resource, prepared.targets, prepared.flag
    if flag is not None and current is not None and current.body is not None:
        check_flag_change(orjson.loads(current.body), resource, flag)
    follow_up = after_save.needed(resource, flag, current is not None)
    saved = await repo.save(
        conn, caller, resource, prepared.logical_id, current, method, prepared.derived,
        list(targets), last and not follow_up,
    )  # fmt: skip
    if saved is None:
        raise await _missing_references(conn, caller, targets)
    if follow_up:
        await after_save.write(conn, caller, saved[0], prepared.logical_id, resource, flag,
                               current is not None)  # fmt: skip
    return saved


async def _claim(
    conn: Connection, caller: Caller, conditional: Conditional, pk: int, resource_type: str
) -> None:
    holder = await repo.claim_conditional_key(
        conn, caller, resource_type, conditional.match_key, pk
    )
    if holder is None:
        return
    probe = sq.Query(resource_type, conditional.query.criteria, 1, exclude_pk=pk)
    if await sq.search(conn, caller, probe):
        raise WriteConflict("a concurrent conditional create matched first")
    await repo.take_over_conditional_key(
        conn, caller, resource_type, conditional.match_key, pk, holder
    )


async def single_match(
    conn: Connection, caller: Caller, conditional: Conditional, interaction: str
) -> Any:
    """The pk and id of the only match, None for none; several matches are 412."""
    query = conditional.query
    matches = await sq.search(conn, caller, sq.Query(query.resource_type, query.criteria, 2))
    if len(matches) > 1:
        raise PreconditionFailed.of(
            f"conditional {interaction} matched more than one {query.resource_type}",
            code="multiple-matches",
        )
    return matches[0] if matches else None


async def create(
    conn: Connection,
    caller: Caller,
    prepared: Prepared,
    if_none_exist: Conditional | None = None,
) -> WriteResult:
    """create, or conditional create (http://hl7.org/fhir/R4/http.html#create)."""
    resource_type = prepared.resource["resourceType"]
    if if_none_exist is not None:
        match = await single_match(conn, caller, if_none_exist, "create")
        if match is not None:
            version = await repo.read_by_pk(conn, caller, match[0])
            return WriteResult(resource_type, version, existing=True)
    if if_none_exist is None:
        pk, version = await _save(conn, caller, prepared, None, "POST", last=True)
        return WriteResult(resource_type, version, created=True)
    try:
        pk, version = await _save(conn, caller, prepared, None, "POST", last=False)
    except NhsNumberHeld as held:
        query = if_none_exist.query
        matches = await sq.search(conn, caller, sq.Query(query.resource_type, query.criteria, 3))
        if any(match[1] in held.holders for match in matches):
            # A concurrent create matching the condition committed the same NHS number
            # first: the retry will find it through the condition.
            raise WriteConflict("a concurrent conditional create claimed it first") from held
        raise
    await _claim(conn, caller, if_none_exist, pk, resource_type)
    return WriteResult(resource_type, version, created=True)


def _check_version(current: repo.Current | None, if_match: int | None) -> None:
    if if_match is None:
        return
    if current is None or current.deleted or current.version_id != if_match:
        found = "none" if current is None or current.deleted else str(current.version_id)
        raise PreconditionFailed.of(
            f"If-Match version {if_match} does not match the current version ({found})",
            code="conflict",
        )


async def _update(
    conn: Connection, caller: Caller, prepared: Prepared, if_match: int | None
) -> tuple[int, WriteResult]:
    resource_type = prepared.resource["resourceType"]
    current = await repo.read_current(conn, caller, resource_type, prepared.logical_id, lock=True)
    _check_version(current, if_match)
    pk, version = await _save(conn, caller, prepared, current, "PUT", last=True)
    created = current is None or current.deleted
    return pk, WriteResult(resource_type, version, created=created)


async def update(
    conn: Connection, caller: Caller, prepared: Prepared, if_match: int | None = None
) -> WriteResult:
    """update, or update-as-create with a client id (http://hl7.org/fhir/R4/http.html#update)."""
    _, result = await _update(conn, caller, prepared, if_match)
    return result


async def conditional_update(
    conn: Connection,
    caller: Caller,
    resource: dict[str, Any],
    conditional: Conditional,
    base_url: str,
    if_match: int | None = None,
    new_id: str | None = None,
    *,
    vocabulary: Vocabulary,
) -> WriteResult:
    """Conditional update (http://hl7.org/fhir/R4/http.html#cond-update); with no match and no
    id in the body, the new resource gets `new_id` (or a fresh one)."""
    resource_type = resource["resourceType"]
    body_id = resource.get("id")
    match = await single_match(conn, caller, conditional, "update")
    if match is not None:
        if body_id is not None and body_id != match[1]:
            raise Invalid.of(
                f"resource id {body_id} differs from the matched {resource_type}/{match[1]}",
                f"{resource_type}.id",
            )
        prepared = prepare(resource, base_url, match[1], vocabulary=vocabulary)
        return await update(conn, caller, prepared, if_match)
    prepared = prepare(resource, base_url, body_id or new_id, vocabulary=vocabulary)
    if body_id is not None:
        pk, result = await _update(conn, caller, prepared, if_match)
    else:
        pk, version = await _save(conn, caller, prepared, None, "PUT", last=False)
        result = WriteResult(resource_type, version, created=True)
    await _claim(conn, caller, conditional, pk, resource_type)
    return result


async def patch(
    conn: Connection,
    caller: Caller,
    resource_type: str,
    logical_id: str,
    patcher: Patcher,
    base_url: str,
    if_match: int | None = None,
    *,
    vocabulary: Vocabulary,
) -> WriteResult:
    """patch: apply `patcher` to the current version, then save like an update."""
    current = await repo.read_current(conn, caller, resource_type, logical_id, lock=True)
    if current is None:
        raise NotFound.of(f"{resource_type}/{logical_id} is not known")
    if current.deleted or current.body is None:
        raise Gone.of(f"{resource_type}/{logical_id} was deleted")
    _check_version(current, if_match)
    patched = patcher(orjson.loads(current.body))
    prepared = prepare(patched, base_url, logical_id, vocabulary=vocabulary)
    _, version = await _save(conn, caller, prepared, current, "PATCH", last=True)
    return WriteResult(resource_type, version)


async def delete(
    conn: Connection,
    caller: Caller,
    resource_type: str,
    logical_id: str,
    if_match: int | None = None,
) -> DeleteResult:
    """delete; deleting an unknown or deleted resource is not an error (R4 http.html#delete)."""
    current = await repo.read_current(conn, caller, resource_type, logical_id, lock=True)
    if current is None or current.deleted:
        _check_version(None, if_match)
        return DeleteResult(resource_type, logical_id, None)
    _check_version(current, if_match)
    if resource_type == "Flag" and current.body is not None:
        refuse_flag_delete(orjson.loads(current.body), logical_id)
    version = await repo.delete(conn, caller, resource_type, logical_id, current)
    return DeleteResult(resource_type, logical_id, version)


async def conditional_delete(
    conn: Connection, caller: Caller, conditional: Conditional
) -> DeleteResult:
    """Conditional delete of a single match (http://hl7.org/fhir/R4/http.html#3.1.0.7.1)."""
    resource_type = conditional.query.resource_type
    match = await single_match(conn, caller, conditional, "delete")
    if match is None:
        return DeleteResult(resource_type, None, None)
    return await delete(conn, caller, resource_type, match[1])
