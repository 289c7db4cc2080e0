"""SMART scopes on FHIR interactions: the letter each interaction needs, and the one check
that refuses it (403) naming the scope that would allow it.

Every type-level and instance-level interaction is checked where it is dispatched (`routes`,
`summary_routes`, `bundles.entries` for each Bundle entry) before its body is read, so a
client learns it may not do something before being told how its request is malformed.
System-level history and conformance (metadata, CodeSystem, ValueSet, SearchParameter,
OperationDefinition) need no resource scope: reads leave out the types a client may not read
inside the SQL (`app.access.visibility`).
Spec: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
"""

from typing import Literal

from starlette.requests import Request

from app.access import Caller
from app.access.scopes import needed
from app.errors import Forbidden, Issue
from app.fhir.context import app_context
from app.records.service import WriteResult

# The interaction codes of http://hl7.org/fhir/R4/valueset-type-restful-interaction.html
Interaction = Literal[
    "read",
    "vread",
    "history-instance",
    "history-type",
    "search-type",
    "create",
    "update",
    "patch",
    "delete",
]
LETTERS: dict[Interaction, str] = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "history-type": "r",
    "search-type": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}


def _refusal(resource_type: str, interaction: Interaction, why: str, *expression: str) -> Forbidden:
    scope = needed(resource_type, LETTERS[interaction])
    text = f"this client's scopes do not allow {interaction} on {resource_type}{why}"
    return Forbidden([Issue(f"{text}: it needs {scope}", "forbidden", expression)])


def require(caller: Caller, resource_type: str, interaction: Interaction, *expression: str) -> None:
    """403 unless the caller's scopes allow `interaction` on `resource_type` (SMART)."""
    if not caller.may(resource_type, LETTERS[interaction]):
        raise _refusal(resource_type, interaction, "", *expression)


def permit(request: Request, resource_type: str, interaction: Interaction) -> None:
    """`require` of the request's caller (resolved here, before the body is read)."""
    require(app_context(request).caller(request), resource_type, interaction)


def created(caller: Caller, result: WriteResult, *expression: str) -> WriteResult:
    """The result of an update, unless it created its resource and the caller may not create
    (update-as-create needs both scopes, http://hl7.org/fhir/R4/http.html#update): then 403,
    raised inside the write's transaction, which rolls the write back."""
    resource_type = result.resource_type
    if result.created and not caller.may(resource_type, LETTERS["create"]):
        why = f" (this update would create {resource_type}/{result.version.logical_id})"
        raise _refusal(resource_type, "create", why, *expression)
    return result
