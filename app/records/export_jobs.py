"""A bulk export job as the domain sees it: what was asked, who asked (the Caller every query
runs as), the snapshot's watermark, and each part's committed position; its manifest.

Spec: https://hl7.org/fhir/uv/bulkdata/STU2/export.html
"""

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

from app.access import Caller
from app.clock import instant
from app.registry import COMPARTMENT_MEMBERS, RESOURCE_TYPES
from app.storage.export_jobs import COMPLETED, FAILED, IN_PROGRESS, JobRow

__all__ = ["COMPLETED", "FAILED", "IN_PROGRESS", "ExportRequest", "Job", "Part"]

SYSTEM_TYPES = tuple(RESOURCE_TYPES)
PATIENT_TYPES = ("Patient", *COMPARTMENT_MEMBERS)  # a Patient and its compartment
Kind = Literal["system", "patient"]


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """The parameters of a kick-off, checked: `type_filters` maps a type to its `_typeFilter`
    queries (ORed), `elements` the `_elements` names (None: whole resources)."""

    kind: Kind
    types: tuple[str, ...]
    since: int | None = None
    type_filters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    elements: tuple[str, ...] | None = None

    def to_json(self) -> str:
        """The stored form."""
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str) -> "ExportRequest":
        """The request a job row holds."""
        data = orjson.loads(text)
        filters = {name: tuple(queries) for name, queries in data["type_filters"].items()}
        elements = tuple(data["elements"]) if data["elements"] is not None else None
        return cls(data["kind"], tuple(data["types"]), data["since"], filters, elements)


@dataclass(slots=True)
class Part:
    """One output file of a job: a type's resources (`output`), its deletions (`deleted`) or
    what writes hid from the caller (`hidden`, listed with the deletions), and how far it is
    committed (`after`: the last key read, with `after_at` its changed_at for `hidden`;
    `size`: bytes in the file)."""

    kind: Literal["output", "deleted", "hidden"]
    resource_type: str
    after: int = 0
    count: int = 0
    size: int = 0
    done: bool = False
    after_at: int = 0

    @property
    def file_name(self) -> str:
        """Its file within the job's directory."""
        prefix = "" if self.kind == "output" else f"{self.kind}-"
        return f"{prefix}{self.resource_type}.ndjson"


def parts_of(request: ExportRequest) -> list[Part]:
    """The parts a request makes: each type's resources, then (with `_since`) its deletions
    and what was hidden from the caller since."""
    parts = [Part("output", name) for name in request.types]
    if request.since is not None:
        parts += [Part("deleted", name) for name in request.types]
        parts += [Part("hidden", name) for name in request.types]
    return parts


def progress_json(parts: list[Part]) -> str:
    """The stored form of a job's progress."""
    return orjson.dumps({"parts": [asdict(p) for p in parts]}).decode()


def caller_json(caller: Caller) -> str:
    """The stored form of the caller a job reads as."""
    grants = None if caller.grants is None else sorted(caller.grants)
    readable = None if caller.readable_types is None else sorted(caller.readable_types)
    found = {
        "subject": caller.subject,
        "organisation": caller.organisation,
        "role": caller.role,
        "grants": grants,
        "readable_types": readable,
    }
    return orjson.dumps(found).decode()


def caller_from_json(text: str) -> Caller:
    """The caller a job row holds."""
    data = orjson.loads(text)
    grants = None if data["grants"] is None else frozenset(tuple(g) for g in data["grants"])
    readable = data["readable_types"]
    return Caller(
        data["subject"],
        data["organisation"],
        data["role"],
        grants,
        None if readable is None else frozenset(readable),
    )


@dataclass(slots=True)
class Job:
    """A stored job, decoded."""

    job_id: str
    client_id: str
    caller: Caller
    request_url: str
    request: ExportRequest
    watermark: int
    status: str
    parts: list[Part]
    error: str | None
    finished_at: int | None

    @classmethod
    def of(cls, row: JobRow) -> "Job":
        """The job a row holds."""
        progress = orjson.loads(row.progress)
        parts = [Part(**part) for part in progress["parts"]]
        request = ExportRequest.from_json(row.params)
        caller = caller_from_json(row.caller)
        return cls(
            row.job_id,
            row.client_id,
            caller,
            row.request,
            request,
            row.watermark,
            row.status,
            parts,
            row.error,
            row.finished_at,
        )

    def part_named(self, name: str) -> Part | None:
        """The part whose file the manifest lists under this name, if any."""
        if self.status != COMPLETED:
            return None
        return next((p for p in self.parts if p.count and p.file_name == name), None)

    def progress_text(self) -> str:
        """What `X-Progress` says while it runs."""
        done = sum(1 for part in self.parts if part.done)
        written = sum(part.count for part in self.parts)
        return f"{done} of {len(self.parts)} parts done, {written} resources written"

    def manifest(self, base: str) -> dict[str, Any]:
        """The complete-status body of a completed job (https://hl7.org/fhir/uv/bulkdata/STU2/export.html#response---complete-status)."""
        url = f"{base}/$export-file/{self.job_id}/"
        output: list[dict[str, Any]] = []
        deleted: list[dict[str, Any]] = []
        for part in self.parts:
            if part.count:
                kind = part.resource_type if part.kind == "output" else "Bundle"
                entry = {"type": kind, "url": url + part.file_name, "count": part.count}
                (output if part.kind == "output" else deleted).append(entry)
        errors: list[dict[str, Any]] = []  # no partial failures: a job fails whole
        found: dict[str, Any] = {
            "transactionTime": instant(self.watermark),
            "request": self.request_url,
            "requiresAccessToken": True,
            "output": output,
            "error": errors,
        }
        if self.request.since is not None:
            found["deleted"] = deleted
        return found
