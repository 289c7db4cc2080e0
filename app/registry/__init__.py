"""The registry of resource types and search parameters that routes, indexer, query builder
and CapabilityStatement all read, so that none of them keeps its own list.
"""

from app.registry.model import FHIR_VERSION, SEARCH_TYPES, ResourceType, SearchParam
from app.registry.r4 import COMMON, TABLES

__all__ = [
    "COMMON_PARAMS",
    "COMPARTMENT_MEMBERS",
    "FHIR_VERSION",
    "RESOURCE_TYPES",
    "RESULT_PARAMS",
    "SEARCH_TYPES",
    "ResourceType",
    "SearchParam",
    "custom_params",
    "resource_type",
    "search_param",
]

COMPARTMENT_PATHS = {
    "Patient": "Patient.id",
    "Flag": "Flag.subject",
    "Condition": "Condition.subject",
    "RelatedPerson": "RelatedPerson.patient",
    "CareTeam": "CareTeam.subject",
}

# The types in a Patient's compartment, besides the Patient (compartmentdefinition-patient.html)
COMPARTMENT_MEMBERS = tuple(name for name in COMPARTMENT_PATHS if name != "Patient")

RESOURCE_TYPES: dict[str, ResourceType] = {
    name: ResourceType(name, {p.name: p for p in params}, COMPARTMENT_PATHS.get(name))
    for name, params in TABLES.items()
}

COMMON_PARAMS: dict[str, SearchParam] = {p.name: p for p in COMMON}

# Parameters that shape results rather than select them (search.html#return).
RESULT_PARAMS = frozenset(
    {"_count", "_format", "_pretty", "_cursor", "_sort", "_total", "_summary", "_elements"}
    | {"_include", "_revinclude", "_include:iterate", "_revinclude:iterate", "_contained"}
)


def resource_type(name: str) -> ResourceType | None:
    """The hosted type of that name, or None."""
    return RESOURCE_TYPES.get(name)


def search_param(type_name: str, name: str) -> SearchParam | None:
    """A type's search parameter (or a common one) by name."""
    rtype = RESOURCE_TYPES.get(type_name)
    if rtype is None:
        return None
    return rtype.params.get(name) or COMMON_PARAMS.get(name)


def custom_params() -> list[tuple[str, SearchParam]]:
    """(base type, parameter) of every parameter this server defines itself."""
    return [
        (rtype.name, param)
        for rtype in RESOURCE_TYPES.values()
        for param in rtype.params.values()
        if param.custom
    ]
