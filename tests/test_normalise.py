"""Date ranges over the whole span FHIR R4 allows, against an oracle that counts with datetimes
(tests.dates), and the values that are not FHIR dates.

Spec: http://hl7.org/fhir/R4/datatypes.html#dateTime, http://hl7.org/fhir/R4/search.html#date
"""

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings

from app.normalise import EARLIEST, LATEST, date_range
from tests.dates import DAY, HYPOTHESIS, edge_values, micros, span


@settings(HYPOTHESIS, max_examples=500)  # no I/O: many examples are cheap
@given(text=edge_values())
def test_a_date_covers_the_range_its_precision_allows(text: str) -> None:
    bounds = date_range(text)
    assert bounds == span(text), text
    assert EARLIEST < bounds[0] < bounds[1] < LATEST


def test_the_oracle_agrees_with_datetimes_where_they_reach() -> None:
    years = (datetime(2015, 1, 1, tzinfo=UTC), datetime(2016, 1, 1, tzinfo=UTC))
    assert span("2015") == tuple(micros(moment) for moment in years)
    moment = datetime(2015, 2, 3, 3, 5, 6, 500_000, tzinfo=UTC)
    assert span("2015-02-03T04:05:06.5+01:00") == (micros(moment), micros(moment) + 100_000)


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("9999", "9999-01-01", None),
        ("9999-12", "9999-12-01", None),
        ("9999-12-31", "9999-12-31", None),
        ("0001", "0001-01-01", "0002-01-01"),
    ],
)
def test_the_last_year_ends_at_the_first_moment_after_it(
    text: str, low: str, high: str | None
) -> None:
    """The end of 9999 is a moment no datetime holds; it is counted, not overflowed."""
    after_9999 = micros(datetime(9999, 12, 31, tzinfo=UTC)) + DAY
    start = micros(datetime.fromisoformat(low).replace(tzinfo=UTC))
    end = after_9999 if high is None else micros(datetime.fromisoformat(high).replace(tzinfo=UTC))
    assert date_range(text) == (start, end)


def test_the_extreme_offsets_reach_past_the_calendar() -> None:
    latest = date_range("9999-12-31T23:59:59.999999-14:00")
    earliest = date_range("0001-01-01T00:00:00+14:00")
    assert latest is not None and earliest is not None
    assert latest[1] == micros(datetime(9999, 12, 31, tzinfo=UTC)) + DAY + 14 * 3_600_000_000
    assert earliest[0] == micros(datetime(1, 1, 1, tzinfo=UTC)) - 14 * 3_600_000_000


@pytest.mark.parametrize(
    "text",
    [
        "0000",
        "0000-01-01",
        "2020-13",
        "2020-02-30",
        "2020-01-01T24:00:00Z",
        "2020-01-01T00:60:00Z",
        "2020-01-01T00:00:61Z",
        "2020-01-01T00:00:00+15:00",
        "2020-01-01T00:00:00-14:01",
        "2020-01-01T00:00:00+05:60",
        "10000",
        "20200101",
    ],
)
def test_what_is_not_a_fhir_date_has_no_range(text: str) -> None:
    assert date_range(text) is None
