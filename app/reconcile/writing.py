"""`--apply`: the differences written as transaction Bundles that a crash or a retry can never
duplicate. A new flag is a conditional create on its identifier (the register's, or one
derived from its match key); a changed or missing one an update under `If-Match` of the version
compared; a missing flag is ended (`inactive`, `period.end`, a removal reason), never deleted.
Each Bundle's `X-Request-ID` is derived from its own bytes, so a retry is answered with the
first answer, and a rerun that chunks the remaining work differently never reuses an id for
another body.
Spec: http://hl7.org/fhir/R4/http.html#transaction, http://hl7.org/fhir/R4/http.html#ccreate
"""

import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.bulk_client.credentials import ClientError
from app.flags.codes import FLAG_CATEGORY, SAFETY, SNOMED, Vocabulary
from app.reconcile.matching import CHANGED, NEW, Difference, desired_status
from app.reconcile.register import Entry
from app.reconcile.remote import FHIR_JSON, Remote

KEY_IDENTIFIER = "reconcile-key"  # `<canonical base>/Id/...`: a flag's derived identifier
REQUEST_IDS = uuid.UUID("5d0c1f0e-8a4e-4d51-9d0e-6f1c2a3b4c5d")  # namespace of X-Request-IDs
ENTRY = re.compile(r"Bundle\.entry\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class Context:
    """What a write needs besides the difference: ids here, the vocabulary, the day."""

    vocabulary: Vocabulary
    organisation_id: str
    children: dict[str, str]
    today: str
    removal_reason: str


@dataclass(slots=True)
class Applied:
    """What `--apply` did: records written, and those the server refused, with why."""

    written: int = 0
    bundles: int = 0
    refused: list[tuple[Difference, str]] = field(default_factory=list)


def entry_of(difference: Difference, context: Context) -> dict[str, Any]:
    """The transaction entry that makes the server agree with the register."""
    if difference.category == NEW:
        assert difference.entry is not None
        return _create(difference.entry, context)
    assert difference.flag is not None
    flag = {k: v for k, v in difference.flag.resource.items() if k != "meta"}
    if difference.category == CHANGED:
        assert difference.entry is not None
        flag = _as_listed(flag, difference.entry, context)
    else:
        flag = _ended(flag, context)
    return {
        "resource": flag,
        "request": {
            "method": "PUT",
            "url": f"Flag/{flag['id']}",
            "ifMatch": f'W/"{difference.flag.version}"',
        },
    }


def derived_identifier(entry: Entry, context: Context) -> tuple[str, str]:
    """The identifier of a flag the register lists without one: a digest of its match key."""
    digest = hashlib.sha256("|".join(entry.key).encode()).hexdigest()[:32]
    return context.vocabulary.url("Id", KEY_IDENTIFIER), digest


def _create(entry: Entry, context: Context) -> dict[str, Any]:
    system, value = entry.identifier or derived_identifier(entry, context)
    flag: dict[str, Any] = {
        "resourceType": "Flag",
        "identifier": [{"system": system, "value": value}],
        "status": "active",
        "category": [{"coding": [{"system": FLAG_CATEGORY, "code": SAFETY}]}],
        "subject": {"reference": f"Patient/{context.children[entry.nhs_number]}"},
        "author": {"reference": f"Organization/{context.organisation_id}"},
    }
    flag = _as_listed(flag, entry, context)
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid5(REQUEST_IDS, system + '|' + value)}",
        "resource": flag,
        "request": {"method": "POST", "url": "Flag", "ifNoneExist": f"identifier={system}|{value}"},
    }


def _as_listed(flag: dict[str, Any], entry: Entry, context: Context) -> dict[str, Any]:
    """`flag` with the register's period and status (a reason when ended), and its flag type
    coded anew only where it differs (a held flag's own coding is kept as it is)."""
    code = flag.get("code")
    if context.vocabulary.flag_type(code) != entry.flag_type:
        code = _coded(entry, context.vocabulary)
    period = {"start": entry.start} | ({"end": entry.end} if entry.end else {})
    status = desired_status(entry, context.today)
    changed = flag | {"code": code, "period": period, "status": status}
    if status == "inactive":
        return _with_reason(changed, context)
    return _without_reason(changed, context)


