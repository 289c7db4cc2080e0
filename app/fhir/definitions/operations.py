"""The OperationDefinition of `$safeguarding-summary`, served read-only at the canonical URL
the CapabilityStatement names. Spec: http://hl7.org/fhir/R4/operationdefinition.html"""

from functools import lru_cache
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import NotFound
from app.fhir import wire
from app.fhir.context import app_context
from app.fhir.outcomes import ReadOnly
from app.flags.summary_warnings import DISPLAYS
from app.nhs import NHS_NUMBER_SYSTEM

SUMMARY_ID = "Patient-safeguarding-summary"
WARNINGS = tuple(DISPLAYS)  # the codes of the summary's warnings


def summary_definition(canonical_base: str) -> dict[str, Any]:
    """The R4 OperationDefinition of Patient/$safeguarding-summary."""
    return {
        "resourceType": "OperationDefinition",
        "id": SUMMARY_ID,
        "url": f"{canonical_base}/OperationDefinition/{SUMMARY_ID}",
        "version": "0.1.0",
        "name": "SafeguardingSummary",
        "title": "Safeguarding summary of a child, or of a parent or carer ('Think Family')",
        "status": "active",
        "kind": "operation",
        "publisher": "safeguard-fhir",
        "description": (
            "One collection Bundle, generated from live data on each call: the child (or a parent "
            "or carer), its active flags, conditions and CareTeams, its RelatedPersons, the "
            "Patient records of its linked parents, siblings and half-siblings and of the "
            "children whose records link it as parent or carer, with their active safeguarding "
            "flags, and an OperationOutcome of warnings with an XHTML narrative, each warning "
            f"with a stable code ({', '.join(WARNINGS)}). With _format=html, the same summary "
            "as a self-contained HTML page with a family diagram."
        ),
        "affectsState": False,
        "code": "safeguarding-summary",
        "resource": ["Patient"],
        "system": False,
        "type": True,
        "instance": True,
        "parameter": [
            {
                "name": "identifier",
                "use": "in",
                "min": 0,
                "max": "1",
                "type": "string",
                "searchType": "token",
                "documentation": "At type level: the child's NHS number, "
                f"{NHS_NUMBER_SYSTEM}|N (one live Patient).",
            },
            {
                "name": "return",
                "use": "out",
                "min": 1,
                "max": "1",
                "type": "Bundle",
                "documentation": "A collection Bundle; its last entry is the OperationOutcome of "
                "warnings.",
            },
        ],
    }


@lru_cache(maxsize=8)
def _published(canonical_base: str) -> bytes:
    return orjson.dumps(summary_definition(canonical_base))


async def read_operation_definition(request: Request) -> Response:
    """read (http://hl7.org/fhir/R4/http.html#read) of an OperationDefinition defined here."""
    wire.check_accept(request)
    logical_id = request.path_params["logical_id"]
    if logical_id != SUMMARY_ID:
        raise NotFound.of(f"OperationDefinition/{logical_id[:64]} is not known")
    body = _published(app_context(request).settings.canonical_base)
    return wire.json_response(request, body)


_PATH = "/fhir/OperationDefinition/{logical_id}"
ROUTES = [
    Route(_PATH, read_operation_definition, methods=["GET"], name="read_operation_definition"),
    Route(
        _PATH,
        ReadOnly("OperationDefinition is read-only here"),
        name="read_only_operation_definition",
        include_in_schema=False,
    ),
]
