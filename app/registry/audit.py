"""AuditEvent as this server offers it: the audit trail, read and searched by auditors only,
never written through the API (`app.audit`). Not a hosted type (`RESOURCE_TYPES`): no generic
route, index or write path serves it.

Spec: http://hl7.org/fhir/R4/auditevent.html#search
"""

from app.registry.model import SearchParam

AUDIT_EVENT = "AuditEvent"
INTERACTIONS = ("read", "search-type")
HL7 = "http://hl7.org/fhir/SearchParameter"
ACTION_SYSTEM = "http://hl7.org/fhir/audit-event-action"
OUTCOME_SYSTEM = "http://hl7.org/fhir/audit-event-outcome"
AGENT_TYPES = (
    "Practitioner",
    "Organization",
    "Device",
    "Patient",
    "PractitionerRole",
    "RelatedPerson",
)


def _param(
    name: str, kind: str, expression: str, description: str, targets: tuple[str, ...] = ()
) -> SearchParam:
    """One of R4's AuditEvent search parameters, defined by HL7."""
    return SearchParam(
        name,
        kind,
        (expression,),
        description,
        expression,
        targets,
        definition=f"{HL7}/AuditEvent-{name}",
    )


# R4's definitions (searchparameter-registry); `patient`'s expression is R4's own.
PARAMS: dict[str, SearchParam] = {
    p.name: p
    for p in (
        _param(
            "patient",
            "reference",
            "AuditEvent.agent.who.where(resolve() is Patient) | "
            "AuditEvent.entity.what.where(resolve() is Patient)",
            "A Patient the event concerns; also patient.identifier=<system>|<value>, which "
            "finds every Patient that holds or held that identifier, deleted ones too",
            ("Patient",),
        ),
        _param(
            "agent",
            "reference",
            "AuditEvent.agent.who",
            "Who took part: the client's Organization (Organization/<id>); with :identifier, "
            "the client itself (<canonical base>/clients|<client id>)",
            AGENT_TYPES,
        ),
        _param(
            "entity",
            "reference",
            "AuditEvent.entity.what",
            "A resource read or written (Type/id, any version)",
        ),
        _param("date", "date", "AuditEvent.recorded", "When the event was recorded"),
        _param("action", "token", "AuditEvent.action", "C, R, U, D or E"),
        _param("outcome", "token", "AuditEvent.outcome", "0 success, 4 minor, 8 serious failure"),
        _param(
            "subtype",
            "token",
            "AuditEvent.subtype",
            "The interaction (http://hl7.org/fhir/restful-interaction), or a login",
        ),
    )
}
