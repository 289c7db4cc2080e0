"""What the registry holds: resource types and their search parameters."""

from dataclasses import dataclass

FHIR_VERSION = "4.0.1"
SEARCH_TYPES = ("token", "string", "reference", "date", "quantity", "uri")


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter: its name, FHIR type and where its values come from.

    `paths` are dotted JSON paths (a choice element by its JSON name, `Condition.onsetAge`);
    `where` keeps only values whose key equals a value (`telecom.where(system='email')`);
    `expression` is the FHIRPath published in SearchParameter resources; `targets` restricts
    a reference parameter to those types. `custom` parameters are defined by this server.
    """

    name: str
    type: str
    paths: tuple[str, ...]
    description: str
    expression: str = ""
    targets: tuple[str, ...] = ()
    where: tuple[str, str] | None = None
    custom: bool = False
    definition: str = ""

    @property
    def code(self) -> str:
        """The code used in URLs (the same as the name)."""
        return self.name


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
