"""The only importer of fhir.resources: structural validation of incoming resources (R4B models,
wire-compatible with R4 4.0.1 for the types hosted here). Models are built and discarded;
nothing on the response path uses them. Spec: http://hl7.org/fhir/R4/validation.html
"""

from collections.abc import Callable
from functools import cache
from typing import Any

import pydantic
from fhir.resources.R4B.careteam import CareTeam
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.flag import Flag
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.relatedperson import RelatedPerson
from fhir.resources.R4B.subscription import Subscription
from pydantic.fields import FieldInfo

from app.errors import Invalid, Issue
from app.fhir.shapes import shape_of, surely_valid

MODELS: dict[str, Any] = {
    "Patient": Patient,
    "Organization": Organization,
    "Flag": Flag,
    "Condition": Condition,
    "RelatedPerson": RelatedPerson,
    "CareTeam": CareTeam,
    "Subscription": Subscription,
}
MAX_DEPTH = 64  # nesting of objects and arrays; far deeper than any resource hosted here needs


def _depth_exceeded(value: Any, room: int) -> bool:
    """Whether containers nest more than `room` levels below `value` (no recursion)."""
    if not isinstance(value, dict | list):
        return False
    stack = [(value, room)]
    while stack:
        node, left = stack.pop()
        if left == 0:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, left - 1))
    return False


def check_depth(value: Any, *expression: str) -> None:
    """400 if JSON nests deeper than MAX_DEPTH (the validator and serialiser recurse)."""
    if _depth_exceeded(value, MAX_DEPTH):
        raise Invalid.of(f"JSON may not nest deeper than {MAX_DEPTH} levels", *expression)


def _pruned(value: Any) -> Any:
    """`value` without empty arrays or objects, at any depth; None if nothing is left."""
    if isinstance(value, dict):
        kept = {k: v for k, v in ((k, _pruned(v)) for k, v in value.items()) if v is not None}
        return kept or None
    if isinstance(value, list):
        kept_items = [v for v in (_pruned(item) for item in value) if v is not None]
        return kept_items or None
    return value


def _has_empty(body: dict[str, Any]) -> bool:
    """Whether any array or object within `body` is empty (no recursion, no copies)."""
    stack: list[Any] = [body]
    while stack:
        node = stack.pop()
        if not node:
            return True
        stack.extend(
            v
            for v in (node.values() if isinstance(node, dict) else node)
            if isinstance(v, dict | list)
        )
    return False


def drop_empties(body: dict[str, Any]) -> None:
    """Leave out every empty array and object, as a lenient FHIR JSON parser does: they say
    nothing, and FHIR JSON has none (http://hl7.org/fhir/R4/json.html), so none is stored or
    sent back. The caller has bounded the depth (`check_depth`)."""
    if not _has_empty(body):
        return
    for key, value in list(body.items()):
        if isinstance(value, dict | list):
            kept = _pruned(value)
            if kept is None:
                del body[key]
            else:
                body[key] = kept


def _expression(resource_type: str, location: tuple[Any, ...]) -> str:
    expression = resource_type
    for part in location:
        if part == "resource_type":
            part = "resourceType"
        if isinstance(part, int):
            expression += f"[{part}]"
        elif part != "__root__":
            expression += f".{part}"
    return expression


def warm_up() -> None:
    """Build each hosted type's fast-path shape now, at start-up, not on its first write."""
    for model in MODELS.values():
        shape_of(model)


def validate_structure(resource_type: str, body: dict[str, Any]) -> None:
    """Check a resource against its R4 structure, first leaving out its empty arrays and
    objects (`drop_empties`); errors are 400 naming each element.

    The caller has bounded its depth (`check_depth`): the validator recurses. What the fast
    path vouches for skips the model (`app.fhir.shapes`); the model judges the rest.
    """
    drop_empties(body)
    model = MODELS[resource_type]
    if surely_valid(model, resource_type, body):
        return
    try:
        model.model_validate(body)
    except pydantic.ValidationError as exc:
        issues = [
            Issue(
                str(error["msg"]).replace("\n", " "),
                "structure" if error["type"] == "extra_forbidden" else "invalid",
                (_expression(resource_type, tuple(error["loc"])),),
            )
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise Invalid(issues) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise Invalid.of(
            f"{resource_type} is not structurally valid ({type(exc).__name__})", resource_type
        ) from None


def _top_level(
    resource_type: str, wanted: Callable[[FieldInfo, dict[str, Any]], bool]
) -> frozenset[str]:
    """JSON names of the type's elements whose field passes `wanted` (each choice variant apart)."""
    names: set[str] = set()
    for name, field in MODELS[resource_type].model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("element_property") and wanted(field, extra):
            names.add(field.alias or name)
    return frozenset(names)


def _is_summary(field: FieldInfo, extra: dict[str, Any]) -> bool:
    return bool(extra.get("summary_element_property"))


def _is_mandatory(field: FieldInfo, extra: dict[str, Any]) -> bool:
    # A required complex element is a required field; a required primitive is only flagged,
    # since its `_name` extension may stand in for the value; a required choice flags each variant.
    return field.is_required() or bool(
        extra.get("element_required") or extra.get("one_of_many_required")
    )


@cache
def summary_elements(resource_type: str) -> frozenset[str]:
    """Top-level elements marked isSummary. Spec: http://hl7.org/fhir/R4/search.html#summary"""
    return _top_level(resource_type, _is_summary)


@cache
def mandatory_elements(resource_type: str) -> frozenset[str]:
    """Top-level elements of min cardinality 1. Spec: http://hl7.org/fhir/R4/search.html#elements"""
    return _top_level(resource_type, _is_mandatory)
