"""An auditor's search parameters on AuditEvent, as an `AuditQuery` (pure functions): values
of one parameter are ORed, parameters ANDed. `patient.identifier` is left for
`searchset.resolve`, which asks storage which Patients held the identifier.

Spec: http://hl7.org/fhir/R4/auditevent.html#search, http://hl7.org/fhir/R4/search.html
"""

from dataclasses import dataclass, field, replace

import orjson

from app.audit.events import DCM, INTERACTION, LOGIN
from app.criteria import Criterion, RangeValue, ReferenceValue, TokenValue
from app.errors import Invalid, Issue
from app.fhir.search.parsing import MAX_CRITERIA, MAX_VALUES
from app.fhir.search.values import criterion_for, split_escaped
from app.registry import SearchParam
from app.registry.audit import ACTION_SYSTEM, AUDIT_EVENT, OUTCOME_SYSTEM, PARAMS
from app.storage.audit_search import LinkTest

# The result parameters an AuditEvent search takes; the other ones are unknown here.
RESULTS = frozenset({"_count", "_sort", "_total", "_summary", "_cursor", "_format", "_pretty"})
CHAIN = "patient.identifier"
CLIENT = "agent:identifier"  # the client, by the identifier its agent carries
ACCEPTED = frozenset({*PARAMS, CLIENT})
COLUMNS = ("action", "outcome", "subtype")
CODES = {"action": ("C", "R", "U", "D", "E"), "outcome": ("0", "4", "8")}
SYSTEMS = {"action": ACTION_SYSTEM, "outcome": OUTCOME_SYSTEM}
# http://hl7.org/fhir/R4/codesystem-restful-interaction.html: the subtypes recorded here.
INTERACTION_CODES = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history",
    "create",
    "search-type",
    "search-system",
    "capabilities",
    "transaction",
    "batch",
    "operation",
)


@dataclass(frozen=True, slots=True)
class Identifier:
    """One `patient.identifier` value: `system|value`, `|value` (no system) or `value`."""

    system: str | None
    value: str
    system_given: bool

    def held_by(self, patient_body: bytes) -> bool:
        """Whether a Patient's JSON holds this identifier."""
        found = orjson.loads(patient_body).get("identifier")
        return isinstance(found, list) and any(
            isinstance(item, dict)
            and item.get("value") == self.value
            and (not self.system_given or item.get("system") == self.system)
            for item in found
        )


@dataclass(slots=True)
class AuditSearch:
    """What the parameters ask: tests for `AuditQuery`, the chains left to resolve, the
    Patients they name, the pairs applied and the parameters ignored."""

    links: list[tuple[LinkTest, ...]] = field(default_factory=list)
    columns: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    dates: list[tuple[RangeValue, ...]] = field(default_factory=list)
    identifiers: list[tuple[Identifier, ...]] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)
    applied: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[Issue] = field(default_factory=list)


def parse(pairs: list[tuple[str, str]], base: str, clients_system: str) -> AuditSearch:
    """The search the query pairs ask for; unknown parameters are collected as ignored."""
    found = AuditSearch()
    for key, raw in pairs:
        if key in RESULTS:
            continue
        if "\x00" in raw:
            raise Invalid.of("a search parameter contains a NUL character", key[:64])
        head, _, chained = key.partition(".")
        name, _, modifier = head.partition(":")
        if key == CHAIN:
            found.identifiers.append(_identifiers(raw, key))
        elif name in PARAMS and chained:
            raise Invalid.of(f"{key}: the one chain {AUDIT_EVENT} takes is {CHAIN}", key)
        elif name in PARAMS:
            criterion = criterion_for(_typed(name, modifier), modifier or None, raw, base, key)
            _add(found, criterion, key, clients_system)
        else:
            text = f"unknown search parameter '{key}' was ignored"
            found.ignored.append(Issue(text, "not-supported", (key,), severity="warning"))
            continue
        found.applied.append((key, raw))
    _bounded(found)
    return found


