"""Parameters that shape a search's results: _count, _sort, _total, _include, _revinclude,
paging cursors and history's _since (pure functions).

Spec: http://hl7.org/fhir/R4/search.html#return, #sort, #count, #include, #revinclude
"""

import base64
import binascii
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from app.clock import LAST_MICROS
from app.criteria import SortKey
from app.errors import Invalid
from app.normalise import EARLIEST, LATEST
from app.registry import RESOURCE_TYPES, search_param

TOTALS = ("none", "estimate", "accurate")
_SMALLEST_INT, _LARGEST_INT = -(2**63), 2**63 - 1  # a signed 64-bit column
_LONGEST_TEXT = 4096  # characters; sort values are indexed text, far shorter


@dataclass(frozen=True, slots=True)
class Include:
    """`_include=Source:param[:Target]` (or `*`), or a `_revinclude`; `iterate` repeats it."""

    source_type: str
    param: str | None
    target_type: str | None
    reverse: bool
    iterate: bool


def page_size(raw: str | None, default: int, maximum: int, refuse_over: bool = False) -> int:
    """`_count` as an int (0 asks for the total only); over the maximum it is clamped, or 400."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise Invalid.of("_count must be a whole number", "_count")
    digits = raw.lstrip("0") or "0"
    if len(digits) > 9 or int(digits) > maximum:
        if refuse_over:
            raise Invalid.of(f"_count may be at most {maximum}", "_count")
        return maximum
    return int(digits)


def offset_cursor(raw: str | None) -> int | None:
    """A cursor that is a plain row offset (the terminology pages); malformed is 400."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise Invalid.of("_cursor is not a cursor this server issued", "_cursor")
    return int(raw)


def history_cursor(raw: str | None) -> tuple[int, int, int, int] | None:
    """The cursor of a history `next` link (watermark, changed_at, seq, kind): `W.c.s` after a
    version, `W.c.s.1` after a deletion shown for a resource hidden since; malformed is 400."""
    if raw is None:
        return None
    parts = raw.split(".")
    well_formed = all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts)
    if not (well_formed and (len(parts) == 3 or (len(parts) == 4 and parts[3] == "1"))):
        raise Invalid.of("_cursor is not a cursor this server issued", "_cursor")
    watermark, changed_at, seq, kind = (int(p) for p in [*parts, "0"][:4])
    if watermark > LAST_MICROS or changed_at >= watermark:  # never so in a cursor issued here
        raise Invalid.of("_cursor is not a cursor this server issued", "_cursor")
    return watermark, changed_at, seq, kind


def history_types(raw: str | None) -> tuple[str, ...] | None:
    """System history's `_type`: the comma-separated types it is limited to; an unknown one
    is 400 (http://hl7.org/fhir/R4/http.html#history)."""
    if raw is None:
        return None
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",")))
    unknown = [name for name in names if name not in RESOURCE_TYPES]
    if unknown:
        raise Invalid.of(f"_type names a type this server does not host: {unknown[0]!r}", "_type")
    return names


def _signature(sort: tuple[SortKey, ...]) -> str:
    return ",".join(("-" if key.descending else "") + key.param for key in sort)


def encode_cursor(keys: tuple[Any, ...], backwards: bool, sort: tuple[SortKey, ...]) -> str:
    """An opaque cursor for a page boundary: the boundary row's sort keys and pk, and the
    `_sort` they were taken under."""
    document = orjson.dumps({"k": list(keys), "b": backwards, "s": _signature(sort)})
    return base64.urlsafe_b64encode(document).decode().rstrip("=")


def _fits(value: object, kind: str) -> bool:
    """Whether a cursor value has the type (and range) of a sort value of this kind; the
    database would otherwise meet a mistyped or out-of-range parameter."""
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int) and _SMALLEST_INT <= value <= _LARGEST_INT
    if kind == "moment":
        return isinstance(value, int) and EARLIEST <= value <= LATEST
    if kind == "number":
        return isinstance(value, int | float) and math.isfinite(value) and abs(value) <= 1e308
    return isinstance(value, str) and len(value) <= _LONGEST_TEXT and "\x00" not in value


