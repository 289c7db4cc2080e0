"""A fast path for structural validation: vouches for a resource only where the fhir.resources
model would accept it, and otherwise says nothing, leaving the model to decide and to name the
errors (`app.fhir.resources.validate_structure`).

The models validate each nested element through Python (a custom `__init__` and model
validators per element), which makes them the dearest step of a write. Here each element kind
has a `Shape` built from its model once: its primitive elements keep the model's own annotations
and are checked by one compiled pydantic validator per element (so their rules, patterns and
date handling are the model's, not a copy); its complex elements are walked here; the rules the
models check in Python (required elements, one value of a choice, no null in a list of
elements) are checked here too. Anything the shape does not know (an unknown or null element,
an empty array, a primitive's `_element` extension, a contained resource, an element kind
with validators of its own) is left to the model.

Spec: http://hl7.org/fhir/R4/json.html, http://hl7.org/fhir/R4/formats.html#choice
"""

import types
import typing
from dataclasses import dataclass, field
from typing import Any

import pydantic
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.types import FhirBase, FhirElementOrResourceBase
from pydantic import TypeAdapter
from typing_extensions import TypedDict

# The Python-level checks every element model runs, and which `Shape.fits` mirrors.
BASE_VALIDATORS = frozenset(FHIRAbstractModel.__pydantic_decorators__.model_validators)


@dataclass(slots=True, eq=False)
class Shape:
    """What one element kind (or resource) may hold, as JSON names."""

    known: bool = True  # False: an element kind this fast path leaves to the model
    complex: dict[str, tuple[bool, "Shape"]] = field(default_factory=dict)  # name: (list?, shape)
    required: tuple[str, ...] = ()
    choices: dict[str, int] = field(default_factory=dict)  # name: its choice group
    required_choices: frozenset[int] = frozenset()
    primitives: TypeAdapter[Any] | None = None  # the rest: primitive elements, unknown names

    def fits(self, element: dict[str, Any]) -> bool:
        """Whether the model surely accepts `element` (False: ask the model)."""
        for name, value in element.items():
            nested = self.complex.get(name)
            if nested is not None and not _nested_fit(value, *nested):
                return False
        return self._rules_hold(element) and self._primitives_hold(element)

    def _rules_hold(self, element: dict[str, Any]) -> bool:
        """Required elements present, at most one value of each choice (one if required)."""
        if any(element.get(name) is None for name in self.required):
            return False
        if not self.choices:
            return True
        groups = self.choices
        chosen = [groups[k] for k, v in element.items() if v is not None and k in groups]
        return len(chosen) == len(set(chosen)) and self.required_choices <= set(chosen)

    def _primitives_hold(self, element: dict[str, Any]) -> bool:
        assert self.primitives is not None
        try:
            self.primitives.validate_python(element)
        except (pydantic.ValidationError, ValueError, TypeError):
            return False
        return True


def _nested_fit(value: Any, many: bool, shape: Shape) -> bool:
    """Whether a complex element's value (an object, or a non-empty array of them) fits."""
    if not shape.known:
        return False
    if not many:
        return type(value) is dict and shape.fits(value)
    if type(value) is not list or not value:
        return False
    return all(type(item) is dict and shape.fits(item) for item in value)


def _unwrapped(annotation: Any) -> tuple[bool, Any] | None:
    """(list?, item type) of an element's annotation, Optional removed; None if it is neither
    one type nor a list of one."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kinds = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(kinds) != 1:
            return None
        annotation = kinds[0]
    if typing.get_origin(annotation) is list:
        return True, typing.get_args(annotation)[0]
    return False, annotation


def _element_model(item: Any) -> type[FHIRAbstractModel] | None:
    """The model of a complex element type, or None for a primitive."""
    if isinstance(item, type) and issubclass(item, FhirBase):
        model: type[FHIRAbstractModel] = item.get_model_klass()
        return model
    return None


_SHAPES: dict[type[FHIRAbstractModel], Shape] = {}
UNKNOWN = Shape(known=False)


def shape_of(model: type[FHIRAbstractModel]) -> Shape:
    """The shape of a model's elements, built once (element kinds nest in themselves)."""
    found = _SHAPES.get(model)
    if found is not None:
        return found
    shape = _SHAPES[model] = Shape()
    if set(model.__pydantic_decorators__.model_validators) != BASE_VALIDATORS or (
        model.__pydantic_decorators__.field_validators
        or model.__init__ is not FHIRAbstractModel.__init__
    ):
        shape.known = False
        return shape
    primitives: dict[str, Any] = {}
    for info in model.model_fields.values():
        _place(shape, primitives, info)
    _add_rules(shape, model)
    if model.has_resource_base():
        primitives["resourceType"] = str  # a resource's own type: `surely_valid` checks it
    for name in shape.complex:
        primitives[name] = Any
    typed = TypedDict(f"{model.__name__}Shape", primitives, total=False)  # type: ignore[misc]
    typed.__pydantic_config__ = pydantic.ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    shape.primitives = TypeAdapter(typed)
    return shape


def _place(shape: Shape, primitives: dict[str, Any], info: pydantic.fields.FieldInfo) -> None:
    """File one element of a model under its JSON name: complex (walked here) or primitive."""
    name = info.alias
    if name is None or name == "fhir_comments":
        return  # not a JSON element: left out, so the model judges a body that has it
    annotation: Any = info.annotation
    if info.metadata:
        annotation = typing.Annotated[(annotation, *info.metadata)]
    unwrapped = _unwrapped(info.annotation)
    if unwrapped is None:
        shape.complex[name] = (False, UNKNOWN)
        return
    many, item = unwrapped
    model = _element_model(item)
    if model is None:
        primitives[name] = annotation
    elif issubclass(item, FhirElementOrResourceBase):
        shape.complex[name] = (many, UNKNOWN)  # any resource (contained): the model's task
    else:
        shape.complex[name] = (many, shape_of(model))


def _add_rules(shape: Shape, model: type[FHIRAbstractModel]) -> None:
    """The required elements and choice groups of a model, by JSON name."""
    blank = model.model_construct()
    aliases = {name: info.alias or name for name, info in model.model_fields.items()}
    required = [aliases[name] for name, info in model.model_fields.items() if info.is_required()]
    required += [aliases[name] for name, _ in blank.get_required_fields()]
    shape.required = tuple(dict.fromkeys(required))
    for number, names in enumerate(blank.get_one_of_many_fields().values()):
        for name in names:
            shape.choices[aliases[name]] = number
        extra = model.model_fields[names[0]].json_schema_extra
        if isinstance(extra, dict) and extra.get("one_of_many_required") is True:
            shape.required_choices |= {number}


def surely_valid(model: type[FHIRAbstractModel], resource_type: str, body: Any) -> bool:
    """Whether `model` surely accepts `body` as a `resource_type` (False: ask the model)."""
    return (
        type(body) is dict
        and body.get("resourceType") == resource_type
        and shape_of(model).fits(body)
    )
