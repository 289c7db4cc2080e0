"""Parameters that shape a search's results: _count, _sort, _total, _include, _revinclude,
paging cursors and history's _since (pure functions).

Spec: http://hl7.org/fhir/R4/search.html#return, #sort, #count, #include, #revinclude
"""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from app.criteria import SortKey
from app.errors import Invalid
from app.registry import RESOURCE_TYPES, search_param

TOTALS = ("none", "estimate", "accurate")


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


def history_cursor(raw: str | None) -> int | None:
    """The change-sequence cursor of a history `next` link; malformed is 400."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise Invalid.of("_cursor is not a cursor this server issued", "_cursor")
    return int(raw)


def encode_cursor(keys: tuple[Any, ...], backwards: bool) -> str:
    """An opaque cursor for a page boundary: the boundary row's sort keys and pk."""
    document = orjson.dumps({"k": list(keys), "b": backwards})
    return base64.urlsafe_b64encode(document).decode().rstrip("=")


def decode_cursor(raw: str | None, keys: int) -> tuple[tuple[Any, ...], bool] | None:
    """(sort keys and pk, backwards) from a cursor; one not issued for this sort is 400."""
    if raw is None:
        return None
    try:
        document = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        values, backwards = document["k"], document["b"]
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise Invalid.of("_cursor is not a cursor this server issued", "_cursor") from None
    ok = isinstance(values, list) and len(values) == keys + 1 and isinstance(backwards, bool)
    if not ok or not all(isinstance(v, str | int | float) for v in values):
        raise Invalid.of("_cursor does not belong to this search", "_cursor")
    return tuple(values), backwards


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
    """Every `_include`/`_revinclude` (with or without `:iterate`), each value checked."""
    keys = ("_include", "_revinclude", "_include:iterate", "_revinclude:iterate")
    return tuple(_include(k, v) for k, v in pairs if k in keys for v in [v] if v)


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