def _value_kind(key: SortKey) -> str:
    """Dates (and _lastUpdated) sort by microseconds, quantities by number, the rest by text."""
    return {"date": "moment", "quantity": "number"}.get(key.kind, "text")


def decode_cursor(
    raw: str | None, sort: tuple[SortKey, ...]
) -> tuple[tuple[Any, ...], bool] | None:
    """(sort keys and pk, backwards) from a cursor; one not issued for this sort is 400, before
    any of its values reaches the database."""
    if raw is None:
        return None
    try:
        document = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        values, backwards = document["k"], document["b"]
        signature = document.get("s", _signature(sort))
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError):
        raise Invalid.of("_cursor is not a cursor this server issued", "_cursor") from None
    kinds = [*(_value_kind(key) for key in sort), "int"]
    ok = isinstance(values, list) and len(values) == len(kinds) and isinstance(backwards, bool)
    ok = ok and signature == _signature(sort)
    if not ok or not all(_fits(v, kind) for v, kind in zip(values, kinds, strict=False)):
        raise Invalid.of("_cursor does not belong to this search", "_cursor")
    typed = tuple(float(v) if k == "number" else v for v, k in zip(values, kinds, strict=True))
    return typed, backwards


def sort_keys(raw: str | None, resource_type: str) -> tuple[SortKey, ...]:
    """`_sort=a,-b`: keys in order, `-` descending; unknown parameters are 400."""
    if raw is None:
        return ()
    keys = []
    for item in (part.strip() for part in raw.split(",")):
        descending = item.startswith("-")
        name = item.removeprefix("-")
        param = search_param(resource_type, name)
        if not name or param is None:
            raise Invalid.of(
                f"_sort: {name!r} is not a search parameter of {resource_type}", "_sort"
            )
        kind = "token" if param.type == "uri" else param.type
        keys.append(SortKey(name, kind, descending))
    if len({k.param for k in keys}) != len(keys) or len(keys) > 5:
        raise Invalid.of("_sort may name at most 5 different parameters", "_sort")
    return tuple(keys)


def total_mode(raw: str | None) -> str | None:
    """`_total=none|estimate|accurate`; anything else is 400."""
    if raw is not None and raw not in TOTALS:
        raise Invalid.of("_total must be none, estimate or accurate", "_total")
    return raw


def _include(key: str, value: str) -> Include:
    reverse, iterate = key.startswith("_revinclude"), key.endswith(":iterate")
    if value == "*":
        return Include("*", None, None, reverse, iterate)
    parts = value.split(":")
    source = parts[0]
    if source not in RESOURCE_TYPES or len(parts) not in (2, 3):
        raise Invalid.of(f"{key}={value}: expected a hosted Type:parameter[:TargetType]", key)
    param = search_param(source, parts[1])
    if param is None or param.type != "reference":
        raise Invalid.of(f"{key}={value}: {parts[1]} is not a reference of {source}", key)
    target = parts[2] if len(parts) == 3 else None
    if target is not None and target not in param.targets:
        raise Invalid.of(f"{key}={value}: {source}.{parts[1]} cannot refer to {target}", key)
    return Include(source, parts[1], target, reverse, iterate)


def includes(pairs: list[tuple[str, str]]) -> tuple[Include, ...]:
    """Every distinct `_include`/`_revinclude` (with or without `:iterate`), each value
    checked: one sent many times is followed once."""
    keys = ("_include", "_revinclude", "_include:iterate", "_revinclude:iterate")
    wanted = dict.fromkeys((k, v) for k, v in pairs if k in keys and v)
    return tuple(dict.fromkeys(_include(k, v) for k, v in wanted))


def since(raw: str | None) -> int | None:
    """`_since` as microseconds since the epoch; a date or instant, naive times are UTC."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        raise Invalid.of(f"_since {raw!r} is not a FHIR instant", "_since") from None
    offset = moment.utcoffset() or timedelta(0)
    if abs(offset) > timedelta(hours=14):
        raise Invalid.of(f"_since {raw!r} is not a FHIR instant", "_since")
    # Counted from the wall-clock time, then shifted: near years 1 and 9999, converting the
    # moment itself to UTC would leave the range a datetime can hold.
    local = moment.replace(tzinfo=None) - datetime(1970, 1, 1)
    return (local - offset) // timedelta(microseconds=1)
