"""Values in the forms they are indexed and searched in: folded text, sound codes, date ranges.

Spec: http://hl7.org/fhir/R4/search.html#string, #date
"""

import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from functools import lru_cache

LONGEST_TEXT = 512  # characters of normalised text kept in an index entry
EARLIEST = -(2**62)  # open start of a period
LATEST = 2**62  # open end of a period

_DATE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=16384)  # codes' displays and common names repeat across resources
def fold(text: str) -> str:
    """Case- and accent-insensitive form: compatibility-decomposed, marks dropped, casefolded."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())[:LONGEST_TEXT]


_SOUNDEX = {
    c: str(d)
    for d, letters in enumerate(("aeiouyhw", "bfpv", "cgjkqsxz", "dt", "l", "mn", "r"))
    for c in letters
}


def soundex(text: str) -> str:
    """American Soundex of the first word (the phonetic match of `phonetic` parameters)."""
    letters = [c for c in fold(text) if "a" <= c <= "z"]
    if not letters:
        return ""
    code, previous = letters[0].upper(), _SOUNDEX[letters[0]]
    for letter in letters[1:]:
        digit = _SOUNDEX[letter]
        if digit not in ("0", previous):
            code += digit
        if letter not in "hw":
            previous = digit
    return (code + "000")[:4]


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.month - 1 + months
    return moment.replace(year=moment.year + total // 12, month=total % 12 + 1)


@lru_cache(maxsize=16384)  # dates repeat: a day's flags, a cohort's birth dates
def date_range(text: str) -> tuple[int, int] | None:
    """[low, high) in microseconds since the epoch that a date, dateTime or instant covers.

    A value stands for every moment its precision allows: `2015` is all of 2015, `2015-03-01`
    that whole day (UTC when no zone is given), `...T10:00:05` that second. None if malformed.
    """
    match = _DATE.match(text)
    if match is None:
        return None
    parts = match.groupdict()
    try:
        start = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    zone = parts["zone"]
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        start -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    fraction = parts["fraction"]
    if fraction:
        start += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
        low = _micros(start)
        return low, low + max(1, 10 ** (6 - min(len(fraction), 6)))
    if parts["second"]:
        end = start + timedelta(seconds=1)
    elif parts["minute"]:
        end = start + timedelta(minutes=1)
    elif parts["day"]:
        end = start + timedelta(days=1)
    elif parts["month"]:
        end = _add_months(start, 1)
    else:
        end = start.replace(year=start.year + 1)
    return _micros(start), _micros(end)


LONGEST_INDEXED = 256  # characters; a B-tree entry holds at most ~2700 bytes


def indexed_text(text: str | None) -> str | None:
    """The form a value is indexed and searched in: as it is, or if long, a prefix and hash."""
    if text is None or len(text) <= LONGEST_INDEXED:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{text[:128]}...sha256:{digest}"


def split_reference(reference: str, base_url: str) -> tuple[str | None, str]:
    """(type, id) of a relative or own-base absolute reference; (None, url) for others."""
    local = reference.removeprefix(base_url.rstrip("/") + "/")
    parts = local.split("/")
    if len(parts) >= 2 and parts[0][:1].isupper() and "://" not in local:
        if len(parts) == 4 and parts[2] == "_history":
            return parts[0], parts[1]
        if len(parts) == 2:
            return parts[0], parts[1]
    return None, reference


def target_id(value: object, resource_type: str, base: str) -> str | None:
    """The id a Reference points at, if it points at a `resource_type` here."""
    reference = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(reference, str):
        return None
    found_type, found_id = split_reference(reference, base)
    return found_id if found_type == resource_type else None
