"""Resource JSON -> search index rows, driven by the parameter registry in `app.registry`."""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.registry import RESOURCE_TYPES, SearchParam


@dataclass(frozen=True, slots=True)
class IndexRows:
    """Index rows of one resource, by index kind."""

    token: list[tuple[str, str | None, str | None]]
    reference: list[tuple[str, str | None, str]]


LONGEST_INDEXED = 256  # characters; a B-tree entry holds at most ~2700 bytes


def indexed_text(text: str | None) -> str | None:
    """The form a value is indexed and searched in: as it is, or if long, a prefix and hash."""
    if text is None or len(text) <= LONGEST_INDEXED:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{text[:128]}...sha256:{digest}"


def element_values(resource: dict[str, Any], path: str) -> Iterator[Any]:
    """Every value at a dotted path (`Flag.subject`), flattening lists on the way."""
    current: list[Any] = [resource]
    for key in path.split(".")[1:]:
        following: list[Any] = []
        for value in current:
            if isinstance(value, dict) and key in value:
                found = value[key]
                following.extend(found if isinstance(found, list) else [found])
        current = following
    yield from current


def token_pairs(value: Any) -> Iterator[tuple[str | None, str | None]]:
    """(system, code) pairs of a code, Coding, CodeableConcept, Identifier or boolean."""
    if isinstance(value, bool):
        yield None, "true" if value else "false"
    elif isinstance(value, str):
        yield None, value
    elif isinstance(value, dict):
        if "coding" in value:
            for coding in value["coding"]:
                yield from token_pairs(coding)
        elif "value" in value and isinstance(value["value"], str):
            yield value.get("system"), value["value"]
        elif "code" in value:
            yield value.get("system"), value["code"]


def split_reference(reference: str, base_url: str) -> tuple[str | None, str]:
    """(type, id) of a relative or own-base absolute reference; (None, url) for others."""
    local = reference.removeprefix(base_url.rstrip("/") + "/")
    parts = local.split("/")
    if len(parts) >= 2 and parts[0][:1].isupper() and "://" not in local:
        if len(parts) == 4 and parts[2] == "_history":
            return parts[0], parts[1]
        if len(parts) == 2:
            return parts[0], parts[1]
    return None, reference


def _reference_rows(
    param: SearchParam, value: Any, base_url: str
) -> Iterator[tuple[str, str | None, str]]:
    if not isinstance(value, dict) or not isinstance(value.get("reference"), str):
        return
    target_type, target_id = split_reference(value["reference"], base_url)
    if param.targets and target_type is not None and target_type not in param.targets:
        return
    yield param.name, target_type, indexed_text(target_id) or target_id


def index_rows(resource_type: str, resource: dict[str, Any], base_url: str) -> IndexRows:
    """The index rows a resource gets, for every parameter the registry defines on its type."""
    rows = IndexRows(token=[], reference=[])
    for param in RESOURCE_TYPES[resource_type].params.values():
        for path in param.paths:
            for value in element_values(resource, path):
                if param.type == "token":
                    rows.token.extend(
                        (param.name, indexed_text(s), indexed_text(c))
                        for s, c in token_pairs(value)
                    )
                elif param.type == "reference":
                    rows.reference.extend(_reference_rows(param, value, base_url))
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
