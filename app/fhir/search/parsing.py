"""Search syntax: query parameters become typed storage criteria (pure functions).

Spec: http://hl7.org/fhir/R4/search.html
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from app.criteria import Chain, Criterion, Has
from app.errors import Invalid, Issue
from app.fhir.search.values import criterion_for, split_escaped
from app.registry import RESOURCE_TYPES, RESULT_PARAMS, SearchParam, search_param

__all__ = ["ParsedSearch", "conditional", "parse", "split_escaped"]

CONTROL_PARAMS = RESULT_PARAMS | {"_since"}
MAX_CRITERIA = 20  # parameters in one search; each is a join the database must plan
MAX_VALUES = 100  # values in one search, over all its parameters
MAX_CHAIN = 3  # links in a chain or nested _has


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


class UnknownParameter(Exception):
    """A parameter this server does not know on the type (ignored, or 400 when strict)."""


def _param(resource_type: str, name: str, key: str) -> SearchParam:
    param = search_param(resource_type, name)
    if param is None:
        raise UnknownParameter(key)
    return param


def _chain(resource_type: str, key: str, raw: str, base: str, depth: int) -> Criterion:
    """`ref.rest` or `ref:Type.rest`: resources whose reference matches `rest` on the target."""
    head, rest = key.split(".", 1)
    name, _, type_modifier = head.partition(":")
    param = _param(resource_type, name, key)
    if param.type != "reference":
        raise Invalid.of(f"{name} is not a reference parameter and cannot be chained", key)
    first = rest.split(".", 1)[0].split(":", 1)[0]
    candidates = [type_modifier] if type_modifier else list(param.targets)
    targets = [t for t in candidates if t in RESOURCE_TYPES and search_param(t, first)]
    if not targets or (type_modifier and type_modifier not in param.targets):
        raise Invalid.of(f"{key}: no resource type {name} can refer to has parameter {first}", key)
    chains = tuple(
        Chain((target,), _key_criterion(target, rest, raw, base, depth + 1)) for target in targets
    )
    return Criterion(name, "chain", chains)


def _has(resource_type: str, key: str, raw: str, base: str, depth: int) -> Criterion:
    """`_has:Source:ref:rest`: resources that a Source refers to (by `ref`) matching `rest`."""
    parts = key.split(":", 3)
    if len(parts) < 4 or not all(parts[1:]):
        raise Invalid.of(f"{key}: _has takes the form _has:Type:reference:parameter", key)
    _, source, name, rest = parts
    if source not in RESOURCE_TYPES:
        raise Invalid.of(f"{key}: resource type {source} is not supported here", key)
    param = search_param(source, name)
    if param is None or param.type != "reference" or resource_type not in param.targets:
        raise Invalid.of(f"{key}: {source}.{name} cannot refer to a {resource_type}", key)
    inner = _key_criterion(source, rest, raw, base, depth + 1)
    return Criterion(name, "has", (Has(source, inner, resource_type),))


def _key_criterion(resource_type: str, key: str, raw: str, base: str, depth: int = 0) -> Criterion:
    if depth >= MAX_CHAIN:
        raise Invalid.of(f"{key}: chains may have at most {MAX_CHAIN} links", key)
    if key.startswith("_has:"):
        return _has(resource_type, key, raw, base, depth)
    if "." in key:
        return _chain(resource_type, key, raw, base, depth)
    name, _, modifier = key.partition(":")
    param = _param(resource_type, name, key)
    return criterion_for(param, modifier or None, raw, base, key)


def _size(criterion: Criterion) -> tuple[int, int]:
    """(criteria, values) a criterion stands for, counting chained and _has links."""
    if criterion.kind in ("chain", "has"):
        inner = [_size(link.inner) for link in criterion.values]
        return 1 + sum(c for c, _ in inner), sum(v for _, v in inner)
    return 1, max(1, len(criterion.values))


def parse(resource_type: str, params: Iterable[tuple[str, str]], base: str) -> ParsedSearch:
    """Criteria for a type from query pairs; unknown parameters are collected as ignored.
    A parameter repeated with the same value is one criterion (A and A is A), so repeating
    it neither multiplies the work nor counts against the limits."""
    criteria, applied, ignored = [], [], []
    for key, raw in dict.fromkeys(params):
        if key in CONTROL_PARAMS or key.split(":", 1)[0] in CONTROL_PARAMS:
            continue
        if "\x00" in raw:
            raise Invalid.of("a search parameter contains a NUL character", key[:64])
        try:
            criteria.append(_key_criterion(resource_type, key, raw, base))
        except UnknownParameter:
            text = f"unknown search parameter '{key}' was ignored"
            ignored.append(Issue(text, "not-supported", (key,), severity="warning"))
            continue
        applied.append((key, raw))
    sizes = [_size(c) for c in criteria]
    if sum(c for c, _ in sizes) > MAX_CRITERIA or sum(v for _, v in sizes) > MAX_VALUES:
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
