"""What the OpenAPI document shows of the FHIR API's data: example resources, error texts,
schemas, headers and parameters (`app.openapi.document` assembles the document)."""

from typing import Any

from app.fhir.definitions import artefacts as terminology_artefacts
from app.fhir.definitions import search_parameters as conformance
from app.flags.codes import CARE_TEAM_ROLES, FLAG_TYPES, LEAD_PROFESSIONAL, SNOMED
from app.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM
from app.registry import COMMON_PARAMS, RESOURCE_TYPES, audit

JSON = dict[str, Any]
FHIR_JSON = "application/fhir+json"
TERMS = "http://terminology.hl7.org/CodeSystem"
PATIENT_ID, ORG_ID = "patient-1", "organization-1"
SERVER = "http://127.0.0.1:8000"
FLAG_TYPE_VALUE_SET = f"{SERVER}/fhir/ValueSet/{FLAG_TYPES}"
STRING: JSON = {"type": "string"}
OBJECTS: JSON = {"type": "array", "items": {"type": "object"}}


def _concept(system: str, code: str, display: str | None = None) -> JSON:
    return {
        "coding": [{"system": system, "code": code} | ({"display": display} if display else {})]
    }


EXAMPLES: dict[str, JSON] = {
    "Patient": {
        "resourceType": "Patient",
        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": "9449306753"}],
        "name": [{"family": "Smith", "given": ["Amy"]}],
        "gender": "female",
        "birthDate": "2016-04-02",
    },
    "Organization": {
        "resourceType": "Organization",
        "identifier": [{"system": ODS_SYSTEM, "value": "A81001"}],
        "name": "Riverside Surgery",
    },
    "Flag": {
        "resourceType": "Flag",
        "status": "active",
        "category": [_concept(f"{TERMS}/flag-category", "safety")],
        "code": _concept(SNOMED, "836881000000105", "Child is cause for safeguarding concern"),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "author": {"reference": f"Organization/{ORG_ID}"},
        "period": {"start": "2026-01-10"},
    },
    "Condition": {
        "resourceType": "Condition",
        "clinicalStatus": _concept(f"{TERMS}/condition-clinical", "active"),
        "verificationStatus": _concept(f"{TERMS}/condition-ver-status", "confirmed"),
        "code": _concept(SNOMED, "14760008", "Constipation"),
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    },
    "RelatedPerson": {
        "resourceType": "RelatedPerson",
        "patient": {"reference": f"Patient/{PATIENT_ID}"},
        "relationship": [_concept(f"{TERMS}/v3-RoleCode", "FTH")],
        "name": [{"family": "Smith", "given": ["John"]}],
    },
    "CareTeam": {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "period": {"start": "2026-02-01"},
        "participant": [
            {
                "role": [
                    _concept(
                        f"{SERVER}/fhir/CodeSystem/{CARE_TEAM_ROLES}",
                        LEAD_PROFESSIONAL,
                        "Lead professional",
                    )
                ],
                "member": {"reference": f"Organization/{ORG_ID}"},
            }
        ],
    },
}
UPDATE_IDS = {name: f"{name.lower()}-1" for name in EXAMPLES}

ERRORS = {
    400: "Malformed JSON, id, header or search parameter, or not a valid FHIR R4 structure",
    401: "No access token, or one that is invalid, expired or of a revoked client "
    "(WWW-Authenticate: Bearer)",
    403: "The token's scopes do not allow this interaction on this type (the scope needed is "
    "named), or the client's organisation may not write this (another's resource, an author "
    "other than itself, the directory of Organizations)",
    404: "Unknown resource type, or no such resource (or version), or one this client may not see",
    406: "Accept or _format asks for something other than FHIR JSON",
    409: "Conflict: see the route's own 409 for which kinds are retryable",
    410: "The resource was deleted",
    412: "Not retryable as it is: If-Match is not the current version (read the resource "
    "again, reapply the change and send it with the new ETag), or the condition matched "
    "several resources",
    413: "The body is over SAFEGUARD_MAX_BODY_BYTES (5 MiB by default)",
    415: "Content-Type is not application/fhir+json or application/json (for PATCH also "
    "application/json-patch+json)",
    422: "Breaks a rule: a required code binding, an NHS number's check digit or uniqueness "
    "among live Patients, or a reference to a resource that does not exist",
    429: "Over this client's request rate (SAFEGUARD_RATE_LIMIT_PER_MINUTE), or its export jobs in "
    "progress (SAFEGUARD_EXPORT_MAX_JOBS_PER_CLIENT); see Retry-After",
    500: "Internal error, logged under the request's X-Request-ID; a write may or may not have "
    "been applied: retry with the same X-Request-ID (a UUID) to learn which",
    503: "The database or the audit trail cannot be reached now (see Retry-After): nothing is "
    "answered, and nothing was applied, unless the text says the outcome is unknown (the "
    "connection broke during the commit): then retry with the same X-Request-ID to learn which",
}


