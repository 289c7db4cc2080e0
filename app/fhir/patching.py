"""JSON Patch (RFC 6902) or FHIRPath Patch applied to a resource, the result validated like
any update.

Spec: http://hl7.org/fhir/R4/http.html#patch and http://hl7.org/fhir/R4/fhirpatch.html
"""

import copy
from typing import Any

import jsonpatch
import jsonpointer
import orjson

from app.errors import Invalid, PayloadTooLarge, Unprocessable
from app.fhir import fhirpath_operations
from app.fhir.resources import MAX_DEPTH, check_depth, validate_structure
from app.records.service import Patcher

_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})
_WITH_VALUE = frozenset({"add", "replace", "test"})
_WITH_FROM = frozenset({"move", "copy"})


def _check_pointer(operation: dict[str, Any], member: str, index: int) -> None:
    pointer = operation.get(member)
    if not isinstance(pointer, str):
        raise Invalid.of(f"operation {index} has no '{member}'", f"[{index}].{member}")
    try:
        jsonpointer.JsonPointer(pointer)
    except jsonpointer.JsonPointerException as exc:
        raise Invalid.of(f"operation {index}: {exc}", f"[{index}].{member}") from None


def _check_document(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, list):
        raise Invalid.of("a JSON Patch document is a JSON array of operations")
    for index, operation in enumerate(document):
        if not isinstance(operation, dict) or operation.get("op") not in _OPS:
            raise Invalid.of(f"operation {index} has no valid 'op'", f"[{index}].op")
        _check_pointer(operation, "path", index)
        if operation["op"] in _WITH_FROM:
            _check_pointer(operation, "from", index)
        if operation["op"] in _WITH_VALUE and "value" not in operation:
            raise Invalid.of(f"operation {index} has no 'value'", f"[{index}].value")
    return document


def _size(value: Any, cap: int = 10**9) -> int:
    """How many JSON values `value` holds, counted without recursion and no further than `cap`."""
    count, stack = 0, [value]
    while stack and count <= cap:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


class _Growth:
    """What the operations may still add: `copy` is the one operation that can grow a resource
    beyond the patch's own size (doubling it each time). All copies together may copy at most
    as many JSON values as there are, and the result may not serialize to more than the body
    limit: each copy's source is counted as it is copied (what is removed later is not given
    back), so a patch that would build a huge resource stops before building it."""

    def __init__(self, current: dict[str, Any], operations: list[dict[str, Any]], limit: int):
        self.values = _size(current) + _size(operations)
        self.limit, self.bytes = limit, len(orjson.dumps(current))

    def copy(self, source: Any) -> None:
        self.values -= _size(source, self.values)
        if self.values < 0:
            raise Unprocessable.of("patch copies too much", code="too-costly")
        self.bytes += len(orjson.dumps(source))
        self.check(self.bytes)

    def check(self, size: int) -> None:
        if size > self.limit:
            text = f"the patched resource is over the limit of {self.limit} bytes"
            raise PayloadTooLarge.of(text)


def _apply(patched: Any, operations: list[dict[str, Any]], growth: _Growth) -> Any:
    """Apply the operations in order; a refusal names the operation and its path, never the
    values it met (they can hold patient data)."""
    for number, operation in enumerate(operations):
        where = f"patch operation {number} ({operation['op']} at {operation.get('path')!r})"
        try:
            if operation["op"] == "copy":
                growth.copy(jsonpointer.resolve_pointer(patched, operation["from"], None))
            patched = jsonpatch.apply_patch(patched, [operation], in_place=True)
        except jsonpatch.JsonPatchTestFailed:
            raise Unprocessable.of(f"{where}: the value there differs", code="processing") from None
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException):
            text = f"{where} could not be applied: its path is not in the resource"
            raise Unprocessable.of(text, code="processing") from None
        except (TypeError, ValueError, KeyError, IndexError):
            raise Invalid.of(f"{where} is malformed") from None
        except RecursionError:
            raise Invalid.of(f"JSON may not nest deeper than {MAX_DEPTH} levels") from None
    return patched


def _checked(patched: Any, resource_type: str, logical_id: str, growth: _Growth) -> dict[str, Any]:
    """The patched resource, once it keeps its type and id and is valid and within limits."""
    if not isinstance(patched, dict) or patched.get("resourceType") != resource_type:
        raise Unprocessable.of("a patch may not change resourceType", "resourceType")
    if patched.get("id") != logical_id:
        raise Unprocessable.of("a patch may not change the id", f"{resource_type}.id")
    check_depth(patched, resource_type)
    growth.check(len(orjson.dumps(patched)))
    validate_structure(resource_type, patched)
    return patched


def json_patcher(resource_type: str, logical_id: str, document: Any, max_bytes: int) -> Patcher:
    """A function applying the patch document to a resource's current JSON; a result of more
    than `max_bytes` (serialized) is refused with 413."""
    operations = _check_document(document)

    def apply(current: dict[str, Any]) -> dict[str, Any]:
        growth = _Growth(current, operations, max_bytes)
        patched = _apply(copy.deepcopy(current), operations, growth)
        return _checked(patched, resource_type, logical_id, growth)

    return apply


def fhirpath_patcher(resource_type: str, logical_id: str, document: Any, max_bytes: int) -> Patcher:
    """A function applying a FHIRPath Patch (a Parameters body) to a resource's current JSON.
    It only adds what its own body holds, so the result is bounded by the body limit too."""
    operations = fhirpath_operations.operations_in(document)

    def apply(current: dict[str, Any]) -> dict[str, Any]:
        growth = _Growth(current, [], max_bytes)
        patched = fhirpath_operations.apply(copy.deepcopy(current), operations)
        return _checked(patched, resource_type, logical_id, growth)

    return apply
