"""The register set against what the server holds: each record new, changed, the same,
missing from the register, or conflicting. Pure functions.

Matching is by business identifier: a Flag by its `identifier` when the register gives one,
else by (child's NHS number, flag type, author, start date). Only the register organisation's
own flags are considered: a flag another organisation raised is never changed or ended.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.reconcile.register import Entry

NEW, CHANGED, SAME, MISSING, CONFLICTING = "new", "changed", "same", "missing", "conflicting"
CATEGORIES = (NEW, CHANGED, SAME, MISSING, CONFLICTING)


@dataclass(frozen=True, slots=True)
class ServerFlag:
    """A safeguarding Flag the server holds, authored by the register's organisation."""

    id: str
    version: str
    patient_id: str
    nhs_number: str | None
    flag_type: str | None
    start: str
    end: str | None
    status: str
    identifiers: tuple[tuple[str, str], ...]
    resource: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Difference:
    """One record's category, and what differs or why it conflicts."""

    category: str
    entry: Entry | None = None  # None for a flag missing from the register
    flag: ServerFlag | None = None  # None for a new record
    changes: tuple[tuple[str, str | None, str | None], ...] = ()  # (field, here, register)
    reason: str | None = None  # why it conflicts


@dataclass(frozen=True, slots=True, repr=False)
class Plan:
    """Every record's Difference, in register order, then the missing ones."""

    differences: list[Difference]

    def __repr__(self) -> str:
        # Short: asyncio shows a finished task's result, and a nightly plan holds 300,000.
        return f"Plan({self.counts()})"

    def counts(self) -> dict[str, int]:
        """How many records fall into each category."""
        found = dict.fromkeys(CATEGORIES, 0)
        for difference in self.differences:
            found[difference.category] += 1
        return found

    def to_do(self) -> list[Difference]:
        """What `--apply` writes: the new, changed and missing records."""
        return [d for d in self.differences if d.category in (NEW, CHANGED, MISSING)]


def desired_status(entry: Entry, today: str) -> str:
    """A listed flag is active until its end date has come."""
    return "inactive" if entry.end is not None and entry.end <= today else "active"


def reconcile(
    entries: Iterable[Entry],
    organisation: str,
    children: dict[str, str],
    held: Iterable[ServerFlag],
    today: str,
) -> Plan:
    """Classify the register's `entries` against the flags `held` by the server (those the
    register's `organisation`, an ODS code, authored); `children` maps NHS numbers to the
    server's Patient ids; `today` (YYYY-MM-DD) decides whether an end date has come."""
    entries = list(entries)
    index = _Index([f for f in held if f.status != "entered-in-error"])
    matched = [index.claim(entry) for entry in entries]
    duplicates = _duplicates(entries)
    differences = [
        _classify(entry, flag, organisation, children, duplicates, today)
        for entry, flag in zip(entries, matched, strict=True)
    ]
    differences += [Difference(MISSING, flag=flag) for flag in index.unclaimed_active()]
    return Plan(differences)


class _Index:
    """The server's flags by identifier and by key; each matched to at most one entry."""

    def __init__(self, flags: list[ServerFlag]) -> None:
        self.flags = sorted(flags, key=lambda f: (f.status != "active", f.id))
        self.by_identifier: dict[tuple[str, str], ServerFlag] = {}
        self.by_key: dict[tuple[str, str, str], list[ServerFlag]] = defaultdict(list)
        for flag in self.flags:
            for identifier in flag.identifiers:
                self.by_identifier.setdefault(identifier, flag)
            if flag.nhs_number is not None and flag.flag_type is not None:
                self.by_key[(flag.nhs_number, flag.flag_type, flag.start)].append(flag)
        self.claimed: set[str] = set()

    def claim(self, entry: Entry) -> ServerFlag | None:
        """The flag `entry` names, if one is held and not yet claimed by another entry."""
        if entry.identifier is not None:
            found = self.by_identifier.get(entry.identifier)
            candidates = [found] if found is not None else []
        else:
            candidates = self.by_key.get((entry.nhs_number, entry.flag_type or "", entry.start), [])
        for flag in candidates:
            if flag.id not in self.claimed:
                self.claimed.add(flag.id)
                return flag
        return None

    def unclaimed_active(self) -> list[ServerFlag]:
        """Active flags no entry names: missing from the register."""
        return [f for f in self.flags if f.status == "active" and f.id not in self.claimed]


def _match_key(entry: Entry) -> tuple[str, ...]:
    if entry.identifier is not None:
        return ("identifier", *entry.identifier)
    return ("key", *entry.key)


def _duplicates(entries: list[Entry]) -> dict[tuple[str, ...], list[str]]:
    """Match keys listed more than once, with where each was."""
    places: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for entry in entries:
        places[_match_key(entry)].append(entry.where)
    return {key: where for key, where in places.items() if len(where) > 1}


def _classify(
    entry: Entry,
    flag: ServerFlag | None,
    organisation: str,
    children: dict[str, str],
    duplicates: dict[tuple[str, ...], list[str]],
    today: str,
) -> Difference:
    reason = _conflict(entry, organisation, children, duplicates)
    if reason is not None:
        return Difference(CONFLICTING, entry, flag, reason=reason)
    if flag is None:
        return Difference(NEW, entry)
    changes = _changes(entry, flag, today)
    return Difference(CHANGED if changes else SAME, entry, flag, changes)


def _conflict(
    entry: Entry,
    organisation: str,
    children: dict[str, str],
    duplicates: dict[tuple[str, ...], list[str]],
) -> str | None:
    """Why `entry` cannot be reconciled, if it cannot."""
    if entry.problem is not None:
        return entry.problem
    if entry.author_ods != organisation:
        return (
            f"raised by {entry.author_ods}, not by the register's organisation "
            f"{organisation}: the client may not change it"
        )
    places = duplicates.get(_match_key(entry))
    if places is not None:
        return f"the same flag is listed {len(places)} times ({', '.join(places)})"
    if entry.nhs_number not in children:
        return "no child with this NHS number is held here"
    return None


def _changes(
    entry: Entry, flag: ServerFlag, today: str
) -> tuple[tuple[str, str | None, str | None], ...]:
    """(field, as held here, as the register has it) for each field that differs."""
    pairs = (
        ("status", flag.status, desired_status(entry, today)),
        ("flag_type", flag.flag_type, entry.flag_type),
        ("start", flag.start, entry.start),
        ("end", flag.end, entry.end),
        ("nhs_number", flag.nhs_number, entry.nhs_number),
    )
    return tuple(pair for pair in pairs if pair[1] != pair[2])
