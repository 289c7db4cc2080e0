"""The CapabilityStatement, generated from the same registry the routes and indexer use.

Spec: http://hl7.org/fhir/R4/capabilitystatement.html
"""

from typing import Any

from app import __doc__ as description
from app.fhir.definitions import artefacts as terminology_artefacts
from app.fhir.definitions import operations as operation_definitions
from app.fhir.definitions import search_parameters as conformance
from app.flags.codes import vocabulary
from app.flags.subscribing import PROFILE, TOPICS, topic_url
from app.registry import (
    COMMON_PARAMS,
    FHIR_VERSION,
    RESOURCE_TYPES,
    ResourceType,
    SearchParam,
    audit,
)

SOFTWARE_VERSION = "0.1.0"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def _search_params(params: dict[str, SearchParam], canonical_base: str) -> list[dict[str, Any]]:
    return [
        {
            "name": param.name,
            "definition": conformance.definition_url(param, canonical_base),
            "type": param.type,
            "documentation": param.description,
        }
        for param in params.values()
    ]


def _includes(rtype: ResourceType) -> tuple[list[str], list[str]]:
    """`_include` values on this type, and `_revinclude` values that can point at it."""
    forward = [f"{rtype.name}:{p.name}" for p in rtype.params.values() if p.type == "reference"]
    backward = [
        f"{other.name}:{p.name}"
        for other in RESOURCE_TYPES.values()
        for p in other.params.values()
        if p.type == "reference" and rtype.name in p.targets
    ]
    return [*forward, "*"], [*backward, "*"]


def _resource(rtype: ResourceType, canonical_base: str) -> dict[str, Any]:
    params = {**COMMON_PARAMS, **rtype.params}
    search_include, search_revinclude = _includes(rtype)
    return {
        "type": rtype.name,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype.name}",
        "interaction": [{"code": code} for code in rtype.interactions],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "referencePolicy": ["literal", "enforced", "local"],
        "searchInclude": search_include,
        "searchRevInclude": search_revinclude,
        "searchParam": _search_params(params, canonical_base),
    }


def _read_only(kind: str, documentation: str, interactions: Any, versioning: str) -> dict[str, Any]:
    """A type this server defines the resources of itself: no writes of any kind."""
    return {
        "type": kind,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{kind}",
        "documentation": documentation,
        "interaction": [{"code": code} for code in interactions],
        "versioning": versioning,
        "readHistory": False,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
    }


def _definitions(canonical_base: str) -> dict[str, Any]:
    """The SearchParameters this server defines: read and search only."""
    return _read_only(
        conformance.RESOURCE_TYPE,
        "The search parameters this server defines itself (read-only).",
        conformance.INTERACTIONS,
        "no-version",
    ) | {"searchParam": _search_params(conformance.SEARCH.params, canonical_base)}


def _terminology(kind: str, canonical_base: str) -> dict[str, Any]:
    """CodeSystem or ValueSet: the project's vocabulary, read, searched and validated against."""
    operation = f"{terminology_artefacts.OPERATION}/{kind}-validate-code"
    return _read_only(
        kind,
        "The safeguarding vocabulary of this server (read-only), and $validate-code against it.",
        terminology_artefacts.INTERACTIONS,
        "versioned",
    ) | {
        "searchParam": _search_params(terminology_artefacts.SEARCH.params, canonical_base),
        "operation": [{"name": "validate-code", "definition": operation}],
    }


OPERATION_DEFINITION = _read_only(
    "OperationDefinition",
    "The operations this server defines itself (read-only).",
    ("read",),
    "no-version",
)


AUDIT_EVENT_DOCUMENTATION = (
    "The audit trail: one AuditEvent per request (IHE BALP), recorded by the server and never "
    "changed through the API. Read and searched by auditors only (role auditor and scope "
    "system/AuditEvent.rs). Results are newest first (_sort=-date; _sort=date for oldest "
    "first), paged by the next link; _count, _total and _summary=count are supported. "
    "patient.identifier=<system>|<value> finds the events about every Patient that holds or "
    "held the identifier; agent:identifier=<canonical base>/clients|<client id> those of a "
    "client."
)


