"""The operations of a FHIRPath Patch Parameters body, read and applied in order.

Spec: http://hl7.org/fhir/R4/fhirpatch.html (paths are resolved by `app.fhir.fhirpath_patch`).
A refusal names the operation's part (`Parameters.parameter[1].part[2]`), never the values
it met: they can hold patient data.
"""

from dataclasses import dataclass
from typing import Any

from app.errors import FhirError, Invalid, Unprocessable
from app.fhir.fhirpath_patch import Place, fields_of, only, parent_and_name, select

OPERATION_TYPES = ("add", "insert", "delete", "replace", "move")
INTEGER_PARTS = ("index", "source", "destination")


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation as its parts gave it; `where` is its parameter, for errors."""

    type: str
    path: str
    where: str
    name: str | None = None
    value: Any = None
    value_type: str | None = None  # `String` of valueString; None for a value given in parts
    index: int | None = None
    source: int | None = None
    destination: int | None = None


def _value_of(part: dict[str, Any], where: str) -> tuple[Any, str | None]:
    """A part's value: its one value[x] (with the type), or the object its own parts build."""
    typed = [key for key in part if key.startswith("value") and len(key) > 5]
    if len(typed) == 1 and "part" not in part:
        return part[typed[0]], typed[0][5:]
    if not typed and isinstance(part.get("part"), list):
        built: dict[str, Any] = {}
        for number, child in enumerate(part["part"]):
            inner = f"{where}.part[{number}]"
            if not isinstance(child, dict) or not isinstance(child.get("name"), str):
                raise Invalid.of("a value's part needs a name", inner)
            built.setdefault(child["name"], []).append(_value_of(child, inner)[0])
        return {k: v[0] if len(v) == 1 else v for k, v in built.items()}, None
    raise Invalid.of("a part needs exactly one value[x], or parts", where)


def _operation(parameter: Any, where: str) -> Operation:
    """One `operation` parameter read into an Operation."""
    if not isinstance(parameter, dict) or parameter.get("name") != "operation":
        raise Invalid.of("each parameter of a FHIRPath Patch is named 'operation'", where)
    if not isinstance(parameter.get("part"), list):
        raise Invalid.of("an operation needs its parts", f"{where}.part")
    found: dict[str, Any] = {}
    for number, part in enumerate(parameter["part"]):
        inner = f"{where}.part[{number}]"
        if not isinstance(part, dict) or not isinstance(part.get("name"), str):
            raise Invalid.of("each part needs a name", inner)
        value, value_type = _value_of(part, inner)
        found[part["name"]] = value
        if part["name"] == "value":
            found["value_type"] = value_type
    kind, path = found.get("type"), found.get("path")
    if kind not in OPERATION_TYPES:
        raise Invalid.of(f"an operation's type is one of {', '.join(OPERATION_TYPES)}", where)
    if not isinstance(path, str):
        raise Invalid.of("an operation needs a path (valueString)", where)
    for key in INTEGER_PARTS:
        if key in found and (not isinstance(found[key], int) or isinstance(found[key], bool)):
            raise Invalid.of(f"an operation's {key} is a valueInteger", where)
    known = {k: found.get(k) for k in ("name", "value", "value_type", *INTEGER_PARTS)}
    return Operation(kind, path, where, **known)


def operations_in(document: Any) -> list[Operation]:
    """The operations of a Parameters body, checked for shape (400 naming the part at fault)."""
    if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
        raise Invalid.of("a FHIRPath Patch body is a Parameters resource", "Parameters")
    parameters = document.get("parameter")
    if not isinstance(parameters, list) or not parameters:
        raise Invalid.of("a FHIRPath Patch has at least one operation", "Parameters.parameter")
    return [_operation(p, f"Parameters.parameter[{i}]") for i, p in enumerate(parameters)]


def _needs(op: Operation, *parts: str) -> None:
    for part in parts:
        if getattr(op, part) is None:
            raise Invalid.of(f"a {op.type} operation needs its {part}", op.where)


