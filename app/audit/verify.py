"""`safeguard audit verify`: walk the audit trail's hash chain in order, in bounded batches,
recompute each seal and check that each record's stored columns and links are what its sealed
body says; report the first record altered, inserted or removed, and records left unsealed.

Read-only: it seals nothing. What a chain alone cannot show: records cut from its end, or a
chain rewritten whole from some record on. For those, keep the head a verify reports somewhere
else and give it back with `--anchor SEQ:HASH` next time.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.audit.chain import GENESIS, seal_hash
from app.audit.events import links_of, search_columns
from app.clock import instant
from app.storage import audit_chain
from app.storage.db import Database

VERIFY_BATCH = 2000  # records read at once: memory stays flat however long the chain
KEPT_PROBLEMS = 100  # problems listed; beyond them only counted
FIRST_SEQ = -(2**63)  # the walk starts below any seq, so none can hide below 1
COLUMNS = ("id", "recorded", "client_id", "client_org", "subtype", "action", "outcome")


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """A sealed record as stored: its place and hash, its columns, its body."""

    seq: int
    seal_hash: str | None
    audit_id: str
    columns: tuple[Any, ...]  # as COLUMNS, `recorded` written as the body writes it
    body: bytes

    @classmethod
    def of(cls, row: Sequence[Any]) -> "SealedRecord":
        """The record of a row of `audit_chain.sealed_from`."""
        columns = (row[2], instant(int(row[3])), *row[4:9])
        return cls(int(row[0]), row[1], str(row[2]), columns, bytes(row[9]))


@dataclass(frozen=True, slots=True)
class Problem:
    """One break in the chain: where (seq, AuditEvent id) and what."""

    seq: int
    audit_id: str | None
    kind: str  # removed, altered, inserted, or "altered or inserted" (the hash alone tells)
    detail: str

    def line(self) -> str:
        """The problem as a line of the report."""
        where = f"seq {self.seq}" + (f" (AuditEvent/{self.audit_id})" if self.audit_id else "")
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Unsealed:
    """Records left unsealed too long: how many, and the oldest."""

    count: int
    oldest_id: str | None
    oldest_recorded: int | None

    def line(self, seconds: int) -> str:
        """The finding as a line of the report."""
        when = instant(self.oldest_recorded or 0)
        return (
            f"{_count(self.count, 'record')} unsealed for over {seconds} s, the oldest "
            f"AuditEvent/{self.oldest_id} recorded {when}"
        )


@dataclass(slots=True)
class Verdict:
    """What a walk of the chain found."""

    verified: int = 0
    head: tuple[int, str] | None = None
    problems: list[Problem] = field(default_factory=list)  # the first KEPT_PROBLEMS
    problem_count: int = 0
    orphan_links: int = 0
    unsealed: Unsealed = Unsealed(0, None, None)

    @property
    def intact(self) -> bool:
        """Nothing altered, inserted or removed, and nothing left unsealed too long."""
        return self.problem_count == 0 and self.orphan_links == 0 and self.unsealed.count == 0

    def add(self, problem: Problem) -> None:
        """Count a problem; keep it if it is among the first."""
        self.problem_count += 1
        if len(self.problems) < KEPT_PROBLEMS:
            self.problems.append(problem)

    def summary(self) -> str:
        """The report's last line."""
        head = f"head seq {self.head[0]} hash {self.head[1]}" if self.head else "nothing sealed"
        if self.problems:
            first, count = self.problems[0].seq, _count(self.problem_count, "problem")
            state = f"chain broken at seq {first} ({count}; {head})"
        else:
            state = f"chain intact ({head})"
        extras = []
        if self.orphan_links:
            extras.append(_count(self.orphan_links, "stray audit_link row"))
        if self.unsealed.count:
            extras.append(f"{_count(self.unsealed.count, 'record')} left unsealed")
        line = f"{_count(self.verified, 'record')} verified, {state}"
        return f"{line}, but {' and '.join(extras)}" if extras else line

    def lines(self, stale_seconds: int) -> list[str]:
        """The report: each problem kept, stray links, records left unsealed, the summary."""
        lines = [problem.line() for problem in self.problems]
        if self.problem_count > len(self.problems):
            more = _count(self.problem_count - len(self.problems), "more problem")
            lines.append(f"... and {more}")
        if self.orphan_links:
            lines.append(
                f"{_count(self.orphan_links, 'audit_link row')} naming no stored AuditEvent: "
                "left by a removed record, or inserted"
            )
        if self.unsealed.count:
            lines.append(self.unsealed.line(stale_seconds))
        return [*lines, self.summary()]

    def as_json(self, stale_seconds: int) -> dict[str, Any]:
        """The verdict as a JSON object, for monitoring."""
        return {
            "intact": self.intact,
            "verified": self.verified,
            "head": {"seq": self.head[0], "hash": self.head[1]} if self.head else None,
            "problemCount": self.problem_count,
            "problems": [
                {"seq": p.seq, "id": p.audit_id, "kind": p.kind, "detail": p.detail}
                for p in self.problems
            ],
            "orphanLinks": self.orphan_links,
            "unsealed": {
                "olderThanSeconds": stale_seconds,
                "count": self.unsealed.count,
                "oldestId": self.unsealed.oldest_id,
            },
        }


