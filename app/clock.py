"""The service's clock: microseconds since the epoch (UTC), and FHIR instants written from them."""

import time
from datetime import UTC, datetime
from functools import lru_cache

# The last microsecond an instant can name (9999-12-31T23:59:59.999999Z).
LAST_MICROS = 253_402_300_799_999_999


def now_micros() -> int:
    """Microseconds since the epoch, UTC."""
    return time.time_ns() // 1000


def instant(micros: int) -> str:
    """A FHIR instant with microseconds: `2026-11-26T22:00:00.123456+00:00`."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{_instant_second(seconds)}.{fraction:06d}+00:00"


@lru_cache(maxsize=64)
def _instant_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()[:19]
