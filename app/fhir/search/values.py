"""One search parameter's value (and modifier) as a storage criterion, by parameter type.

Spec: http://hl7.org/fhir/R4/search.html#token, #string, #reference, #date, #quantity, #uri,
#modifiers, #escaping
"""

import re
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from app.criteria import Criterion, RangeValue, ReferenceValue, StringValue, TokenValue
from app.errors import Invalid
from app.normalise import date_range, fold, indexed_text, soundex, split_reference
from app.registry import SearchParam

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
MODIFIERS = {
    "token": {"not", "text", "of-type", "missing"},
    "uri": {"missing"},
    "string": {"exact", "contains", "missing"},
    "reference": {"identifier", "missing"},
    "date": {"missing"},
    "quantity": {"missing"},
}
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")
_DAY = 86_400_000_000


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


def _unescape(text: str) -> str:
    return "".join(split_escaped(text, "\x00"))


def _token(value: str) -> TokenValue:
    if "|" not in value.replace("\\|", ""):
        return TokenValue(None, indexed_text(_unescape(value)), system_given=False)
    system, code = split_escaped(value, "|")[:2]
    return TokenValue(indexed_text(system) or None, indexed_text(code) or None, True)


def _of_type(value: str, key: str) -> TokenValue:
    parts = split_escaped(value, "|")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        raise Invalid.of(f"{key} takes [type system]|[type code]|[identifier value]", key)
    return TokenValue(indexed_text(parts[0]) or None, indexed_text(f"{parts[1]}|{parts[2]}"), True)


def _string(param: SearchParam, modifier: str | None, value: str, key: str) -> StringValue:
    text = _unescape(value)
    folded = soundex(text) if param.name == "phonetic" else fold(text)
    if not folded:
        raise Invalid.of(f"{key} needs some text to search for", key)
    if param.name == "phonetic":
        return StringValue("phonetic", folded)
    if modifier == "exact":
        return StringValue("exact", folded, indexed_text(text) or text)
    return StringValue("contains" if modifier == "contains" else "start", folded)


def _reference(param: SearchParam, value: str, type_modifier: str | None, base: str) -> Any:
    value = _unescape(value)
    target_type, target_id = split_reference(value, base)
    if target_type is None and "/" not in value:
        target_id = value
        if type_modifier is not None:
            target_type = type_modifier
        elif len(param.targets) == 1:
            target_type = param.targets[0]
    if type_modifier is not None and target_type not in (None, type_modifier):
        raise Invalid.of(f"{value} is not a {type_modifier} reference", param.name)
    return ReferenceValue(target_type, indexed_text(target_id) or target_id)


def _prefixed(value: str) -> tuple[str, str]:
    if value[:2] in PREFIXES and not value[:2].isdigit():
        return value[:2], value[2:]
    return "eq", value


def date_value(value: str, key: str) -> RangeValue:
    """A prefixed date, dateTime or instant as the range its precision covers."""
    prefix, text = _prefixed(value)
    bounds = date_range(text.replace(" ", "+"))
    if bounds is None:
        shape = "YYYY[-MM[-DD[Thh:mm:ss[.fff](Z|+hh:mm)]]]"
        raise Invalid.of(f"{key}: {value!r} is not a date (prefix, then {shape})", key)
    low, high = bounds
    if prefix == "ap":  # within 10% of the distance from now, and at least a day
        slack = max(_DAY, abs(time.time_ns() // 1000 - low) // 10)
        low, high = low - slack, high + slack
    return RangeValue(prefix, low, high)


def _quantity(value: str, key: str) -> RangeValue:
    parts = split_escaped(value, "|")
    prefix, number = _prefixed(parts[0])
    if not _NUMBER.match(number) or len(parts) not in (1, 3):
        raise Invalid.of(f"{key}: {value!r} is not [prefix]number[|system|code]", key)
    try:
        exact = Decimal(number)
    except InvalidOperation:
        raise Invalid.of(f"{key}: {number!r} is not a number", key) from None
    exponent = exact.as_tuple().exponent
    half = Decimal(5).scaleb((exponent if isinstance(exponent, int) else 0) - 1)
    low, high = float(exact - half), float(exact + half)
    if prefix == "ap":
        low, high = sorted((float(exact) * 0.9, float(exact) * 1.1))
    system, code = (parts[1] or None, parts[2] or None) if len(parts) == 3 else (None, None)
    return RangeValue(prefix, low, high, float(exact), system, code, len(parts) == 3)


def _missing(param: SearchParam, raw: str, key: str) -> Criterion:
    if raw not in ("true", "false"):
        raise Invalid.of(f"{key} must be true or false", key)
    if param.name in ("_id", "_lastUpdated"):
        raise Invalid.of(f"{param.name} is never missing; :missing does not apply", key)
    kind = "token" if param.type == "uri" else param.type
    return Criterion(param.name, kind, (), missing=raw == "true")


def allowed_modifiers(param: SearchParam) -> set[str]:
    """The modifiers a parameter takes, besides `:[type]` on references."""
    if param.name == "_id":
        return {"not"}
    allowed = set(MODIFIERS.get(param.type, set()))
    if param.name != "identifier":
        allowed.discard("of-type")
    return allowed


def _check_modifier(param: SearchParam, modifier: str | None, key: str) -> None:
    if modifier is None:
        return
    if param.type == "reference" and modifier in param.targets:
        return
    if modifier not in allowed_modifiers(param):
        raise Invalid.of(f"modifier :{modifier} is not supported on {param.name}", key)


def criterion_for(
    param: SearchParam, modifier: str | None, raw: str, base: str, key: str
) -> Criterion:
    """The criterion for `param[:modifier]=raw` (comma-separated values are ORed)."""
    _check_modifier(param, modifier, key)
    if modifier == "missing":
        return _missing(param, raw, key)
    values = [v for v in split_escaped(raw, ",", unescape=False) if v != ""]
    if not values:
        raise Invalid.of(f"search parameter {key} has no value", key)
    name, kind = param.name, param.type
    if name == "_id":
        return Criterion(name, "id", tuple(_unescape(v) for v in values), negate=bool(modifier))
    if name == "_lastUpdated":
        return Criterion(name, "last_updated", tuple(date_value(v, key) for v in values))
    if modifier == "text":
        folded = tuple(_string(param, None, v, key) for v in values)
        return Criterion(f"{name}:text", "string", folded)
    if modifier == "of-type":
        return Criterion("identifier:of-type", "token", tuple(_of_type(v, key) for v in values))
    if modifier == "identifier":
        return Criterion(f"{name}:identifier", "token", tuple(_token(v) for v in values))
    if kind in ("token", "uri"):
        tokens = tuple(_token(v) for v in values)
        return Criterion(name, kind, tokens, negate=modifier == "not")
    if kind == "string":
        return Criterion(name, kind, tuple(_string(param, modifier, v, key) for v in values))
    if kind == "reference":
        return Criterion(name, kind, tuple(_reference(param, v, modifier, base) for v in values))
    if kind == "date":
        return Criterion(name, kind, tuple(date_value(v, key) for v in values))
    return Criterion(name, kind, tuple(_quantity(v, key) for v in values))
