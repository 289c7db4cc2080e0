"""Logical ids for new resources: UUIDv7 (RFC 9562), time-ordered so that new rows append to
the id indexes instead of dirtying a random page of each per write."""

import os
import time

_VERSION = 0x7 << 76
_VARIANT = 0x2 << 62
_RANDOM = (1 << 80) - 1 & ~(0xF << 76) & ~(0x3 << 62)


def new_logical_id() -> str:
    """A UUIDv7: 48 bits of Unix milliseconds, then 74 random bits (os.urandom)."""
    value = time.time_ns() // 1_000_000 << 80
    value |= int.from_bytes(os.urandom(10), "big") & _RANDOM | _VERSION | _VARIANT
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