def _bounded(found: AuditSearch) -> None:
    """400 (too-costly) beyond the limits every search has."""
    groups = [*found.links, *found.identifiers, *found.dates, *(v for _, v in found.columns)]
    if len(found.applied) > MAX_CRITERIA or sum(map(len, groups)) > MAX_VALUES:
        raise Invalid.of(
            f"a search may have at most {MAX_CRITERIA} parameters and {MAX_VALUES} values",
            code="too-costly",
        )


def _typed(name: str, modifier: str) -> SearchParam:
    """The parameter; `entity` may point at any type, so `:[type]` names its one target."""
    param = PARAMS[name]
    if param.targets or not modifier[:1].isupper():
        return param
    return replace(param, targets=(modifier,))


def _identifiers(raw: str, key: str) -> tuple[Identifier, ...]:
    found = []
    for value in (v for v in split_escaped(raw, ",", unescape=False) if v):
        parts = split_escaped(value, "|")
        if len(parts) > 2 or not parts[-1]:
            raise Invalid.of(f"{key} takes [system|]value, and a value", key)
        system = parts[0] if len(parts) == 2 else None
        found.append(Identifier(system or None, parts[-1], len(parts) == 2))
    if not found:
        raise Invalid.of(f"search parameter {key} has no value", key)
    return tuple(found)


def _add(found: AuditSearch, criterion: Criterion, key: str, clients_system: str) -> None:
    """A parsed parameter as tests on the trail."""
    param = criterion.param
    if criterion.negate or criterion.missing is not None or param not in ACCEPTED:
        raise Invalid.of(f"{key}: this modifier is not supported on {AUDIT_EVENT}", key)
    if criterion.kind == "date":
        found.dates.append(criterion.values)
    elif param in COLUMNS:
        found.columns.append((param, _codes(param, criterion.values)))
    elif param == CLIENT:
        tests = (_client(value, clients_system) for value in criterion.values)
        found.links.append(tuple(test for test in tests if test is not None))
    else:
        links = tuple(_reference(param, value, key) for value in criterion.values)
        found.links.append(links)
        found.patients += [p for p in map(_named_patient, links) if p is not None]


def _named_patient(test: LinkTest) -> str | None:
    """The id of the one Patient a link test names (`Patient/<id>`), if it names one."""
    if test.value is None or test.suffix or not test.value.startswith("Patient/"):
        return None
    return test.value.removeprefix("Patient/")


def _reference(kind: str, value: ReferenceValue, key: str) -> LinkTest:
    """A reference as a link test: `Type/id`, or a bare id of any type (`/` ending it)."""
    if kind == "patient" and value.target_type not in (None, "Patient"):
        raise Invalid.of(f"{key}: {value.target_type} is not a Patient", key)
    if value.target_type is not None:
        return LinkTest(kind, f"{value.target_type}/{value.target_id}")
    if "/" in value.target_id or ":" in value.target_id:
        return LinkTest(kind, value.target_id)  # another server's: never named here
    return LinkTest(kind, value.target_id, suffix=True)


def _client(value: TokenValue, clients_system: str) -> LinkTest | None:
    """`<clients system>|<client id>` or a bare client id; `<clients system>|` any client.
    Another system, or none (`|id`), names no client of this server."""
    if value.system_given and value.system != clients_system:
        return None
    return LinkTest("client", value.code)


def _codes(param: str, values: tuple[TokenValue, ...]) -> tuple[str, ...]:
    """The column values a token parameter's values allow (a code implies its system)."""
    allowed: dict[str, None] = {}
    for value in values:
        for code in (value.code,) if value.code is not None else _codes_of(param, value):
            if not value.system_given or value.system == _system_of(param, code):
                allowed[code] = None
    return tuple(allowed)


def _codes_of(param: str, value: TokenValue) -> tuple[str, ...]:
    """Every code of a system (`system|`); for subtype, those stored under the system."""
    if param in CODES:
        return CODES[param]
    return (LOGIN["code"],) if value.system == DCM else tuple(INTERACTION_CODES)


def _system_of(param: str, code: str) -> str:
    if param in SYSTEMS:
        return SYSTEMS[param]
    return DCM if code == LOGIN["code"] else INTERACTION
