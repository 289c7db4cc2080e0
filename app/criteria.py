"""What a search asks for: typed criteria, sort keys and the page wanted (`Query`).

The search parser (`fhir.search`) writes these from query parameters and the storage layer
turns them into SQL; neither knows the other. Spec: http://hl7.org/fhir/R4/search.html
"""

from dataclasses import dataclass
from typing import Any

_RANK = {"id": 0, "has": 1, "reference": 1, "chain": 2, "token": 3, "string": 3, "quantity": 4}


@dataclass(frozen=True, slots=True)
class TokenValue:
    """One token to match: `code`, `system|code`, `|code` (no system) or `system|`."""

    system: str | None
    code: str | None
    system_given: bool


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    """One reference to match: a target id, with the target type if known."""

    target_type: str | None
    target_id: str


@dataclass(frozen=True, slots=True)
class StringValue:
    """Folded text to match: `start` (starts with), `exact`, `contains` or `phonetic`."""

    mode: str
    folded: str
    exact: str = ""


@dataclass(frozen=True, slots=True)
class RangeValue:
    """A date or number with its prefix: the range its precision covers, [low, high)."""

    prefix: str
    low: Any
    high: Any
    number: float = 0.0
    system: str | None = None
    code: str | None = None
    unit_given: bool = False


@dataclass(frozen=True, slots=True)
class Chain:
    """`param.inner`: resources whose `param` references a resource matching `inner`."""

    target_types: tuple[str, ...]
    inner: "Criterion"


@dataclass(frozen=True, slots=True)
class Has:
    """`_has:Source:param:inner`: resources referenced by a Source (via `param`) matching it."""

    source_type: str
    inner: "Criterion"
    target_type: str = ""


@dataclass(frozen=True, slots=True)
class Criterion:
    """One search parameter: values are ORed; criteria are ANDed.

    `kind` is id, last_updated, token, uri, reference, string, date, quantity, chain or has;
    `negate` is `:not`; `missing` is `:missing=true|false` (then `values` is empty).
    """

    param: str
    kind: str
    values: tuple[Any, ...]
    negate: bool = False
    missing: bool | None = None

    @property
    def selectivity_rank(self) -> int:
        """Lower for criteria that usually match few resources (they drive the search)."""
        if self.negate or self.missing is not None:
            return 9
        if self.kind == "token" and self.param in ("identifier", "_tag", "_security"):
            return 1
        return _RANK.get(self.kind, 5)


@dataclass(frozen=True, slots=True)
class SortKey:
    """One `_sort` key: a parameter (or _id/_lastUpdated), its index kind, the direction."""

    param: str
    kind: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed search of one resource type.

    `after` is the keyset of the row a page starts after (its sort values, then pk);
    `backwards` reads the page before `after` instead (for `previous` links).
    """

    resource_type: str
    criteria: tuple[Criterion, ...]
    count: int
    sort: tuple[SortKey, ...] = ()
    after: tuple[Any, ...] | None = None
    backwards: bool = False
    exclude_pk: int | None = None
    compartment: str | None = None