def _refused(op: Operation, why: str) -> FhirError:
    return Unprocessable.of(f"{op.type} at {op.path!r}: {why}", op.where, code="processing")


def _add(resource: dict[str, Any], op: Operation) -> None:
    _needs(op, "name", "value")
    place = only(select(resource, op.path, op.where), op.path, op.where)
    target, kind = place.value, place.type
    if not isinstance(target, dict) or kind is None:
        raise _refused(op, "the path does not select an element that has elements")
    fields = fields_of(kind)
    key = str(op.name)
    if key not in fields and op.value_type is not None:
        key = f"{op.name}{op.value_type[:1].upper()}{op.value_type[1:]}"
    if key not in fields:
        raise _refused(op, f"{kind} has no element {op.name!r}")
    if fields[key][0]:
        target.setdefault(key, []).append(op.value)
    elif key in target:
        raise _refused(op, f"{op.name!r} is already there and does not repeat: use replace")
    else:
        target[key] = op.value


def _list_at(resource: dict[str, Any], op: Operation) -> tuple[dict[str, Any], str, list[Any]]:
    """The object holding the repeating element `op.path` ends in, its name, and its list."""
    place, name = parent_and_name(resource, op.path, op.where)
    holder, kind = place.value, place.type
    if not isinstance(holder, dict) or kind is None or not fields_of(kind).get(name, (0,))[0]:
        raise _refused(op, "the path does not end in a repeating element")
    held = holder.get(name, [])
    return holder, name, held if isinstance(held, list) else [held]


def _insert(resource: dict[str, Any], op: Operation) -> None:
    _needs(op, "value", "index")
    holder, name, held = _list_at(resource, op)
    if not 0 <= int(op.index or 0) <= len(held):
        raise _refused(op, f"index {op.index} is outside the list of {len(held)}")
    held.insert(int(op.index or 0), op.value)
    holder[name] = held


def _move(resource: dict[str, Any], op: Operation) -> None:
    _needs(op, "source", "destination")
    holder, name, held = _list_at(resource, op)
    if not (0 <= int(op.source or 0) < len(held) and 0 <= int(op.destination or 0) < len(held)):
        raise _refused(op, f"source and destination must be within the list of {len(held)}")
    held.insert(int(op.destination or 0), held.pop(int(op.source or 0)))
    holder[name] = held


def _remove(place: Place) -> None:
    if place.index is None:
        del place.parent[place.name]
        return
    del place.parent[place.name][place.index]
    if not place.parent[place.name]:
        del place.parent[place.name]


def _delete(resource: dict[str, Any], op: Operation) -> None:
    places = select(resource, op.path, op.where)
    if places:  # deleting what is not there is no error (fhirpatch.html)
        _remove(only(places, op.path, op.where))


def _replace(resource: dict[str, Any], op: Operation) -> None:
    _needs(op, "value")
    place = only(select(resource, op.path, op.where), op.path, op.where)
    if place.own_type is not None:
        raise _refused(op, "the resource itself cannot be replaced")
    if place.index is not None:
        place.parent[place.name][place.index] = op.value
        return
    stem = op.path.rpartition(".")[2]
    key = place.name
    if stem != key and key.startswith(stem) and op.value_type is not None:  # a choice element
        key = f"{stem}{op.value_type[:1].upper()}{op.value_type[1:]}"
        if key not in fields_of(place.parent_type):
            raise _refused(op, f"{stem} cannot be a {op.value_type}")
        del place.parent[place.name]
    place.parent[key] = op.value


APPLY = {"add": _add, "insert": _insert, "delete": _delete, "replace": _replace, "move": _move}


def apply(resource: dict[str, Any], operations: list[Operation]) -> dict[str, Any]:
    """`resource` with the operations applied in order (it is changed in place)."""
    for op in operations:
        APPLY[op.type](resource, op)
    return resource
