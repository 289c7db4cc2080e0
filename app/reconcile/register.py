"""A register held elsewhere, read into one `Entry` per safeguarding flag it lists.

Three forms: a CSV of the documented columns (`COLUMNS`), FHIR NDJSON (one resource a line),
or a FHIR Bundle. In the FHIR forms each Flag names its child by the NHS number (a
`subject.identifier`, or a reference to a Patient in the same file that carries one) and its
author by ODS code (an `author.identifier`, or a reference to an Organization in the file).
A line that cannot be read is kept as an Entry with its `problem`: the report shows it as a
conflict, and nothing is written for it.
Spec: http://hl7.org/fhir/R4/nd-json.html, http://hl7.org/fhir/R4/bundle.html
"""

import csv
import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from app.flags.codes import Vocabulary
from app.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM, nhs_number_is_valid

COLUMNS = ("nhs_number", "flag_type", "start_date", "end_date", "author_ods", "flag_identifier")
REQUIRED = COLUMNS[:3] + COLUMNS[4:5]
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class RegisterError(Exception):
    """The register as a whole cannot be read (the message says why and where)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One flag the register lists: whose, what, since and until when, raised by whom."""

    where: str  # "line 12", "entry 3": where in the register (never the data itself)
    nhs_number: str
    flag_type: str | None  # a code of the project's flag-type code system; None: not one
    start: str
    end: str | None
    author_ods: str
    identifier: tuple[str, str] | None = None  # (system, value)
    problem: str | None = None  # why it cannot be reconciled, if it cannot

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The match key when no identifier is given: child, flag type, author, start."""
        return (self.nhs_number, self.flag_type or "", self.author_ods, self.start)


def read_register(path: Path, vocabulary: Vocabulary, identifier_system: str) -> list[Entry]:
    """The register's entries, in file order; RegisterError when the file is unreadable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegisterError(f"cannot read {path}: {exc.strerror}") from exc
    stripped = data.lstrip()
    if path.suffix.lower() == ".csv" or not stripped.startswith(b"{"):
        return list(_csv_entries(data, vocabulary, identifier_system))
    if path.suffix.lower() in (".ndjson", ".jsonl") or b"\n{" in stripped.rstrip():
        resources = list(_ndjson(data))
    else:
        resources = _bundle(data)
    return _fhir_entries(resources, vocabulary)


def _csv_entries(data: bytes, vocabulary: Vocabulary, system: str) -> Iterator[Entry]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RegisterError("the CSV register is not UTF-8") from exc
    rows = csv.DictReader(text.splitlines())
    missing = [c for c in REQUIRED if c not in (rows.fieldnames or [])]
    if missing:
        raise RegisterError(f"the CSV register lacks the column(s) {', '.join(missing)}")
    for row in rows:
        yield _csv_entry(f"line {rows.line_num}", row, vocabulary, system)


def _csv_entry(where: str, row: dict[str, str], vocabulary: Vocabulary, system: str) -> Entry:
    """One CSV row: the flag type as our code or its SNOMED CT equivalent."""
    cell = {name: (row.get(name) or "").strip() for name in COLUMNS}
    coding = [{"system": vocabulary.flag_type_system, "code": cell["flag_type"]}]
    coding.append({"system": "http://snomed.info/sct", "code": cell["flag_type"]})
    flag_type = vocabulary.flag_type({"coding": coding})
    given = cell["flag_identifier"]
    identifier = None
    if given:
        found_system, bar, value = given.rpartition("|")
        identifier = (found_system, value) if bar and found_system else (system, value)
    entry = Entry(
        where,
        cell["nhs_number"].replace(" ", ""),
        flag_type,
        cell["start_date"],
        cell["end_date"] or None,
        cell["author_ods"].upper(),
        identifier,
    )
    return _checked(entry, cell["flag_type"])


def _checked(entry: Entry, code: str) -> Entry:
    """`entry` with its first problem noted, if it has one."""
    problem = None
    if not nhs_number_is_valid(entry.nhs_number):
        problem = "not a valid NHS number"
    elif entry.flag_type is None:
        problem = f"flag type {code!r} is not in the safeguarding flag-type value set"
    elif not _is_date(entry.start):
        problem = "the start date is not a date (YYYY-MM-DD)"
    elif entry.end is not None and (not _is_date(entry.end) or entry.end < entry.start):
        problem = "the end date is not a date on or after the start"
    elif not entry.author_ods:
        problem = "no author ODS code"
    return entry if problem is None else replace(entry, problem=problem)


