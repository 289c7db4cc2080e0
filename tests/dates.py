"""FHIR dates at the edges of what R4 allows (years 0001 and 9999, offsets -14:00 to +14:00,
partial dates): hypothesis strategies, and an oracle for the ranges they cover and the prefixes
they match, written independently of the server.

Spec: http://hl7.org/fhir/R4/datatypes.html#dateTime, http://hl7.org/fhir/R4/search.html#prefix
"""

import re
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PREFIXES = ("", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
CHECKED = ("", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")  # ap moves with the clock
EDGE_YEARS = (1, 2, 1970, 9998, 9999)
_CYCLE_YEARS, _CYCLE_DAYS = 400, 146_097  # the Gregorian calendar repeats every 400 years
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = 86_400_000_000
Span = tuple[int, int]
_MOMENT = re.compile(r"^(.{10})T(\d\d:\d\d:\d\d)(\.\d{1,6}|)(Z|[+-]\d\d:\d\d)$")

HYPOTHESIS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def dates(draw: st.DrawFn) -> str:
    """A FHIR date at any precision (YYYY, YYYY-MM, YYYY-MM-DD), mostly near the edges."""
    year = draw(st.sampled_from(EDGE_YEARS) | st.integers(1, 9999))
    month = draw(st.sampled_from((1, 12)) | st.integers(1, 12))
    day = draw(st.sampled_from((1, 28)))
    if month == 12 and draw(st.booleans()):
        day = 31
    return draw(
        st.sampled_from(
            (f"{year:04d}", f"{year:04d}-{month:02d}", f"{year:04d}-{month:02d}-{day:02d}")
        )
    )


@st.composite
def zones(draw: st.DrawFn) -> str:
    """`Z` or an offset from -14:00 to +14:00."""
    minutes = draw(st.sampled_from((-14 * 60, 14 * 60, 0)) | st.integers(-14 * 60, 14 * 60))
    if minutes == 0 and draw(st.booleans()):
        return "Z"
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@st.composite
def moments(draw: st.DrawFn) -> str:
    """A dateTime or instant to the second (sometimes with a fraction), with a zone."""
    day = draw(dates())
    if len(day) < 10:
        day += "-12-31" if len(day) == 4 else "-01"
    clock = draw(
        st.sampled_from(("00:00:00", "23:59:59")) | st.times().map(lambda t: f"{t:%H:%M:%S}")
    )
    fraction = draw(st.sampled_from(("", ".0", ".999999", ".123")))
    return f"{day}T{clock}{fraction}{draw(zones())}"


def edge_values() -> st.SearchStrategy[str]:
    return dates() | moments()


# An oracle independent of the server's integer arithmetic: datetimes, with the year moved by
# whole 400-year cycles into the middle of what a datetime holds, then moved back.


def _shift(year: int) -> int:
    return 4 if year < 1000 else -20 if year > 9000 else 0


def span(text: str) -> Span:
    """[low, high) in microseconds since the epoch that a FHIR date or dateTime covers."""
    year, rest = int(text[:4]), text[4:]
    cycles = _shift(year)
    moved = f"{year + cycles * _CYCLE_YEARS:04d}{rest}"
    low, high = _moved_span(moved)
    back = cycles * _CYCLE_DAYS * DAY
    return low - back, high - back


def _moved_span(text: str) -> Span:
    if len(text) == 4:
        low = datetime(int(text), 1, 1, tzinfo=UTC)
        high = low.replace(year=low.year + 1)
    elif len(text) == 7:
        low = datetime(int(text[:4]), int(text[5:]), 1, tzinfo=UTC)
        high = (low + timedelta(days=32)).replace(day=1)
    elif len(text) == 10:
        low = datetime.fromisoformat(text).replace(tzinfo=UTC)
        high = low + timedelta(days=1)
    else:
        match = _MOMENT.match(text)
        assert match is not None, text
        day, clock, fraction, zone = match.groups()
        low = datetime.fromisoformat(f"{day}T{clock}{fraction}{zone.replace('Z', '+00:00')}")
        high = low + timedelta(microseconds=10 ** (7 - len(fraction)) if fraction else 10**6)
    return micros(low), micros(high)


def micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def matches(prefix: str, target: Span, value: Span) -> bool:
    """search.html#prefix on ranges: does a target range satisfy `prefix` + the value's range."""
    (low, high), (v_low, v_high) = target, value
    within = low >= v_low and high <= v_high
    return {
        "": within,
        "eq": within,
        "ne": not within,
        "gt": high > v_high,
        "lt": low < v_low,
        "ge": high > v_high or within,
        "le": low < v_low or within,
        "sa": low >= v_high,
        "eb": high <= v_low,
    }[prefix]
