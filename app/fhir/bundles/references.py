"""References between a transaction's entries: placeholders (`urn:uuid:`) and conditional
references (`Patient?identifier=...`), found anywhere in a resource and rewritten to `Type/id`.

Each entry's resource is walked once, when the Bundle is parsed: the walk bounds its depth
(the structural validator recurses) and records every string a transaction may rewrite as a
`Slot`. An attempt then rewrites only those strings, from the text as sent, so a retried
transaction starts from the same references.

Spec: http://hl7.org/fhir/R4/http.html#trules, http://hl7.org/fhir/R4/bundle.html#references
"""

from dataclasses import dataclass
from typing import Any

from app.errors import Invalid
from app.fhir.resources import MAX_DEPTH
from app.registry import RESOURCE_TYPES

PLACEHOLDERS = ("urn:uuid:", "urn:oid:")


@dataclass(frozen=True, slots=True)
class Slot:
    """A string a transaction may rewrite: the dict or list holding it, its key there, the
    text as sent, its element (FHIRPath; of a Reference.reference, the Reference's), and
    whether it is a Reference.reference."""

    holder: Any
    key: Any
    text: str
    element: str
    is_reference: bool


def slots_of(resource: dict[str, Any], path: str) -> list[Slot]:
    """Every Reference.reference (contained resources and extensions included), and every
    other string that is a placeholder; 400 naming the element if JSON nests deeper than
    MAX_DEPTH."""
    found: list[Slot] = []
    _walk(resource, path, MAX_DEPTH, found)
    return found


def _walk(value: Any, path: str, room: int, found: list[Slot]) -> None:
    if room == 0:
        raise Invalid.of(f"JSON may not nest deeper than {MAX_DEPTH} levels", path)
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                if item.startswith(PLACEHOLDERS):
                    found.append(Slot(value, index, item, f"{path}[{index}]", False))
            elif isinstance(item, dict | list):
                _walk(item, f"{path}[{index}]", room - 1, found)
        return
    for key, item in value.items():
        if isinstance(item, str):
            if key == "reference":  # the element is the Reference itself
                found.append(Slot(value, key, item, path, True))
            elif item.startswith(PLACEHOLDERS):
                found.append(Slot(value, key, item, f"{path}.{key}", False))
        elif isinstance(item, dict | list):
            _walk(item, f"{path}.{key}", room - 1, found)


def references(slots: list[Slot]) -> list[tuple[str, str]]:
    """(element, reference as sent) of the slots that are Reference.reference."""
    return [(slot.element, slot.text) for slot in slots if slot.is_reference]


def rewrite(slots: list[Slot], targets: dict[str, str]) -> None:
    """Set each slot to its target in `targets`, or back to its text as sent."""
    for slot in slots:
        slot.holder[slot.key] = targets.get(slot.text, slot.text)


def is_placeholder(reference: str) -> bool:
    """Whether a reference names another entry by its urn:uuid or urn:oid fullUrl."""
    return reference.startswith(PLACEHOLDERS)


def conditional(reference: str, base: str) -> tuple[str, str] | None:
    """(type, criteria) of a reference that is a search to be resolved to its one match:
    `Type?criteria`, or the same on this server's base URL; None for any other reference."""
    resource_type, mark, criteria = reference.removeprefix(f"{base}/").partition("?")
    return (resource_type, criteria) if mark and resource_type in RESOURCE_TYPES else None
