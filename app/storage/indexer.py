"""Resource JSON -> search index rows, driven by the parameter registry in `app.registry`.

Besides one row set per parameter, three modifiers get rows of their own, under derived
parameter names: `identifier:of-type` (type code and value), `<reference>:identifier` (a
reference's identifier) and `<token>:text` (codings' display and concepts' text).
"""

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from app.access.visibility import RESPONSIBLE, is_restricted
from app.normalise import (
    EARLIEST,
    LATEST,
    date_range,
    fold,
    indexed_text,
    soundex,
    split_reference,
)
from app.registry import COMMON_PARAMS, RESOURCE_TYPES, SearchParam

TokenRow = tuple[str, str | None, str | None]
ReferenceRow = tuple[str, str | None, str]
StringRow = tuple[str, str, str]
DateRow = tuple[str, int, int]
QuantityRow = tuple[str, float, float, str | None, str | None]


@dataclass(slots=True)
class IndexRows:
    """Index rows of one resource, by index kind (the tables of `writes.INDEX_KINDS`)."""

    token: list[TokenRow] = field(default_factory=list)
    reference: list[ReferenceRow] = field(default_factory=list)
    string: list[StringRow] = field(default_factory=list)
    date: list[DateRow] = field(default_factory=list)
    quantity: list[QuantityRow] = field(default_factory=list)


INDEXED_COMMON = tuple(p for p in COMMON_PARAMS.values() if p.name not in ("_id", "_lastUpdated"))
_STRING_PARTS = (
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
)


@cache
def _keys(path: str) -> tuple[str, ...]:
    return tuple(path.split(".")[1:])


def element_values(resource: dict[str, Any], path: str) -> list[Any]:
    """Every value at a dotted path (`Flag.subject`), flattening lists on the way."""
    current: list[Any] = [resource]
    for key in _keys(path):
        following: list[Any] = []
        for value in current:
            if isinstance(value, dict) and key in value:
                found = value[key]
                if isinstance(found, list):
                    following.extend(found)
                else:
                    following.append(found)
        if not following:
            return following
        current = following
    return current


def token_pairs(value: Any) -> list[tuple[str | None, str | None]]:
    """(system, code) pairs of a code, Coding, CodeableConcept, Identifier, ContactPoint,
    uri or boolean."""
    if isinstance(value, bool):
        return [(None, "true" if value else "false")]
    if isinstance(value, str):
        return [(None, value)]
    if not isinstance(value, dict):
        return []
    if "coding" in value:
        pairs: list[tuple[str | None, str | None]] = []
        codings = value["coding"]
        for coding in codings if isinstance(codings, list) else []:  # null is no codings
            pairs.extend(token_pairs(coding))
        return pairs
    if "value" in value and isinstance(value["value"], str):
        return [(value.get("system"), value["value"])]
    if "code" in value:
        return [(value.get("system"), value["code"])]
    return []


def token_texts(value: Any) -> list[str]:
    """The human text of a CodeableConcept or Coding (`:text` searches it)."""
    if not isinstance(value, dict):
        return []
    texts = [text for text in (value.get("text"), value.get("display")) if isinstance(text, str)]
    for coding in value.get("coding") or ():
        texts.extend(token_texts(coding))
    return texts


def string_values(value: Any) -> list[str]:
    """The strings of a string, HumanName or Address."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict):
        return []
    strings = []
    for part in _STRING_PARTS:
        found = value.get(part)
        for item in found if isinstance(found, list) else [found]:
            if isinstance(item, str):
                strings.append(item)
    return strings


def date_bounds(value: Any) -> tuple[int, int] | None:
    """[low, high) of a date, dateTime, instant or Period (open ends unbounded)."""
    if isinstance(value, str):
        return date_range(value)
    if isinstance(value, dict) and ("start" in value or "end" in value):
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        return (start[0] if start else EARLIEST, end[1] if end else LATEST)
    return None


def quantity_bounds(value: Any) -> QuantityRow | None:
    """('', low, high, system, code) of a Quantity (a point) or Range."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("value"), int | float):
        number = float(value["value"])
        return "", number, number, value.get("system"), value.get("code")
    low, high = value.get("low") or {}, value.get("high") or {}
    if not isinstance(low, dict) or not isinstance(high, dict) or not (low or high):
        return None
    unit = low if "value" in low else high
    low_value = float(low["value"]) if isinstance(low.get("value"), int | float) else -1e308
    high_value = float(high["value"]) if isinstance(high.get("value"), int | float) else 1e308
    return "", low_value, high_value, unit.get("system"), unit.get("code")


def _reference(rows: IndexRows, param: SearchParam, value: Any, base_url: str) -> None:
    if not isinstance(value, dict):
        return
    identifier = value.get("identifier")
    if isinstance(identifier, dict):
        rows.token.extend(
            (f"{param.name}:identifier", indexed_text(s), indexed_text(c))
            for s, c in token_pairs(identifier)
        )
    if not isinstance(value.get("reference"), str):
        return
    target_type, target_id = split_reference(value["reference"], base_url)
    if param.targets and target_type is not None and target_type not in param.targets:
        return
    rows.reference.append((param.name, target_type, indexed_text(target_id) or target_id))