def _object(text: str, required: list[str], properties: JSON) -> JSON:
    return {"type": "object", "description": text, "required": required, "properties": properties}


def component_ref(kind: str, name: str) -> JSON:
    return {"$ref": f"#/components/{kind}/{name}"}


SCHEMAS: dict[str, JSON] = {
    "Resource": _object(
        f"A FHIR R4 {', '.join(RESOURCE_TYPES)}; see http://hl7.org/fhir/R4/resourcelist.html",
        ["resourceType"],
        {"resourceType": {"enum": list(RESOURCE_TYPES)}, "id": STRING, "meta": {"type": "object"}},
    ),
    "OperationOutcome": _object(
        "http://hl7.org/fhir/R4/operationoutcome.html; issue.expression names the element",
        ["resourceType", "issue"],
        {"resourceType": {"const": "OperationOutcome"}, "issue": OBJECTS},
    ),
    "Bundle": _object(
        "A searchset or history Bundle (link holds self, and next if there are more), a "
        "transaction-response or batch-response, or the collection $safeguarding-summary gives",
        ["resourceType", "type"],
        {"resourceType": {"const": "Bundle"}}
        | {
            "type": {
                "enum": [
                    "searchset",
                    "history",
                    "transaction-response",
                    "batch-response",
                    "collection",
                ]
            }
        }
        | {"total": {"type": "integer"}, "link": OBJECTS, "entry": OBJECTS},
    ),
    "CapabilityStatement": _object(
        "http://hl7.org/fhir/R4/capabilitystatement.html", ["resourceType"], {}
    ),
    "SearchParameter": _object(
        "A search parameter this server defines; http://hl7.org/fhir/R4/searchparameter.html",
        ["resourceType", "url", "name", "status", "description", "code", "base", "type"],
        {"resourceType": {"const": "SearchParameter"}, "id": STRING, "url": STRING}
        | {"code": STRING, "base": {"type": "array", "items": STRING}, "type": STRING}
        | {"expression": STRING, "modifier": {"type": "array", "items": STRING}},
    ),
    **{
        kind: _object(
            f"The project's {kind}s (read-only): http://hl7.org/fhir/R4/{kind.lower()}.html",
            ["resourceType", "url", "status"],
            {"resourceType": {"const": kind}, "id": STRING, "url": STRING, "name": STRING}
            | {"version": STRING, "status": STRING, "meta": {"type": "object"}},
        )
        for kind in terminology_artefacts.KINDS
    },
    "OperationDefinition": _object(
        "An operation this server defines; http://hl7.org/fhir/R4/operationdefinition.html",
        ["resourceType", "url", "name", "status", "kind", "code"],
        {"resourceType": {"const": "OperationDefinition"}, "id": STRING, "url": STRING}
        | {"code": STRING, "resource": {"type": "array", "items": STRING}, "parameter": OBJECTS},
    ),
    "Parameters": _object(
        "$validate-code's in-parameters (POST), or its answer: result (valueBoolean), message "
        "(valueString) when false or when the display is wrong, display (valueString) when the "
        "code is found; http://hl7.org/fhir/R4/parameters.html",
        ["resourceType", "parameter"],
        {"resourceType": {"const": "Parameters"}, "parameter": OBJECTS},
    ),
    "Written": {
        "description": "The resource as stored (Prefer: return=representation, the default) or "
        "an OperationOutcome (return=OperationOutcome); no body for return=minimal",
        "anyOf": [
            component_ref("schemas", "Resource"),
            component_ref("schemas", "OperationOutcome"),
        ],
    },
    "JsonPatch": {
        "type": "array",
        "items": _object(
            "An RFC 6902 operation",
            ["op", "path"],
            {"op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]}}
            | {"path": STRING, "from": STRING, "value": {}},
        ),
    },
    "AuditEvent": _object(
        "A request's audit record (IHE BALP), as recorded: http://hl7.org/fhir/R4/auditevent.html",
        ["resourceType", "id", "type", "recorded", "agent", "source"],
        {"resourceType": {"const": "AuditEvent"}, "id": STRING, "recorded": STRING}
        | {"action": STRING, "outcome": STRING, "agent": OBJECTS, "entity": OBJECTS},
    ),
    "ExportManifest": _object(
        "A bulk export's manifest: https://hl7.org/fhir/uv/bulkdata/STU2/export.html"
        "#response---complete-status",
        ["transactionTime", "request", "requiresAccessToken", "output", "error"],
        {"transactionTime": STRING, "request": STRING, "requiresAccessToken": {"type": "boolean"}}
        | {"output": OBJECTS, "error": OBJECTS, "deleted": OBJECTS},
    ),
    "Ndjson": {"type": "string", "description": "One FHIR JSON resource per line"},
    "Health": _object(
        "Service health",
        ["status"],
        {"status": {"enum": ["ok", "unavailable"]}, "database": {"enum": ["sqlite", "postgresql"]}},
    ),
}


def _header(text: str, example: str | None = None) -> JSON:
    return {"description": text, "schema": STRING} | ({"example": example} if example else {})


HEADERS: dict[str, JSON] = {
    "ETag": _header("The version, as a weak ETag", 'W/"1"'),
    "Last-Modified": _header("When the version was written (RFC 7231 date)"),
    "Location": _header("The version's URL: {base}/{type}/{id}/_history/{version}"),
    "X-Request-ID": _header("The request's X-Request-ID, or one generated for it"),
    "Content-Location": _header("The export's status URL: {base}/$export-status/{job id}"),
    "X-Progress": _header("How far the export is", "1 of 3 parts done, 2000 resources written"),
    "Retry-After": _header("Seconds to wait before polling or sending again", "2"),
}


def _param(name: str, where: str, text: str, example: str | None = None) -> JSON:
    return {"name": name, "in": where, "required": where == "path"} | _header(text, example)


NHS_NUMBER = f"identifier={NHS_NUMBER_SYSTEM}|9449306753"
PARAMETERS: dict[str, JSON] = {
    "resource_type": _param("resource_type", "path", "A hosted resource type", "Flag")
    | {"schema": {"type": "string", "enum": list(RESOURCE_TYPES)}},
    "logical_id": _param("logical_id", "path", "Logical id, [A-Za-z0-9-.]{1,64}", PATIENT_ID),
    "version": _param("version", "path", "A version id (meta.versionId)", "1"),
    "If-Match": _param("If-Match", "header", "Apply only to this version, else 412", 'W/"1"'),
    "If-None-Exist": _param("If-None-Exist", "header", "Conditional create query", NHS_NUMBER),
    "Prefer-return": _param("Prefer", "header", "return=representation|minimal|OperationOutcome"),
    "Prefer-handling": _param(
        "Prefer", "header", "handling=strict: unknown or meaningless query parameters are 400"
    ),
    "X-Request-ID": _param(
        "X-Request-ID",
        "header",
        "Tracing id, echoed back. A UUID makes a write idempotent: "
        "sent again within SAFEGUARD_IDEMPOTENCY_WINDOW_SECONDS (24 h), it gets the first "
        "answer and writes nothing; with a different request it is 422.",
        "8f14e45f-ceea-467f-a8f6-3a2b5c7d9e01",
    ),
    "X-Correlation-ID": _param("X-Correlation-ID", "header", "Tracing id, echoed back"),
    "_format": _param("_format", "query", "json (overrides Accept); nothing else is produced"),
    "_pretty": _param("_pretty", "query", "true indents the JSON", "true"),
    "_count": _param("_count", "query", "Page size (default 20, at most 500)", "50"),
    "_cursor": _param("_cursor", "query", "Opaque; copied from a Bundle's next link"),
    "_since": _param(
        "_since",
        "query",
        "Versions stored at or after this instant; for the next poll, the first page's "
        "Bundle.meta.lastUpdated (README, Change feed)",
        "2026-01-01",
    ),
    "_type": _param("_type", "query", "System history: only these types", "Flag,Condition"),
    "_sort": _param("_sort", "query", "Sort keys, comma-separated; - for descending", "-date"),
    "_total": _param("_total", "query", "none | estimate | accurate"),
    "_summary": _param("_summary", "query", "true | text | data | count | false"),
    "_elements": _param("_elements", "query", "Top-level elements to return", "status,code"),
    "_include": _param(
        "_include", "query", "Type:param[:Target] or *; :iterate repeats it", "Flag:patient"
    ),
    "_revinclude": _param(
        "_revinclude", "query", "Type:param[:Target] referring to matches", "Flag:patient"
    ),
    "job_id": _param("job_id", "path", "An export job's id, from its status URL"),
    "file_name": _param("file_name", "path", "A file's name, from the manifest", "Flag.ndjson"),
    "Prefer-async": _param("Prefer", "header", "respond-async (required)", "respond-async")
    | {"required": True},
    "eventsSinceNumber": _param(
        "eventsSinceNumber", "query", "The first event number to return (included; default 1)", "1"
    ),
    "eventsUntilNumber": _param(
        "eventsUntilNumber", "query", "The last event number to return (included)"
    ),
    "events-content": _param(
        "content", "query", "empty, id-only or full-resource (default: the Subscription's own)"
    ),
    "_count-events": _param("_count", "query", "Events at most (a page)", "100"),
    "_outputFormat": _param(
        "_outputFormat", "query", "application/fhir+ndjson (default), application/ndjson, ndjson"
    ),
    "_since-export": _param(
        "_since", "query", "Only resources changed at or after this instant, and a deleted list"
    ),
    "_type-export": _param("_type", "query", "Resource types, comma-separated", "Patient,Flag"),
    "_typeFilter": _param(
        "_typeFilter",
        "query",
        "Type?search: only the resources of that type matching it (current values); "
        "several for one type are ORed",
        "Flag?status=active",
    ),
    "validate-url": _param(
        "url",
        "query",
        "Canonical URL of the value set (code system); optional on an instance",
        FLAG_TYPE_VALUE_SET,
    ),
    "validate-system": _param("system", "query", "System of the code (ValueSet only)", SNOMED),
    "validate-code": _param("code", "query", "The code to validate", "342191000000101"),
    "summary-identifier": _param(
        "identifier",
        "query",
        "The child's NHS number, system|value",
        f"{NHS_NUMBER_SYSTEM}|9449306753",
    ),
    "validate-display": _param(
        "display", "query", "Display to check: a different one is still valid, with a message"
    ),
}
SYNTAX = {
    "token": "code, system|code, |code or system|",
    "reference": "Type/id or id",
    "string": "starts-with, case- and accent-insensitive; :exact, :contains",
    "date": "[eq|ne|gt|lt|ge|le|sa|eb|ap]YYYY[-MM[-DD[Thh:mm:ss]]]",
    "quantity": "[prefix]number[|system|code]",
    "uri": "exact URI",
}


def search_parameters() -> dict[str, JSON]:
    """A query parameter for each search parameter in the registry, saying where it applies."""
    hosts = {name: (param, list(RESOURCE_TYPES)) for name, param in COMMON_PARAMS.items()}
    for rtype in RESOURCE_TYPES.values():
        for name, param in rtype.params.items():
            hosts.setdefault(name, (param, []))[1].append(rtype.name)
    return {
        name: _param(name, "query", f"{p.type} ({SYNTAX[p.type]}) on {', '.join(types)}")
        for name, (p, types) in hosts.items()
    }


def definition_parameters() -> dict[str, JSON]:
    """The query parameters of `GET /SearchParameter`, keyed apart from the hosted types' ones."""
    examples = {"_id": "Flag-status", "base": "Flag", "code": "status"}
    return {
        f"SearchParameter-{name}": _param(
            name, "query", f"{p.type} ({SYNTAX[p.type]}): {p.description}", examples.get(name)
        )
        for name, p in conformance.SEARCH.params.items()
    }


def terminology_parameters() -> dict[str, JSON]:
    """The query parameters of `GET /CodeSystem` and `GET /ValueSet`, keyed apart."""
    examples = {"_id": FLAG_TYPES, "url": FLAG_TYPE_VALUE_SET, "name": "Safeguarding"}
    return {
        f"Terminology-{name}": _param(
            name, "query", f"{p.type} ({SYNTAX[p.type]}): {p.description}", examples.get(name)
        )
        for name, p in terminology_artefacts.SEARCH.params.items()
    }


AUDIT_EXAMPLES = {
    "patient": f"Patient/{PATIENT_ID}",
    "agent": f"Organization/{ORG_ID}",
    "entity": "Flag/flag-1",
    "date": "ge2026-01-01",
    "action": "R",
    "outcome": "0",
    "subtype": "read",
}


def audit_parameters() -> dict[str, JSON]:
    """The query parameters of `GET /AuditEvent`, keyed apart from the hosted types' ones."""
    found = {
        f"AuditEvent-{name}": _param(
            name, "query", f"{p.type} ({SYNTAX[p.type]}): {p.description}", AUDIT_EXAMPLES[name]
        )
        for name, p in audit.PARAMS.items()
    }
    found["AuditEvent-patient.identifier"] = _param(
        "patient.identifier",
        "query",
        "The events about every Patient that holds or held this identifier, deleted ones too",
        f"{NHS_NUMBER_SYSTEM}|9449306753",
    )
    found["AuditEvent-agent:identifier"] = _param(
        "agent:identifier",
        "query",
        "The events of one client: <canonical base>/clients|<client id>",
        f"{SERVER}/fhir/clients|demo-gp",
    )
    return found
