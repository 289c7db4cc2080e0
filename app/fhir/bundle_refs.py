"""References between a transaction's entries: placeholders (`urn:uuid:`) and conditional
references (`Patient?identifier=...`), found anywhere in a resource and rewritten to `Type/id`.

Spec: http://hl7.org/fhir/R4/http.html#trules, http://hl7.org/fhir/R4/bundle.html#references
"""

from typing import Any

from app.registry import RESOURCE_TYPES

PLACEHOLDERS = ("urn:uuid:", "urn:oid:")


def all_references(value: Any, path: str) -> list[tuple[str, str]]:
    """(element, reference) of every Reference.reference, contained resources and extensions
    included."""
    found: list[tuple[str, str]] = []
    _collect(value, path, found)
    return found


def _collect(value: Any, path: str, found: list[tuple[str, str]]) -> None:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                _collect(item, f"{path}[{index}]", found)
        return
    for key, item in value.items():
        if key == "reference" and isinstance(item, str):
            found.append((path, item))
        elif isinstance(item, dict | list):
            _collect(item, f"{path}.{key}", found)


def is_placeholder(reference: str) -> bool:
    """Whether a reference names another entry by its urn:uuid or urn:oid fullUrl."""
    return reference.startswith(PLACEHOLDERS)


def is_conditional(reference: str) -> bool:
    """Whether a reference is a search (`Type?criteria`) to be resolved to its one match."""
    resource_type, mark, _ = reference.partition("?")
    return bool(mark) and resource_type in RESOURCE_TYPES


def rewrite(value: Any, targets: dict[str, str]) -> Any:
    """A copy of `value` with each reference found in `targets` replaced by its target, and
    any other value (a uri, a url) that is exactly a placeholder in `targets` too."""
    if isinstance(value, list):
        return [_rewritten(item, "", targets) for item in value]
    return {key: _rewritten(item, key, targets) for key, item in value.items()}


def _rewritten(item: Any, key: str, targets: dict[str, str]) -> Any:
    if isinstance(item, str):
        if key == "reference" or item.startswith(PLACEHOLDERS):
            return targets.get(item, item)
        return item
    if isinstance(item, dict | list):
        return rewrite(item, targets)
    return item
