"""JSON Patch (RFC 6902) applied to a resource, the result validated like any update.

Spec: http://hl7.org/fhir/R4/http.html#patch
"""

from typing import Any

import jsonpatch
import jsonpointer

from app.errors import Invalid, Unprocessable
from app.fhir.resources import validate_structure
from app.flags.service import Patcher

_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def _check_document(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, list):
        raise Invalid.of("a JSON Patch document is a JSON array of operations")
    for index, operation in enumerate(document):
        if not isinstance(operation, dict) or operation.get("op") not in _OPS:
            raise Invalid.of(f"operation {index} has no valid 'op'", f"[{index}].op")
        if not isinstance(operation.get("path"), str):
            raise Invalid.of(f"operation {index} has no 'path'", f"[{index}].path")
    return document


def json_patcher(resource_type: str, logical_id: str, document: Any) -> Patcher:
    """A function applying the patch document to a resource's current JSON."""
    operations = _check_document(document)

    def apply(current: dict[str, Any]) -> dict[str, Any]:
        try:
            patched = jsonpatch.apply_patch(current, operations)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise Unprocessable.of(f"patch test failed: {exc}", code="processing") from None
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            raise Unprocessable.of(
                f"patch could not be applied: {exc}", code="processing"
            ) from None
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise Invalid.of(f"patch is malformed ({type(exc).__name__})") from None
        if not isinstance(patched, dict) or patched.get("resourceType") != resource_type:
            raise Unprocessable.of("a patch may not change resourceType", "resourceType")
        if patched.get("id") != logical_id:
            raise Unprocessable.of("a patch may not change the id", f"{resource_type}.id")
        validate_structure(resource_type, patched)
        return patched

    return apply