def _token(rows: IndexRows, param: SearchParam, value: Any) -> None:
    name = param.name
    if name == "deceased" and not isinstance(value, bool):
        value = True  # a death date means deceased
    rows.token.extend([(name, indexed_text(s), indexed_text(c)) for s, c in token_pairs(value)])
    if not isinstance(value, dict):
        return
    texts = token_texts(value)
    if "type" in value:
        texts.extend(token_texts(value["type"]))
    if texts:
        text_param = f"{name}:text"
        rows.string.extend([(text_param, fold(t), indexed_text(t) or t) for t in texts])
    if isinstance(value.get("value"), str) and "type" in value:
        for system, code in token_pairs(value["type"]):
            of_type = f"{code}|{value['value']}"
            rows.token.append((f"{name}:of-type", indexed_text(system), indexed_text(of_type)))


def _index_value(rows: IndexRows, param: SearchParam, value: Any, base_url: str) -> None:
    if param.where is not None:
        key, wanted = param.where
        if not isinstance(value, dict) or value.get(key) != wanted:
            return
    kind = param.type
    if kind in ("token", "uri"):
        _token(rows, param, value)
    elif kind == "reference":
        _reference(rows, param, value, base_url)
    elif kind == "string":
        for text in string_values(value):
            if param.name == "phonetic":
                rows.string.append((param.name, soundex(text), soundex(text)))
            else:
                rows.string.append((param.name, fold(text), indexed_text(text) or text))
    elif kind == "date":
        bounds = date_bounds(value)
        if bounds is not None:
            rows.date.append((param.name, *bounds))
    elif kind == "quantity":
        found = quantity_bounds(value)
        if found is not None:
            rows.quantity.append((param.name, *found[1:]))


@cache
def _plan(resource_type: str) -> dict[str, list[tuple[SearchParam, str]]]:
    """The type's (parameter, path) pairs by the top-level element each path starts at."""
    plan: dict[str, list[tuple[SearchParam, str]]] = {}
    for param in (*RESOURCE_TYPES[resource_type].params.values(), *INDEXED_COMMON):
        for path in param.paths:
            plan.setdefault(_keys(path)[0], []).append((param, path))
    return plan


def index_rows(resource_type: str, resource: dict[str, Any], base_url: str) -> IndexRows:
    """The index rows a resource gets, for every parameter the registry defines on its type."""
    rows = IndexRows()
    plan = _plan(resource_type)
    for element in resource:
        for param, path in plan.get(element, ()):
            for value in element_values(resource, path):
                _index_value(rows, param, value, base_url)
    if resource_type == "Patient" and not any(k.startswith("deceased") for k in resource):
        rows.token.append(("deceased", None, "false"))  # deceased.exists() and ... is false
    # one row per distinct value
    if len(rows.token) > 1:
        rows.token = list(dict.fromkeys(rows.token))
    if len(rows.string) > 1:
        rows.string = list(dict.fromkeys(rows.string))
    if len(rows.reference) > 1:
        rows.reference = list(dict.fromkeys(rows.reference))
    if len(rows.date) > 1:
        rows.date = list(dict.fromkeys(rows.date))
    if len(rows.quantity) > 1:
        rows.quantity = list(dict.fromkeys(rows.quantity))
    return rows


def compartment_patient(resource_type: str, resource: dict[str, Any], base_url: str) -> str | None:
    """The id of the Patient whose compartment the resource is in, if any."""
    path = RESOURCE_TYPES[resource_type].compartment_path
    if path is None:
        return None
    if path.endswith(".id"):
        patient_id = resource.get("id")
        return patient_id if isinstance(patient_id, str) else None
    for value in element_values(resource, path):
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            target_type, target_id = split_reference(value["reference"], base_url)
            if target_type == "Patient":
                return target_id
    return None


@dataclass(frozen=True, slots=True)
class Derived:
    """What a resource's content puts in the tables besides its body."""

    patient_id: str | None  # the Patient compartment it is in
    index: IndexRows
    author_org: str | None = None  # the Organization that authored it, as the domain says
    restricted: bool = False  # labelled restricted (access.visibility.is_restricted)


def derive(
    resource: dict[str, Any],
    logical_id: str,
    base_url: str,
    author_org: str | None = None,
    responsible: tuple[str, ...] = (),
) -> Derived:
    """The compartment and index rows of `resource` stored under `logical_id`, the
    authoring organisation the domain found in it, and the Organizations it makes responsible
    for its child (indexed as `access.visibility.RESPONSIBLE` reference rows)."""
    resource_type = resource["resourceType"]
    index = index_rows(resource_type, resource, base_url)
    index.reference.extend((RESPONSIBLE, "Organization", org) for org in dict.fromkeys(responsible))
    return Derived(
        compartment_patient(resource_type, resource | {"id": logical_id}, base_url),
        index,
        author_org,
        is_restricted(resource),
    )
