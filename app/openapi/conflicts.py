"""The 409 answers each write route documents: retryable contention apart from business refusals.

A client must know which 409s to send again. Contention (issue code `transient`, with
Retry-After) can succeed when retried; a refusal (`duplicate` or `business-rule`) gets the same
answer until the records change. http://hl7.org/fhir/R4/valueset-issue-type.html
"""

from app.openapi.schemas import FHIR_JSON, JSON, component_ref

SPINE = "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode"
CONTENTION = (
    "**Retryable** (issue code `transient`, `Retry-After` header): concurrent requests won every "
    "retry of this write, or a request with this X-Request-ID is still being answered. Nothing "
    "was applied; send it again (with the same X-Request-ID) after Retry-After seconds."
)
ONE_ACTIVE = (
    "**Not retryable** (issue code `duplicate`, Spine `DUPLICATE_REJECTED`): the child already "
    "has an active child-protection-plan or elective-home-education Flag, or an active CareTeam "
    "naming a lead professional; the diagnostics name it. End that one first."
)
NO_DELETE = (
    "**Not retryable** (issue code `business-rule`): a safeguarding Flag is never deleted; end "
    "it with status inactive (and period.end) or entered-in-error, with a removal reason."
)
REFUSED = {"duplicate": ONE_ACTIVE, "business-rule": NO_DELETE}  # by issue code
REFUSALS = {  # the refusals each write route can give, by issue code
    "create": ("duplicate",),
    "update": ("duplicate",),
    "conditional_update": ("duplicate",),
    "patch": ("duplicate",),
    "delete": ("business-rule",),
    "conditional_delete": ("business-rule",),
    "transaction": ("duplicate", "business-rule"),
}


def _issue(code: str, text: str, spine: str | None = None) -> JSON:
    issue: JSON = {"severity": "error", "code": code}
    if spine is not None:
        issue["details"] = {"coding": [{"system": SPINE, "code": spine}]}
    return {"resourceType": "OperationOutcome", "issue": [issue | {"diagnostics": text}]}


EXAMPLES: dict[str, JSON] = {
    "retryable": _issue(
        "transient",
        "the resource was changed by concurrent requests while this write was retried; "
        "nothing was applied: send it again",
    ),
    "duplicate": _issue(
        "duplicate",
        "Patient/6c1f already has an active child-protection-plan flag, Flag/91ab: end it "
        "(status inactive with period.end) before raising another",
        "DUPLICATE_REJECTED",
    ),
    "business-rule": _issue(
        "business-rule",
        "Flag/91ab is a safeguarding flag: end it with status inactive (and period.end) or "
        "entered-in-error, with a removal reason, instead of deleting it",
    ),
}


def conflict_response(route: str) -> JSON:
    """The 409 of write route `route`: each kind of conflict, and whether to send it again."""
    refusals = REFUSALS.get(route, ())
    examples = {kind: {"value": EXAMPLES[kind]} for kind in ("retryable", *refusals)}
    media = {"schema": component_ref("schemas", "OperationOutcome"), "examples": examples}
    texts = ("Conflict:", CONTENTION, *(REFUSED[kind] for kind in refusals))
    return {
        "description": "\n\n".join(texts),
        "content": {FHIR_JSON: media},
        "headers": {
            name: component_ref("headers", name) for name in ("X-Request-ID", "Retry-After")
        },
    }