def _audit_event(canonical_base: str) -> dict[str, Any]:
    """AuditEvent: read and search-type only, for auditors."""
    return _read_only(
        audit.AUDIT_EVENT, AUDIT_EVENT_DOCUMENTATION, audit.INTERACTIONS, "versioned"
    ) | {"searchParam": _search_params(audit.PARAMS, canonical_base)}


def _with_summary(resource: dict[str, Any], canonical_base: str) -> dict[str, Any]:
    """Patient's entry names the $safeguarding-summary operation, defined under our base;
    Subscription's, its topics and operations (`_subscriptions`)."""
    if resource["type"] == "Subscription":
        return _subscriptions(resource, canonical_base)
    if resource["type"] != "Patient":
        return resource
    definition = operation_definitions.summary_definition(canonical_base)["url"]
    summary = {"name": "safeguarding-summary", "definition": definition}
    return resource | {"operation": [summary, PATIENT_EXPORT]}


# Topic-based Subscriptions in R4 (https://hl7.org/fhir/uv/subscriptions-backport/STU1.1/).
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport"
TOPIC_CANONICAL = f"{BACKPORT}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"
SUBSCRIPTION_OPERATIONS = [
    {"name": name, "definition": f"{BACKPORT}/OperationDefinition/backport-subscription-{name}"}
    for name in ("status", "events")
]


def _subscriptions(resource: dict[str, Any], canonical_base: str) -> dict[str, Any]:
    """Subscription's entry: each topic's canonical URL (R4 has no SubscriptionTopic
    resource), the backport profile, and $status and $events."""
    terms = vocabulary(canonical_base)
    topics = [
        {"url": TOPIC_CANONICAL, "valueCanonical": topic_url(terms, topic.code)} for topic in TOPICS
    ]
    return resource | {
        "extension": topics,
        "supportedProfile": [PROFILE],
        "documentation": "Topic-based subscriptions (Subscriptions R5 Backport): criteria is a "
        "topic's canonical URL; channel rest-hook, with an endpoint on the server's allow-list, "
        "or none to hold events for $events. Only local-authority and system clients write "
        "them, and only their organisation sees them.",
        "operation": SUBSCRIPTION_OPERATIONS,
    }


# Bulk Data export (https://hl7.org/fhir/uv/bulkdata/STU2/export.html), defined by the IG.
BULK_DATA = "http://hl7.org/fhir/uv/bulkdata"
SYSTEM_EXPORT = {"name": "export", "definition": f"{BULK_DATA}/OperationDefinition/export"}
PATIENT_EXPORT = {
    "name": "export",
    "definition": f"{BULK_DATA}/OperationDefinition/patient-export",
}


def security(token_endpoint: str) -> dict[str, Any]:
    """SMART on FHIR: the service and where its token endpoint is.
    Spec: https://hl7.org/fhir/smart-app-launch/conformance.html#declaring-support-for-oauth2-endpoints"""
    return {
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [{"url": "token", "valueUri": token_endpoint}],
            }
        ],
        "cors": False,
        "service": [
            {
                "coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}],
                "text": "OAuth2 using SMART Backend Services (client credentials, private_key_jwt)",
            }
        ],
        "description": "Every request but GET /metadata needs a bearer access token from the "
        "token endpoint.",
    }


def capability_statement(
    base_url: str, published: str, canonical_base: str, token_endpoint: str
) -> dict[str, Any]:
    """What this server does, for `GET /metadata`; our own definitions live at `canonical_base`."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published,
        "publisher": "safeguard-fhir",
        "kind": "instance",
        "instantiates": [
            f"{BULK_DATA}/CapabilityStatement/bulk-data",
            f"{BACKPORT}/CapabilityStatement/backport-subscription-server-r4",
        ],
        "software": {"name": "safeguard-fhir", "version": SOFTWARE_VERSION},
        "implementation": {"description": (description or "").strip(), "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": security(token_endpoint),
                "resource": [
                    *(
                        _with_summary(_resource(rtype, canonical_base), canonical_base)
                        for rtype in RESOURCE_TYPES.values()
                    ),
                    _definitions(canonical_base),
                    OPERATION_DEFINITION,
                    *(_terminology(kind, canonical_base) for kind in terminology_artefacts.KINDS),
                    _audit_event(canonical_base),
                ],
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                ],
                "operation": [SYSTEM_EXPORT],
            }
        ],
    }