class Walk:
    """The chain read in order: each record checked against the one before it."""

    def __init__(self, verdict: Verdict, anchor: tuple[int, str] | None) -> None:
        self.verdict = verdict
        self.anchor = anchor
        self.expected = 1  # the seq the next record must carry
        self.previous: str | None = GENESIS  # None: the previous record is missing

    def check(self, record: SealedRecord, links: list[tuple[str, str]]) -> None:
        """Check one record, in chain order."""
        verdict = self.verdict
        if record.seq < self.expected:
            detail = "a seq below 1, outside the chain"
            verdict.add(Problem(record.seq, record.audit_id, "inserted", detail))
            return
        if record.seq > self.expected:
            verdict.add(_removed(self.expected, record.seq - 1))
            self.previous = None  # its own hash cannot be checked without its predecessor's
        problem = self._seal_problem(record) or _content_problem(record, links)
        if problem is not None:
            verdict.add(problem)
        verdict.verified += 1
        verdict.head = (record.seq, record.seal_hash or "")
        self.previous, self.expected = record.seal_hash, record.seq + 1

    def _seal_problem(self, record: SealedRecord) -> Problem | None:
        anchor = self.anchor
        if anchor is not None and record.seq == anchor[0] and record.seal_hash != anchor[1]:
            detail = "its hash is not the one anchored: the chain was rewritten"
            return Problem(record.seq, record.audit_id, "altered", detail)
        if self.previous is None:
            return None
        if record.seal_hash != seal_hash(self.previous, record.seq, record.body):
            detail = "its hash does not match its content and the previous record's hash"
            return Problem(record.seq, record.audit_id, "altered or inserted", detail)
        return None

    def finish(self) -> None:
        """The end of the chain: the anchored record must have been reached."""
        if self.anchor is not None and self.anchor[0] >= self.expected:
            detail = "the anchored record is gone: the chain was cut short"
            self.verdict.add(Problem(self.anchor[0], None, "removed", detail))


def _count(count: int, noun: str) -> str:
    """`1 record`, `2 records`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _removed(first: int, last: int) -> Problem:
    if first == last:
        return Problem(first, None, "removed", "this record is missing from the chain")
    return Problem(first, None, "removed", f"records {first} to {last} are missing")


def _content_problem(record: SealedRecord, links: list[tuple[str, str]]) -> Problem | None:
    """Whether the record's columns and links say what its sealed body says."""
    try:
        event = orjson.loads(record.body)
        said = (event["id"], event["recorded"], *search_columns(event))
        said_links = sorted(links_of(event))
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return Problem(record.seq, record.audit_id, "altered", "its body is not an AuditEvent")
    for name, told, held in zip(COLUMNS, said, record.columns, strict=True):
        if told != held:
            detail = f"its {name} column is not what its sealed body says"
            return Problem(record.seq, record.audit_id, "altered", detail)
    if sorted(links) != said_links:
        detail = "its audit_link rows are not what its sealed body says"
        return Problem(record.seq, record.audit_id, "altered", detail)
    return None


def _by_record(links: list[Sequence[Any]]) -> dict[str, list[tuple[str, str]]]:
    """audit_link rows grouped by the record they belong to."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for audit_id, kind, value in links:
        grouped.setdefault(audit_id, []).append((kind, value))
    return grouped


async def verify(
    db: Database, *, now: int, stale_seconds: int = 60, anchor: tuple[int, str] | None = None
) -> Verdict:
    """Walk the whole chain; report what is broken, and what is left unsealed too long."""
    verdict = Verdict()
    walk = Walk(verdict, anchor)
    first = FIRST_SEQ
    while True:
        async with db.reader() as conn:
            rows = await audit_chain.sealed_from(conn, first, VERIFY_BATCH)
            if not rows:
                break
            records = [SealedRecord.of(row) for row in rows]
            ids = [record.audit_id for record in records]
            links = await audit_chain.links_between(conn, records[0].seq, records[-1].seq, ids)
        by_record = _by_record(links)
        for record in records:
            walk.check(record, by_record.get(record.audit_id, []))
        first = records[-1].seq + 1
    walk.finish()
    async with db.reader() as conn:
        verdict.orphan_links = await audit_chain.orphan_links(conn)
        stale = await audit_chain.unsealed_before(conn, now - stale_seconds * 1_000_000)
    verdict.unsealed = Unsealed(*stale)
    return verdict
