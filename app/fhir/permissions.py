"""SMART scopes on FHIR interactions, applied where each is dispatched (the letters each needs,
and the refusal, are `app.access.scopes`).

Every type-level and instance-level interaction is checked where it is dispatched (`routes`,
`summary_routes`, `bundles.entries` for each Bundle entry) before its body is read, so a
client learns it may not do something before being told how its request is malformed.
System-level history and conformance (metadata, CodeSystem, ValueSet, SearchParameter,
OperationDefinition) need no resource scope: reads leave out the types a client may not read
inside the SQL (`app.access.visibility`).
Spec: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
"""

from starlette.requests import Request

from app.access import Caller
from app.access.scopes import LETTERS_OF, Interaction, refusal, require
from app.fhir.context import app_context
from app.records.service import WriteResult


def permit(request: Request, resource_type: str, interaction: Interaction) -> None:
    """`require` of the request's caller (resolved here, before the body is read)."""
    require(app_context(request).caller(request), resource_type, interaction)


def created(caller: Caller, result: WriteResult, *expression: str) -> WriteResult:
    """The result of an update, unless it created its resource and the caller may not create
    (update-as-create needs both scopes, http://hl7.org/fhir/R4/http.html#update): then 403,
    raised inside the write's transaction, which rolls the write back."""
    resource_type = result.resource_type
    if result.created and not caller.may(resource_type, LETTERS_OF["create"]):
        why = f" (this update would create {resource_type}/{result.version.logical_id})"
        raise refusal(resource_type, "create", why, *expression)
    return result


__all__ = ["Interaction", "created", "permit", "require"]
