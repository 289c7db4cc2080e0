"""Search syntax: a query string becomes a typed storage Query (pure functions).

Spec: http://hl7.org/fhir/R4/search.html
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.errors import Invalid, Issue
from app.registry import RESULT_PARAMS, SearchParam, search_param
from app.storage.indexer import split_reference
from app.storage.query import Criterion, Query, ReferenceValue, TokenValue

CONTROL_PARAMS = RESULT_PARAMS | {"_since"}
MAX_CRITERIA = 20  # parameters in one search; each is a join PostgreSQL must plan
MAX_VALUES = 100  # values in one search, over all its parameters


@dataclass(frozen=True, slots=True)
class ParsedSearch:
    """Criteria, the ignored parameters, and the canonical text of what was applied."""

    criteria: tuple[Criterion, ...]
    applied: tuple[tuple[str, str], ...]
    ignored: list[Issue] = field(default_factory=list)

    @property
    def normalised(self) -> str:
        """The applied parameters, sorted: equal for equal searches."""
        return "&".join(f"{k}={v}" for k, v in sorted(self.applied))


def split_escaped(text: str, separator: str, *, unescape: bool = True) -> list[str]:
    """Split on `separator` unless escaped with a backslash (search.html#escaping).

    With `unescape`, `\\x` becomes `x`; without, escapes are kept for a later parser.
    """
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
            if not unescape:
                current.append(char)
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _token(value: str) -> TokenValue:
    if "|" not in value.replace("\\|", ""):
        return TokenValue(None, value.replace("\\", ""), system_given=False)
    system, code = split_escaped(value, "|")[:2]
    return TokenValue(system or None, code or None, system_given=True)


def _reference(param: SearchParam, value: str, type_modifier: str | None, base: str) -> Any:
    target_type, target_id = split_reference(value, base)
    if target_type is None and "/" not in value:
        target_id = value
        if type_modifier is not None:
            target_type = type_modifier
        elif len(param.targets) == 1:
            target_type = param.targets[0]
    if type_modifier is not None and target_type not in (None, type_modifier):
        raise Invalid.of(f"{value} is not a {type_modifier} reference", param.name)
    return ReferenceValue(target_type, target_id)


def _criterion(param: SearchParam, modifier: str | None, raw: str, base: str) -> Criterion:
    if "\x00" in raw:
        raise Invalid.of(f"search parameter {param.name} contains a NUL character", param.name)
    values = [v for v in split_escaped(raw, ",", unescape=False) if v != ""]
    if not values:
        raise Invalid.of(f"search parameter {param.name} has no value", param.name)
    if param.name == "_id":
        return Criterion("_id", "id", tuple(values))
    if param.type == "token" and modifier is None:
        return Criterion(param.name, "token", tuple(_token(v) for v in values))
    if param.type == "reference" and (modifier is None or modifier in param.targets):
        refs = tuple(_reference(param, v, modifier, base) for v in values)
        return Criterion(param.name, "reference", refs)
    raise Invalid.of(
        f"modifier :{modifier} is not supported on {param.name}", f"{param.name}:{modifier}"
    )


def parse(
    resource_type: str,
    params: Iterable[tuple[str, str]],
    base: str,
) -> ParsedSearch:
    """Criteria for a type from query pairs; unknown parameters are collected as ignored."""
    criteria, applied, ignored = [], [], []
    for key, raw in params:
        name, _, modifier = key.partition(":")
        if name in CONTROL_PARAMS:
            continue
        param = search_param(resource_type, name)
        if param is None:
            ignored.append(
                Issue(
                    f"unknown search parameter '{key}' was ignored",
                    "not-supported",
                    (key,),
                    severity="warning",
                )
            )
            continue
        criteria.append(_criterion(param, modifier or None, raw, base))
        applied.append((key, raw))
    if len(criteria) > MAX_CRITERIA or sum(len(c.values) for c in criteria) > MAX_VALUES:
        raise Invalid.of(
            f"a search may have at most {MAX_CRITERIA} parameters and {MAX_VALUES} values",
            code="too-costly",
        )
    return ParsedSearch(tuple(criteria), tuple(applied), ignored)


def conditional(resource_type: str, params: list[tuple[str, str]], base: str) -> ParsedSearch:
    """The criteria of a conditional URL: at least one, none unknown (400 otherwise)."""
    parsed = parse(resource_type, params, base)
    if parsed.ignored:
        raise Invalid(
            [
                Issue(
                    i.diagnostics.replace("was ignored", "in a conditional request"),
                    "invalid",
                    i.expression,
                )
                for i in parsed.ignored
            ]
        )
    if not parsed.criteria:
        raise Invalid.of("a conditional request needs at least one search parameter")
    return parsed


def to_query(resource_type: str, parsed: ParsedSearch, count: int, after: int | None) -> Query:
    """The storage Query for a parsed search."""
    return Query(resource_type, parsed.criteria, count, after_pk=after)


def page_size(raw: str | None, default: int, maximum: int) -> int:
    """`_count` as an int, clamped to the maximum; malformed is 400, and so is 0 (total only)."""
    if raw is None:
        return default
    digits = raw.lstrip("0")
    if not (raw.isascii() and raw.isdigit()) or not digits:
        raise Invalid.of("_count must be a positive integer (_count=0 is not supported)", "_count")
    return maximum if len(digits) > 9 else min(int(digits), maximum)


def cursor(raw: str | None) -> int | None:
    """The paging cursor of a `next` link; malformed is 400."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise Invalid.of("_cursor is not a cursor this server issued", "_cursor")
    return int(raw)


def since(raw: str | None) -> int | None:
    """`_since` as microseconds since the epoch; a date or instant, naive times are UTC."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        raise Invalid.of(f"_since {raw!r} is not a FHIR instant", "_since") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)
