"""Values in the forms they are indexed and searched in: folded text, sound codes, date ranges.

Spec: http://hl7.org/fhir/R4/search.html#string, #date
"""

import hashlib
import re
import unicodedata
from datetime import MAXYEAR, date, time
from functools import lru_cache

LONGEST_TEXT = 512  # characters of normalised text kept in an index entry
EARLIEST = -(2**62)  # open start of a period
LATEST = 2**62  # open end of a period

_DATE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_FIELDS = (("year", 0), ("month", 1), ("day", 1), ("hour", 0), ("minute", 0), ("second", 0))


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


_MICROS = {"second": 1_000_000, "minute": 60_000_000, "day": 86_400_000_000}
_LONGEST_OFFSET = 14 * 60  # minutes: zones run from -14:00 to +14:00


def _day_micros(year: int, month: int = 1, day: int = 1) -> int:
    """Microseconds from the epoch to midnight UTC opening a day; the day after 9999-12-31
    (which no `date` holds) is counted too, so a range's end never overflows."""
    if year > MAXYEAR:
        return (date(MAXYEAR, 12, 31).toordinal() + 1 - _EPOCH_DAY) * _MICROS["day"]
    return (date(year, month, day).toordinal() - _EPOCH_DAY) * _MICROS["day"]


def _offset_micros(zone: str | None) -> int | None:
    """A zone's offset from UTC in microseconds (0 when absent); None beyond +-14:00."""
    if not zone or zone == "Z":
        return 0
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if minutes >= 60 or hours * 60 + minutes > _LONGEST_OFFSET:
        return None
    sign = 1 if zone[0] == "+" else -1
    return sign * (hours * 60 + minutes) * _MICROS["minute"]


def _span(parts: dict[str, str | None], start: int) -> int:
    """The length of the range a value covers, from the precision it is given to."""
    fraction = parts["fraction"]
    if fraction:
        return int(10 ** (6 - min(len(fraction), 6)))
    for unit in ("second", "minute"):
        if parts[unit]:
            return _MICROS[unit]
    if parts["day"]:
        return _MICROS["day"]
    year, month = int(parts["year"] or 0), int(parts["month"] or 0)
    if month:
        return _day_micros(year + month // 12, month % 12 + 1) - start
    return _day_micros(year + 1) - start


@lru_cache(maxsize=16384)  # dates repeat: a day's flags, a cohort's birth dates
def date_range(text: str) -> tuple[int, int] | None:
    """[low, high) in microseconds since the epoch that a date, dateTime or instant covers.

    A value stands for every moment its precision allows: `2015` is all of 2015, `2015-03-01`
    that whole day (UTC when no zone is given), `...T10:00:05` that second. None if malformed
    (no such day or time, or a zone beyond +-14:00). Counted in integers, not datetimes, so the
    whole range FHIR allows (0001-01-01T00:00:00+14:00 to 9999-12-31T23:59:59-14:00) fits.
    """
    match = _DATE.match(text)
    if match is None:
        return None
    parts = match.groupdict()
    numbers = [int(parts[k] or d) for k, d in _FIELDS]
    offset = _offset_micros(parts["zone"])
    try:
        time(numbers[3], numbers[4], numbers[5])
        day = _day_micros(numbers[0], numbers[1], numbers[2])
    except ValueError:
        return None
    if offset is None:
        return None
    clock = ((numbers[3] * 60 + numbers[4]) * 60 + numbers[5]) * _MICROS["second"]
    fraction = parts["fraction"]
    start = day + clock - offset + (int(fraction[:6].ljust(6, "0")) if fraction else 0)
    return start, start + _span(parts, day)


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
