"""The one in-memory search over read-only definitions (SearchParameter, CodeSystem, ValueSet):
each type describes its parameters in a `Table`, and `select` applies it (pure functions).

Spec: http://hl7.org/fhir/R4/search.html
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import Invalid, Issue
from app.fhir.search.parsing import CONTROL_PARAMS
from app.fhir.search.values import split_escaped
from app.normalise import fold
from app.registry import SearchParam


@dataclass(frozen=True, slots=True)
class Parameter:
    """One search parameter of a read-only type, and how it matches."""

    param: SearchParam
    element: str  # the top-level element it reads; a list matches if any of its values does
    modifiers: tuple[str, ...] = ()  # the modifiers it takes; any other is 400
    system: str | None = None  # the one system a token value may name; any other matches nothing


@dataclass(frozen=True, slots=True)
class Table:
    """How one read-only type is searched: its parameters and the keys its caller handles."""

    parameters: tuple[Parameter, ...]
    skipped_names: frozenset[str] = frozenset()  # result parameters skipped whatever the modifier
    skipped_keys: frozenset[str] = frozenset()  # keys skipped only as sent exactly
    bare_names: bool = False  # an empty value names the parameter (`code`), not the key (`code:`)

    @property
    def params(self) -> dict[str, SearchParam]:
        """Its parameters by name, in table order."""
        return {parameter.param.name: parameter.param for parameter in self.parameters}


def _ignored(key: str, name: str) -> Issue:
    """The warning for a parameter not in the table (a result parameter is not supported here)."""
    # A table skipping every result parameter by name (SearchParameter) always says unknown.
    handled = "not supported here" if name in CONTROL_PARAMS else "unknown"
    text = f"{handled} search parameter '{key}' was ignored"
    return Issue(text, "not-supported", (key,), severity="warning")


def _wanted(parameter: Parameter, named: str, raw: str) -> set[str]:
    """The values one parameter asks for; any of them matches (search.html#combining)."""
    values = [v for v in split_escaped(raw, ",", unescape=False) if v != ""]
    if not values:
        raise Invalid.of(f"search parameter {named} has no value", named)
    wanted = set()
    for value in values:
        if parameter.param.type == "token" and "|" in value.replace("\\|", ""):
            system, value = split_escaped(value, "|", unescape=False)[:2]
            if system and system != parameter.system:
                continue  # no value of ours has that system: nothing can match
        wanted.add(value.replace("\\", ""))
    return wanted


def _matches(
    resource: dict[str, Any], parameter: Parameter, modifier: str, wanted: set[str]
) -> bool:
    """Exactly, or for a string folded: starting with (or `:contains`) a wanted value."""
    found = resource.get(parameter.element, "")
    values = [str(value) for value in (found if isinstance(found, list) else [found])]
    if parameter.param.type != "string" or modifier == "exact":
        return not wanted.isdisjoint(values)
    folded = [fold(value) for value in values]
    if modifier == "contains":
        return any(fold(value) in text for value in wanted for text in folded)
    return any(text.startswith(fold(value)) for value in wanted for text in folded)


def select(
    table: Table, resources: Sequence[dict[str, Any]], params: Sequence[tuple[str, str]]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]], list[Issue]]:
    """The matches, the parameters applied, the ignored. Spec: http://hl7.org/fhir/R4/search.html"""
    by_name = {parameter.param.name: parameter for parameter in table.parameters}
    matched, applied, ignored = list(resources), [], []
    for key, raw in params:
        name, _, modifier = key.partition(":")
        if key in table.skipped_keys or name in table.skipped_names:
            continue
        parameter = by_name.get(name)
        if parameter is None:
            ignored.append(_ignored(key, name))
            continue
        if modifier and modifier not in parameter.modifiers:
            raise Invalid.of(f"modifier :{modifier} is not supported on {name}", key)
        wanted = _wanted(parameter, name if table.bare_names else key, raw)
        matched = [r for r in matched if _matches(r, parameter, modifier, wanted)]
        applied.append((key, raw))
    return matched, applied, ignored
