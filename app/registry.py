"""The registry of resource types and search parameters that routes, indexer, query builder and
CapabilityStatement all read, so that none of them keeps its own list.

Paths are simple dotted element paths (`Flag.subject`); a reference parameter's `targets`
restricts which referenced types it indexes (FHIRPath `where(resolve() is Patient)`).
"""

from dataclasses import dataclass, field

FHIR_VERSION = "4.0.1"
SPEC = "http://hl7.org/fhir/R4"

SUBJECT_TARGETS = ("Group", "Patient")
ORG_OR_PEOPLE = ("Organization", "Patient", "Practitioner", "PractitionerRole", "RelatedPerson")


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter: its name, FHIR type, where its values come from."""

    name: str
    type: str
    paths: tuple[str, ...]
    description: str
    targets: tuple[str, ...] = ()
    definition: str = ""


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A resource type this server hosts, with its search parameters."""

    name: str
    params: dict[str, SearchParam]
    compartment_path: str | None = None
    interactions: tuple[str, ...] = (
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    )
    profile: str = field(default="")


def _params(*params: SearchParam) -> dict[str, SearchParam]:
    return {p.name: p for p in params}


def _identifier(type_name: str) -> SearchParam:
    return SearchParam(
        "identifier",
        "token",
        (f"{type_name}.identifier",),
        f"An identifier of the {type_name}",
        definition=f"{SPEC}/SearchParameter/clinical-identifier",
    )


def _patient(path: str) -> SearchParam:
    return SearchParam(
        "patient",
        "reference",
        (path,),
        "The Patient the resource is about",
        ("Patient",),
        definition=f"{SPEC}/SearchParameter/clinical-patient",
    )


RESOURCE_TYPES: dict[str, ResourceType] = {
    "Patient": ResourceType(
        "Patient",
        _params(_identifier("Patient")),
        compartment_path="Patient.id",
    ),
    "Organization": ResourceType("Organization", _params(_identifier("Organization"))),
    "Flag": ResourceType(
        "Flag",
        _params(
            _identifier("Flag"),
            _patient("Flag.subject"),
            SearchParam(
                "subject",
                "reference",
                ("Flag.subject",),
                "The identity of a subject to list flags for",
                ("Group", "Location", "Medication", "Organization", "Patient", "Practitioner"),
                definition=f"{SPEC}/SearchParameter/Flag-subject",
            ),
        ),
        compartment_path="Flag.subject",
    ),
    "Condition": ResourceType(
        "Condition",
        _params(
            _identifier("Condition"),
            _patient("Condition.subject"),
            SearchParam(
                "subject",
                "reference",
                ("Condition.subject",),
                "Who has the condition?",
                SUBJECT_TARGETS,
                definition=f"{SPEC}/SearchParameter/Condition-subject",
            ),
        ),
        compartment_path="Condition.subject",
    ),
    "RelatedPerson": ResourceType(
        "RelatedPerson",
        _params(
            _identifier("RelatedPerson"),
            _patient("RelatedPerson.patient"),
        ),
        compartment_path="RelatedPerson.patient",
    ),
}

COMMON_PARAMS: dict[str, SearchParam] = _params(
    SearchParam(
        "_id",
        "token",
        ("Resource.id",),
        "Logical id of this artifact",
        definition=f"{SPEC}/SearchParameter/Resource-id",
    ),
)

RESULT_PARAMS = frozenset({"_count", "_format", "_pretty", "_cursor"})


def resource_type(name: str) -> ResourceType | None:
    """The hosted type of that name, or None."""
    return RESOURCE_TYPES.get(name)


def search_param(type_name: str, name: str) -> SearchParam | None:
    """A type's search parameter (or a common one) by name."""
    rtype = RESOURCE_TYPES.get(type_name)
    if rtype is None:
        return None
    return rtype.params.get(name) or COMMON_PARAMS.get(name)