def _is_date(value: str) -> bool:
    """A calendar date written YYYY-MM-DD (not a week or ordinal date)."""
    if DATE.fullmatch(value) is None:
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _ndjson(data: bytes) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            resource = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise RegisterError(f"line {number} is not JSON") from exc
        if not isinstance(resource, dict):
            raise RegisterError(f"line {number} is not a FHIR resource")
        resource.setdefault("_where", f"line {number}")
        yield resource


def _bundle(data: bytes) -> list[dict[str, Any]]:
    try:
        bundle = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise RegisterError("the register is neither CSV, NDJSON nor a JSON Bundle") from exc
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise RegisterError("a JSON register is a Bundle (or NDJSON, one resource a line)")
    found = []
    for number, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict):
            full_url = entry.get("fullUrl")
            found.append(resource | {"_where": f"entry {number}", "_fullUrl": full_url})
    return found


def _fhir_entries(resources: list[dict[str, Any]], vocabulary: Vocabulary) -> list[Entry]:
    """One Entry per Flag; Patients and Organizations in the file only resolve references."""
    names: dict[str, str] = {}  # "Patient/x" or a fullUrl -> its NHS number or ODS code
    for resource in resources:
        system = {"Patient": NHS_NUMBER_SYSTEM, "Organization": ODS_SYSTEM}.get(
            str(resource.get("resourceType"))
        )
        value = _identifier_value(resource.get("identifier"), system) if system else None
        if value is not None:
            names[f"{resource['resourceType']}/{resource.get('id')}"] = value
            if resource.get("_fullUrl"):
                names[str(resource["_fullUrl"])] = value
    return [
        _flag_entry(resource, names, vocabulary)
        for resource in resources
        if resource.get("resourceType") == "Flag"
    ]


def _flag_entry(flag: dict[str, Any], names: dict[str, str], vocabulary: Vocabulary) -> Entry:
    found = flag.get("period")
    period: dict[str, Any] = found if isinstance(found, dict) else {}
    listed = flag.get("identifier")
    identifiers: list[Any] = listed if isinstance(listed, list) else []
    identifier = next(
        (
            (str(i["system"]), str(i["value"]))
            for i in identifiers
            if isinstance(i, dict) and i.get("system") and i.get("value")
        ),
        None,
    )
    code = flag.get("code")
    entry = Entry(
        str(flag.get("_where")),
        _named(flag.get("subject"), NHS_NUMBER_SYSTEM, names) or "",
        vocabulary.flag_type(code),
        str(period.get("start") or "")[:10],
        str(period["end"])[:10] if period.get("end") else None,
        (_named(flag.get("author"), ODS_SYSTEM, names) or "").upper(),
        identifier,
    )
    if flag.get("status") not in ("active", "inactive"):
        return replace(entry, problem="only active and inactive flags can be reconciled")
    if flag.get("status") == "inactive" and entry.end is None:
        return replace(entry, problem="an inactive flag has no period.end")
    return _checked(entry, _first_code(code))


def _named(value: Any, system: str, names: dict[str, str]) -> str | None:
    """The NHS number or ODS code a Reference gives: its identifier, or the resource it names."""
    if not isinstance(value, dict):
        return None
    direct = _identifier_value([value.get("identifier")], system)
    if direct is not None:
        return direct
    reference = value.get("reference")
    return names.get(reference) if isinstance(reference, str) else None


def _identifier_value(identifiers: Any, system: str | None) -> str | None:
    for identifier in identifiers if isinstance(identifiers, list) else []:
        if isinstance(identifier, dict) and identifier.get("system") == system:
            value = identifier.get("value")
            return str(value).replace(" ", "") if value else None
    return None


def _first_code(concept: Any) -> str:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    for coding in codings if isinstance(codings, list) else []:
        if isinstance(coding, dict) and coding.get("code"):
            return str(coding["code"])
    return ""
