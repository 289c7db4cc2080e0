"""FHIRPath Patch: a Parameters body of operations (add, insert, delete, replace, move).

Spec: http://hl7.org/fhir/R4/fhirpatch.html and http://hl7.org/fhir/R4/http.html#patch
Paths are the FHIRPath subset patches use: element names from the resource type, `[n]`
indexers, `first()`, `last()` and `where(element = 'literal')`; anything else is 400 naming
the operation. Which elements repeat, and of what type, comes from the fhir.resources models.
"""

import re
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fhir.resources import get_fhir_model_class

from app.errors import Invalid, Unprocessable

_SEGMENT = re.compile(
    r"where\(\s*(?P<field>[A-Za-z][A-Za-z0-9]*)\s*=\s*'(?P<literal>(?:[^'\\]|\\.)*)'\s*\)"
    r"|(?P<call>first|last)\(\)"
    r"|(?P<name>[A-Za-z][A-Za-z0-9_]*)(?:\[(?P<index>\d{1,6})\])?"
)


@lru_cache(maxsize=1024)
def fields_of(type_name: str) -> dict[str, tuple[bool, str | None]]:
    """Each element of a FHIR type by JSON name: (whether it repeats, its complex type or None)."""
    fields = {}
    for name, info in get_fhir_model_class(type_name).model_fields.items():
        inner = [a for a in typing.get_args(info.annotation) if a is not type(None)]
        held = inner[0] if inner else info.annotation
        repeats = typing.get_origin(held) is list
        held = typing.get_args(held)[0] if repeats else held
        named = getattr(held, "__name__", "")
        complex_type = named[:-4] if named.endswith("Type") and len(named) > 4 else None
        fields[info.alias or name] = (repeats, complex_type)
    return fields


@dataclass(frozen=True, slots=True)
class Place:
    """An element: its parent object and the parent's type, its JSON name and list index;
    `own_type` only for the resource itself, whose type no parent names."""

    parent: dict[str, Any]
    parent_type: str
    name: str
    index: int | None = None
    own_type: str | None = None

    @property
    def value(self) -> Any:
        """The element itself."""
        held = self.parent[self.name]
        return held if self.index is None else held[self.index]

    @property
    def type(self) -> str | None:
        """The element's complex type (None for a primitive or an unknown element)."""
        if self.own_type is not None:
            return self.own_type
        return fields_of(self.parent_type).get(self.name, (False, None))[1]


def _steps(path: str, where: str) -> list[re.Match[str]]:
    """The path's steps, or 400 if it is outside the subset patches here use."""
    steps, position = [], 0
    while position < len(path):
        found = _SEGMENT.match(path, position)
        end = found.end() if found else position
        if found is None or (end < len(path) and path[end] != "."):
            raise Invalid.of(f"the FHIRPath {path!r} is not supported in a patch here", where)
        steps.append(found)
        position = end + 1
    if not steps:
        raise Invalid.of("an operation's path is empty", where)
    return steps


def _is_choice_of(key: str, stem: str) -> bool:
    return key.startswith(stem) and len(key) > len(stem) and key[len(stem)].isupper()


def _children(place: Place, name: str) -> list[Place]:
    """The places of element `name` in an element (a choice element by its stem too)."""
    value, kind = place.value, place.type
    if not isinstance(value, dict) or kind is None:
        return []
    key = name if name in value else next((k for k in value if _is_choice_of(k, name)), None)
    if key is None:
        return []
    if isinstance(value[key], list):
        return [Place(value, kind, key, i) for i in range(len(value[key]))]
    return [Place(value, kind, key)]


def _step(places: list[Place], step: re.Match[str]) -> list[Place]:
    """The places one path step selects from `places`."""
    if step["call"] is not None:
        return places[:1] if step["call"] == "first" else places[-1:]
    if step["field"] is not None:
        literal = re.sub(r"\\(.)", r"\1", step["literal"])
        field = step["field"]
        return [p for p in places if isinstance(p.value, dict) and p.value.get(field) == literal]
    found = [child for place in places for child in _children(place, step["name"])]
    if step["index"] is None:
        return found
    return found[int(step["index"]) : int(step["index"]) + 1]


def select(resource: dict[str, Any], path: str, where: str) -> list[Place]:
    """The places `path` selects in `resource` (its first step may name the resource type)."""
    steps = _steps(path, where)
    resource_type = resource["resourceType"]
    if steps[0]["name"] == resource_type and steps[0]["index"] is None:
        steps = steps[1:]
    places = [Place({"": resource}, "", "", own_type=resource_type)]
    for step in steps:
        places = _step(places, step)
    return places


def parent_and_name(resource: dict[str, Any], path: str, where: str) -> tuple[Place, str]:
    """The one element holding the list `path` ends in, and that list's element name."""
    head, dot, name = path.rpartition(".")
    if not dot or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name):
        raise Invalid.of(f"{path!r} must end in the name of a list element", where)
    return only(select(resource, head, where), path, where), name


def only(places: list[Place], path: str, where: str) -> Place:
    """The one place a path selects; 422 when it selects none or several."""
    if len(places) != 1:
        found = "nothing" if not places else f"{len(places)} elements"
        text = f"the path {path!r} selects {found}; it must select exactly one"
        raise Unprocessable.of(text, where, code="processing")
    return places[0]