def _coded(entry: Entry, vocabulary: Vocabulary) -> dict[str, Any]:
    """The flag type as a CodeableConcept: our code, and its SNOMED CT equivalent if any."""
    concept = next(c for c in vocabulary.flag_types if c.code == entry.flag_type)
    coding: list[dict[str, str | None]] = [
        {"system": vocabulary.flag_type_system, "code": concept.code, "display": concept.display}
    ]
    if concept.snomed is not None:
        coding.append({"system": SNOMED, "code": concept.snomed, "display": concept.snomed_display})
    return {"coding": coding}


def _ended(flag: dict[str, Any], context: Context) -> dict[str, Any]:
    """A flag missing from the register, ended today (never before it started)."""
    period = dict(flag.get("period") or {})
    period["end"] = max(context.today, str(period.get("start") or "")[:10])
    return _with_reason(flag | {"status": "inactive", "period": period}, context)


def _with_reason(flag: dict[str, Any], context: Context) -> dict[str, Any]:
    vocabulary = context.vocabulary
    kept = _without_reason(flag, context)
    reason = {
        "url": vocabulary.removal_reason_extension,
        "valueCodeableConcept": {
            "coding": [{"system": vocabulary.removal_reason_system, "code": context.removal_reason}]
        },
    }
    return kept | {"extension": [*kept.get("extension", []), reason]}


def _without_reason(flag: dict[str, Any], context: Context) -> dict[str, Any]:
    url = context.vocabulary.removal_reason_extension
    others = [e for e in flag.get("extension") or [] if e.get("url") != url]
    rest = {k: v for k, v in flag.items() if k != "extension"}
    return rest | ({"extension": others} if others else {})


def request_id(body: bytes) -> str:
    """The X-Request-ID of a Bundle: derived from its bytes alone."""
    return str(uuid.uuid5(REQUEST_IDS, hashlib.sha256(body).hexdigest()))


async def apply(
    remote: Remote,
    to_do: list[Difference],
    context: Context,
    batch: int,
    progress: Callable[[int], None] | None = None,
) -> Applied:
    """Write `to_do` in transaction Bundles of up to `batch` entries: every update first,
    then the creates, never both in one Bundle (a transaction runs its creates before its
    updates, so a plan ended and a new one raised together would meet the one-active rule)."""
    applied = Applied()
    updates = [d for d in to_do if d.category != NEW]
    creates = [d for d in to_do if d.category == NEW]
    for group in (updates, creates):
        for start in range(0, len(group), batch):
            await _write_chunk(remote, group[start : start + batch], context, applied, progress)
    return applied


async def _write_chunk(
    remote: Remote,
    pending: list[Difference],
    context: Context,
    applied: Applied,
    progress: Callable[[int], None] | None,
) -> None:
    """One Bundle of `pending`; an entry the server refuses is set aside with the reason, and
    the rest of the Bundle is sent again."""
    while pending:
        refused = await _send(remote, pending, context, applied)
        if refused is None:
            applied.written += len(pending)
            if progress is not None:
                progress(len(pending))
            return
        index, reason = refused
        applied.refused.append((pending[index], reason))
        if progress is not None:
            progress(1)
        pending = pending[:index] + pending[index + 1 :]


async def _send(
    remote: Remote, pending: list[Difference], context: Context, applied: Applied
) -> tuple[int, str] | None:
    """POST one transaction; None when it committed, else (entry index, why) it was refused."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [entry_of(d, context) for d in pending],
    }
    body = orjson.dumps(bundle)
    headers = {"Content-Type": FHIR_JSON, "X-Request-ID": request_id(body)}
    response = await remote.request("POST", remote.server, headers=headers, content=body)
    if response.status_code == 200:
        applied.bundles += 1
        return None
    if response.status_code == 429 or response.status_code >= 500:
        raise ClientError(f"the server answered {response.status_code} to a transaction")
    return _refusal(response, len(pending))


def _refusal(response: Any, size: int) -> tuple[int, str]:
    """Which entry a refused transaction names, and the server's reason."""
    try:
        outcome = response.json()
    except ValueError:
        outcome = {}
    for issue in outcome.get("issue") or []:
        for expression in issue.get("expression") or []:
            match = ENTRY.match(str(expression))
            if match is not None and int(match.group(1)) < size:
                why = issue.get("diagnostics") or issue.get("code") or "refused"
                return int(match.group(1)), f"{response.status_code}: {why}"
    raise ClientError(f"the server refused a transaction ({response.status_code}) naming no entry")
