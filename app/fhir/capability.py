"""The CapabilityStatement, generated from the same registry the routes and indexer use.

Spec: http://hl7.org/fhir/R4/capabilitystatement.html
"""

from typing import Any

from app import __doc__ as description
from app.registry import COMMON_PARAMS, FHIR_VERSION, RESOURCE_TYPES, ResourceType

SOFTWARE_VERSION = "0.1.0"


def _resource(rtype: ResourceType) -> dict[str, Any]:
    params = {**COMMON_PARAMS, **rtype.params}
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
        "searchParam": [
            {
                "name": param.name,
                "definition": param.definition,
                "type": param.type,
                "documentation": param.description,
            }
            for param in params.values()
        ],
    }


def capability_statement(base_url: str, published: str) -> dict[str, Any]:
    """What this server does, for `GET /metadata`."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": published,
        "publisher": "safeguard-fhir",
        "kind": "instance",
        "software": {"name": "safeguard-fhir", "version": SOFTWARE_VERSION},
        "implementation": {"description": (description or "").strip(), "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "resource": [_resource(rtype) for rtype in RESOURCE_TYPES.values()],
                "interaction": [{"code": "history-system"}],
            }
        ],
    }
