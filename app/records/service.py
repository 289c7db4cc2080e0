"""The write interactions, for every resource type: single requests and every Bundle entry run
through here, on a caller's repository inside a transaction the FHIR layer opened.

Services never commit: `records.store.Store.write` does. Spec: http://hl7.org/fhir/R4/http.html
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from app.access import writing
from app.criteria import Query
from app.errors import Gone, Invalid, NhsNumberHeld, NotFound, PreconditionFailed, WriteConflict
from app.flags import writes as domain
from app.flags.codes import Vocabulary
from app.records.writing import Prepared, follow, prepare, save
from app.storage import claims
from app.storage import query as sq
from app.storage import repository as storage
from app.storage.query import Match
from app.storage.repository import Repository


@dataclass(frozen=True, slots=True)
class Conditional:
    """A conditional URL's criteria, and its normalised text (the race-free create key)."""

    query: Query
    normalised: str

    @property
    def match_key(self) -> str:
        """A fixed-length key for the normalised query."""
        return hashlib.sha256(self.normalised.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: the version now current, and whether it created the resource."""

    resource_type: str
    version: storage.Version
    created: bool = False
    existing: bool = False


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What a delete did; `version` is None when there was nothing live to delete."""

    resource_type: str
    logical_id: str | None
    version: storage.Version | None


Patcher = Callable[[dict[str, Any]], dict[str, Any]]
WRITING = ("create", "update")  # conditional interactions that write when nothing matches


async def _claim(repository: Repository, conditional: Conditional, pk: int) -> None:
    resource_type = conditional.query.resource_type
    key = conditional.match_key
    holder = await claims.claim_conditional_key(repository, resource_type, key, pk)
    if holder is None:
        return
    probe = Query(resource_type, conditional.query.criteria, 1, exclude_pk=pk)
    if await sq.search(storage.seeing_everything(repository), probe):  # hidden ones match too
        raise WriteConflict("a concurrent conditional create matched first")
    await claims.take_over_conditional_key(repository, resource_type, key, pk, holder)


async def single_match(
    repository: Repository, conditional: Conditional, interaction: str
) -> Match | None:
    """The only match the caller may see, None for none; several matches are 412. A create
    or update that only a resource the caller may not see matches is 412 too: it would
    otherwise write a duplicate of it."""
    query = conditional.query
    wanted = Query(query.resource_type, query.criteria, 2)
    matches = await sq.search(repository, wanted)
    if len(matches) > 1:
        raise PreconditionFailed.of(
            f"conditional {interaction} matched more than one {query.resource_type}",
            code="multiple-matches",
        )
    if matches:
        return matches[0]
    if interaction in WRITING and await sq.hidden_match(repository, wanted):
        if await sq.search(repository, wanted):  # a match it may see was committed meanwhile
            raise WriteConflict("a concurrent conditional write matched first")
        raise PreconditionFailed.of(
            f"conditional {interaction}: the criteria match a {query.resource_type} "
            "this client may not read",
            code="conflict",
        )
    return None


async def create(
    repository: Repository, prepared: Prepared, if_none_exist: Conditional | None = None
) -> WriteResult:
    """create, or conditional create (http://hl7.org/fhir/R4/http.html#create)."""
    resource_type = prepared.resource["resourceType"]
    writing.check_type(repository.caller, resource_type)  # whatever the condition matches
    if if_none_exist is None:
        _, version = await save(repository, prepared, None, "POST", last=True)
        return WriteResult(resource_type, version, created=True)
    match = await single_match(repository, if_none_exist, "create")
    if match is not None:
        found = await storage.read_by_pk(repository, match.pk)
        assert found is not None, "read_by_pk of a key that was just found"
        return WriteResult(resource_type, found, existing=True)
    try:
        pk, version = await save(repository, prepared, None, "POST", last=False)
    except NhsNumberHeld as held:
        query = if_none_exist.query
        matches = await sq.search(repository, Query(query.resource_type, query.criteria, 3))
        if any(match.pk in held.holders for match in matches):
            # A concurrent create matching the condition committed the same NHS number
            # first: the retry will find it through the condition.
            raise WriteConflict("a concurrent conditional create claimed it first") from held
        raise
    await _claim(repository, if_none_exist, pk)
    return WriteResult(resource_type, version, created=True)


def _check_version(current: storage.Current | None, if_match: int | None) -> None:
    if if_match is None:
        return
    if current is None or current.deleted or current.version_id != if_match:
        found = "none" if current is None or current.deleted else str(current.version_id)
        raise PreconditionFailed.of(
            f"If-Match version {if_match} does not match the current version ({found})",
            code="conflict",
        )


async def _update(
    repository: Repository, prepared: Prepared, if_match: int | None
) -> tuple[int, WriteResult]:
    resource_type = prepared.resource["resourceType"]
    logical_id = prepared.logical_id
    current = await _writable(repository, resource_type, logical_id)
    _check_version(current, if_match)
    pk, version = await save(repository, prepared, current, "PUT", last=True)
    created = current is None or current.deleted
    return pk, WriteResult(resource_type, version, created=created)


async def _writable(
    repository: Repository, resource_type: str, logical_id: str, *, deleting: bool = False
) -> storage.Current | None:
    """The current row of a resource about to be changed or deleted by id, locked; None when
    there is none and the caller may write one (access.writing: 404 for a resource the caller
    cannot see, as for one that does not exist; 403 for one it may not change). A `system`
    client's delete of what it cannot see deletes nothing, as for an id that does not exist."""
    current = await storage.read_current(repository, resource_type, logical_id, lock=True)
    caller = repository.caller
    if current is None:
        if not deleting and await storage.hidden(repository, resource_type, logical_id):
            raise NotFound.of(f"{resource_type}/{logical_id} is not known")
        writing.check_absent(caller, resource_type, logical_id)
    else:
        writing.check_change(caller, resource_type, logical_id, current.author_org)
    return current


async def update(
    repository: Repository, prepared: Prepared, if_match: int | None = None
) -> WriteResult:
    """update, or update-as-create with a client id (http://hl7.org/fhir/R4/http.html#update)."""
    _, result = await _update(repository, prepared, if_match)
    return result


async def conditional_update(
    repository: Repository,
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
    match = await single_match(repository, conditional, "update")
    if match is not None:
        if body_id is not None and body_id != match.logical_id:
            raise Invalid.of(
                f"resource id {body_id} differs from the matched {resource_type}/"
                f"{match.logical_id}",
                f"{resource_type}.id",
            )
        prepared = prepare(
            resource, base_url, match.logical_id, vocabulary=vocabulary, caller=repository.caller
        )
        return await update(repository, prepared, if_match)
    prepared = prepare(
        resource, base_url, body_id or new_id, vocabulary=vocabulary, caller=repository.caller
    )
    if body_id is not None:
        pk, result = await _update(repository, prepared, if_match)
    else:
        pk, version = await save(repository, prepared, None, "PUT", last=False)
        result = WriteResult(resource_type, version, created=True)
    await _claim(repository, conditional, pk)
    return result


async def patch(
    repository: Repository,
    resource_type: str,
    logical_id: str,
    patcher: Patcher,
    base_url: str,
    if_match: int | None = None,
    *,
    vocabulary: Vocabulary,
) -> WriteResult:
    """patch: apply `patcher` to the current version, then save like an update."""
    current = await _writable(repository, resource_type, logical_id)
    if current is None:
        raise NotFound.of(f"{resource_type}/{logical_id} is not known")
    if current.deleted or current.body is None:
        raise Gone.of(f"{resource_type}/{logical_id} was deleted")
    _check_version(current, if_match)
    patched = patcher(orjson.loads(current.body))
    prepared = prepare(
        patched, base_url, logical_id, vocabulary=vocabulary, caller=repository.caller
    )
    _, version = await save(repository, prepared, current, "PATCH", last=True)
    return WriteResult(resource_type, version)


async def delete(
    repository: Repository, resource_type: str, logical_id: str, if_match: int | None = None
) -> DeleteResult:
    """delete; deleting an unknown or deleted resource is not an error (R4 http.html#delete)."""
    current = await _writable(repository, resource_type, logical_id, deleting=True)
    if current is None or current.deleted or current.body is None:
        _check_version(None, if_match)
        return DeleteResult(resource_type, logical_id, None)
    _check_version(current, if_match)
    follow_ups = domain.on_delete(resource_type, logical_id, orjson.loads(current.body))
    version = await storage.delete(repository, resource_type, logical_id, current)
    await follow(repository, list(follow_ups), current.pk, existed=True)
    return DeleteResult(resource_type, logical_id, version)


async def conditional_delete(repository: Repository, conditional: Conditional) -> DeleteResult:
    """Conditional delete of a single match (http://hl7.org/fhir/R4/http.html#3.1.0.7.1)."""
    resource_type = conditional.query.resource_type
    match = await single_match(repository, conditional, "delete")
    if match is None:
        return DeleteResult(resource_type, None, None)
    return await delete(repository, resource_type, match.logical_id)
