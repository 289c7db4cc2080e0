"""`_summary` and `_elements`: the parameters that return a subset of each resource.

Spec: http://hl7.org/fhir/R4/search.html#summary and http://hl7.org/fhir/R4/search.html#elements
Pure functions over JSON; the element lists come from `app.fhir.resources`.
"""

import re
from typing import Any

import orjson

from app.errors import Invalid
from app.fhir.resources import mandatory_elements, summary_elements

SUMMARY_VALUES = frozenset({"true", "text", "data", "count", "false"})
ALWAYS_KEPT = frozenset({"resourceType", "id", "meta"})
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "Resource encoded in summary mode",
}
# A top-level element name, optionally after its resource type: `name` or `Patient.name`.
ELEMENT_NAME = re.compile(r"(?:[A-Z][A-Za-z0-9]*\.)?([A-Za-z][A-Za-z0-9]*)")


def parse_summary(raw: str | None) -> str | None:
    """The `_summary` mode, or None. Spec: http://hl7.org/fhir/R4/search.html#summary"""
    if raw is None:
        return None
    if raw not in SUMMARY_VALUES:
        allowed = ", ".join(sorted(SUMMARY_VALUES))
        raise Invalid.of(f"_summary must be one of {allowed}, not {raw!r}", "_summary")
    return raw


def parse_elements(raw_values: list[str]) -> tuple[str, ...] | None:
    """The `_elements` names, or None. Spec: http://hl7.org/fhir/R4/search.html#elements"""
    names: dict[str, None] = {}  # insertion-ordered set
    for raw in raw_values:
        for part in raw.split(","):
            candidate = part.strip()
            if not candidate:
                continue
            match = ELEMENT_NAME.fullmatch(candidate)
            if match is None:
                raise Invalid.of(
                    f"_elements takes top-level element names, not {candidate!r}", "_elements"
                )
            names[match.group(1)] = None
    return tuple(names) or None


def _kept(resource_type: str, summary: str | None, elements: tuple[str, ...] | None) -> set[str]:
    """The top-level names to keep (before primitive `_name` siblings are added)."""
    if elements is not None:
        return {*ALWAYS_KEPT, *mandatory_elements(resource_type), *elements}
    if summary in ("true", "count"):
        return {*ALWAYS_KEPT, *summary_elements(resource_type)}
    return {*ALWAYS_KEPT, "text", *mandatory_elements(resource_type)}  # summary == "text"


def _with_subsetted_tag(meta: Any) -> dict[str, Any]:
    """A copy of `meta` whose tags include SUBSETTED once."""
    copied: dict[str, Any] = dict(meta) if isinstance(meta, dict) else {}
    tags = list(copied.get("tag") or [])
    if not any(
        isinstance(tag, dict)
        and tag.get("system") == SUBSETTED["system"]
        and tag.get("code") == SUBSETTED["code"]
        for tag in tags
    ):
        tags.append(dict(SUBSETTED))
    copied["tag"] = tags
    return copied


def shape(
    resource: dict[str, Any], *, summary: str | None, elements: tuple[str, ...] | None
) -> dict[str, Any]:
    """A new dict with only the requested elements, tagged SUBSETTED if any were removed.

    Spec: http://hl7.org/fhir/R4/search.html#summary and #elements. The spec leaves open how
    `_summary` and `_elements` combine; here `_elements`, when given, wins. `count` shapes like
    `true` (the caller sends no entries for it). Mandatory elements are kept under `_elements`
    and `_summary=text`, as the spec advises; a primitive's `_name` (id and extensions) goes
    with `name`.
    """
    if elements is None and summary in (None, "false"):
        return dict(resource)
    if elements is None and summary == "data":
        shaped = {key: value for key, value in resource.items() if key != "text"}
    else:
        kept = _kept(str(resource.get("resourceType", "")), summary, elements)
        shaped = {key: value for key, value in resource.items() if key.removeprefix("_") in kept}
    if len(shaped) < len(resource):
        shaped["meta"] = _with_subsetted_tag(resource.get("meta"))
    return shaped


def shape_bytes(body: bytes, *, summary: str | None, elements: tuple[str, ...] | None) -> bytes:
    """`shape` on JSON bytes; `body` itself when nothing is asked. Spec: as for `shape`."""
    if elements is None and summary in (None, "false"):
        return body
    return orjson.dumps(shape(orjson.loads(body), summary=summary, elements=elements))
