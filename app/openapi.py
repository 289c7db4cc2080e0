"""The OpenAPI document for integration engineers: `python -m app.openapi` (`make openapi`).

FastAPI sees generic routes (`/fhir/{resource_type}/{logical_id}`) that read their own bodies, so
its schema says little. `document` writes each route's operation from OPERATIONS (by endpoint
name): what it does, its body, the hosted types, the headers honoured and the responses, every
error being an OperationOutcome. Pure: reads the app's routes, returns a new dict; no I/O.
"""

import copy
import inspect
import json
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import Route

from app.fhir import conformance, terminology_artefacts
from app.flags.codes import FLAG_TYPES
from app.registry import COMMON_PARAMS, RESOURCE_TYPES

JSON = dict[str, Any]
FHIR_JSON = "application/fhir+json"
TERMS = "http://terminology.hl7.org/CodeSystem"
SNOMED = "http://snomed.info/sct"
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
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9449306753"}],
        "name": [{"family": "Smith", "given": ["Amy"]}],
        "gender": "female",
        "birthDate": "2016-04-02",
    },
    "Organization": {
        "resourceType": "Organization",
        "identifier": [
            {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "A81001"}
        ],
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
}
UPDATE_IDS = {name: f"{name.lower()}-1" for name in EXAMPLES}

ERRORS = {
    400: "Malformed JSON, id, header or search parameter, or not a valid FHIR R4 structure",
    404: "Unknown resource type, or no such resource (or version)",
    406: "Accept or _format asks for something other than FHIR JSON",
    409: "Concurrent writes kept colliding; nothing was applied, send it again",
    410: "The resource was deleted",
    412: "If-Match is not the current version, or the condition matched several resources",
    413: "The body is over SAFEGUARD_MAX_BODY_BYTES (5 MiB by default)",
    415: "Content-Type is not application/fhir+json (application/json-patch+json for PATCH)",
    422: "Breaks a rule: a required code binding, an NHS number's check digit or uniqueness "
    "among live Patients, or a reference to a resource that does not exist",
    500: "Internal error; nothing was applied",
}


def _object(text: str, required: list[str], properties: JSON) -> JSON:
    return {"type": "object", "description": text, "required": required, "properties": properties}


def _ref(kind: str, name: str) -> JSON:
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
        "A searchset or history Bundle; link holds self, and next if there are more",
        ["resourceType", "type"],
        {"resourceType": {"const": "Bundle"}, "type": {"enum": ["searchset", "history"]}}
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
        "anyOf": [_ref("schemas", "Resource"), _ref("schemas", "OperationOutcome")],
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
}


def _param(name: str, where: str, text: str, example: str | None = None) -> JSON:
    return {"name": name, "in": where, "required": where == "path"} | _header(text, example)


NHS_NUMBER = "identifier=https://fhir.nhs.uk/Id/nhs-number|9449306753"
PARAMETERS: dict[str, JSON] = {
    "resource_type": _param("resource_type", "path", "A hosted resource type", "Flag")
    | {"schema": {"type": "string", "enum": list(RESOURCE_TYPES)}},
    "logical_id": _param("logical_id", "path", "Logical id, [A-Za-z0-9-.]{1,64}", PATIENT_ID),
    "version": _param("version", "path", "A version id (meta.versionId)", "1"),
    "If-Match": _param("If-Match", "header", "Apply only to this version, else 412", 'W/"1"'),
    "If-None-Exist": _param("If-None-Exist", "header", "Conditional create query", NHS_NUMBER),
    "Prefer-return": _param("Prefer", "header", "return=representation|minimal|OperationOutcome"),
    "Prefer-handling": _param("Prefer", "header", "handling=strict: unknown parameters are 400"),
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
    "_since": _param("_since", "query", "Versions written at or after this instant", "2026-01-01"),
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
        "https://fhir.nhs.uk/Id/nhs-number|9449306753",
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
        for name, p in conformance.SEARCH_PARAMS.items()
    }


def terminology_parameters() -> dict[str, JSON]:
    """The query parameters of `GET /CodeSystem` and `GET /ValueSet`, keyed apart."""
    examples = {"_id": FLAG_TYPES, "url": FLAG_TYPE_VALUE_SET, "name": "Safeguarding"}
    return {
        f"Terminology-{name}": _param(
            name, "query", f"{p.type} ({SYNTAX[p.type]}): {p.description}", examples.get(name)
        )
        for name, p in terminology_artefacts.SEARCH_PARAMS.items()
    }


@dataclass(frozen=True, slots=True)
class Op:
    """One route's documentation; path, format and tracing parameters and errors are added."""

    summary: str
    ok: tuple[int, ...]
    schema: str
    errors: tuple[int, ...] = ()
    parameters: tuple[str, ...] = ()
    body: str | None = None  # "create", "update" (examples carry the id), "patch", "parameters"


WRITE = (400, 409, 412, 413, 415, 422)
HISTORY = ("_since", "_count", "_cursor")
SEARCH = ("search", "_count", "_cursor", "_sort", "_total", "_summary", "_elements", "_include",
          "_revinclude", "Prefer-handling")  # fmt: skip
VERSIONED = ("If-Match", "Prefer-return")
TERMINOLOGY_SEARCH = ("terminology", "_count", "_cursor", "_summary", "_elements", "_total",
                      "Prefer-handling")  # fmt: skip
VALIDATE = ("validate-url", "validate-system", "validate-code", "validate-display")


def _terminology_operations() -> dict[str, Op]:
    """read, search and $validate-code (GET and POST, type and instance) on each type."""
    operations: dict[str, Op] = {}
    for kind in terminology_artefacts.KINDS:
        slug = "code_system" if kind == "CodeSystem" else "value_set"
        query = VALIDATE if kind == "ValueSet" else tuple(p for p in VALIDATE if "system" not in p)
        operations |= {
            f"read_{slug}": Op(f"Read a {kind}", (200,), kind),
            f"search_{slug}s": Op(f"Search the {kind}s", (200,), "Bundle", (400,),
                                  TERMINOLOGY_SEARCH),
        }  # fmt: skip
        for suffix, where in (("", "by url"), ("_instance", "by id")):
            name, text = (
                f"validate_{slug}_code{suffix}",
                f"Validate a code against a {kind} {where}",
            )
            operations[name] = Op(text, (200,), "Parameters", (400, 404), query)
            operations[f"{name}_post"] = Op(
                text, (200,), "Parameters", (400, 404, 413, 415), (), "parameters"
            )
    return operations


def _terminology_descriptions() -> dict[str, str]:
    """What the read, search and $validate-code routes of CodeSystem and ValueSet do."""
    descriptions = {}
    for kind, slug in (("CodeSystem", "code_system"), ("ValueSet", "value_set")):
        descriptions[f"read_{slug}"] = (
            f"A {kind} of the safeguarding vocabulary; its url is under "
            "SAFEGUARD_CANONICAL_BASE_URL. Read-only: other methods are 405."
        )
        descriptions[f"search_{slug}s"] = (
            f"The {kind}s published here, by url, name, status, version or _id; "
            "`_summary=count` gives the total alone. Unknown parameters are ignored and "
            "reported. Read-only: other methods are 405."
        )
        answer = (
            f"Whether a code is in the {kind}: a Parameters with result, message (when false, "
            "or when the display is not ours: still valid) and display (ours)."
        )
        for suffix in ("", "_instance"):
            name = f"validate_{slug}_code{suffix}"
            descriptions[name] = f"{answer} coding and codeableConcept need the POST form."
            descriptions[f"{name}_post"] = (
                f"{answer} The body is a Parameters resource: url, code, "
                + ("system, " if kind == "ValueSet" else "")
                + "display, coding (valueCoding) or codeableConcept (valueCodeableConcept)."
            )
    return descriptions


OPERATIONS: dict[str, Op] = {
    "metadata": Op("Capabilities", (200,), "CapabilityStatement"),
    "read_definition": Op("Read a SearchParameter", (200,), "SearchParameter"),
    "search_definitions": Op(
        "Search the SearchParameters", (200,), "Bundle", (400,), ("definitions", "Prefer-handling")
    ),
    "history_system": Op("History of every resource", (200,), "Bundle", (400,), HISTORY),
    "history_type": Op("History of a type", (200,), "Bundle", (400,), HISTORY),
    "history_instance": Op("History of a resource", (200,), "Bundle", (400,), HISTORY),
    "vread": Op("Read a version", (200,), "Resource", (410,)),
    "read": Op("Read", (200,), "Resource", (410,)),
    "search_type": Op("Search", (200,), "Bundle", (400,), SEARCH),
    "search_post": Op("Search by POST", (200,), "Bundle", (400, 413, 415), SEARCH, "form"),
    **{
        f"search_patient_{member.lower()}": Op(
            f"{member}s in a Patient's compartment", (200,), "Bundle", (400,), SEARCH
        )
        for member in ("Flag", "Condition", "RelatedPerson")
    },
    "create": Op("Create", (201, 200), "Written", WRITE, ("If-None-Exist", VERSIONED[1]), "create"),
    "update": Op("Update", (200, 201), "Written", WRITE, VERSIONED, "update"),
    "conditional_update": Op(
        "Conditional update", (200, 201), "Written", WRITE, ("search", *VERSIONED), "create"
    ),
    "patch": Op("Patch", (200,), "Written", (*WRITE, 410), VERSIONED, "patch"),
    "delete": Op("Delete", (200,), "OperationOutcome", (400, 409, 412), ("If-Match",)),
    "conditional_delete": Op(
        "Conditional delete", (200,), "OperationOutcome", (400, 409, 412), ("search",)
    ),
    "transaction": Op(
        "Transaction or batch", (200,), "Bundle", (*WRITE, 404, 410), ("Prefer-return",), "bundle"
    ),
    **_terminology_operations(),
    "safeguarding_summary": Op("Safeguarding summary of a child", (200,), "Bundle", (404, 410)),
    "safeguarding_summary_by_identifier": Op(
        "Safeguarding summary of a child, by NHS number",
        (200,),
        "Bundle",
        (400, 404, 412),
        ("summary-identifier",),
    ),
    "_ping": Op("Alive", (200,), "Health"),
    "_status": Op("Ready", (200, 503), "Health"),
}
SUMMARY = (
    "'Think Family': one collection Bundle, generated from live data on each call, with the "
    "child, its active flags and conditions, its RelatedPersons, the Patient records of its "
    "linked parents, siblings and half-siblings with their active safeguarding flags, and an "
    "OperationOutcome of warnings, each with a stable code (no-father-recorded, "
    "father-not-identified, elective-home-education, repeated-was-not-brought, "
    "sibling-subject-to-plan, multiple-services-same-condition, household-risk)."
)
DESCRIPTIONS = {
    "metadata": "The hosted types, their interactions and search parameters.",
    "read_definition": "A search parameter this server defines (R4 has no Flag status, category "
    "or code parameter); its url is the definition the CapabilityStatement names. Read-only: "
    "other methods are 405.",
    "search_definitions": "The search parameters this server defines, by url, code, base or "
    "_id; unknown parameters are ignored and reported. Read-only: other methods are 405.",
    "history_system": "Every version of every resource, newest first; deletions have no resource.",
    "history_type": "Every version of every resource of the type, newest first.",
    "history_instance": "Every version of the resource, newest first.",
    "vread": "One version, as stored; 410 if that version is a deletion.",
    "read": "The current version, as stored.",
    "search_type": "Live resources matching every parameter; the Bundle's next link pages on.",
    "create": "201 with a server-assigned id. With If-None-Exist: if one resource matches, 200 "
    "and that resource (nothing is created); several matches are 412.",
    "update": "200 with a new version, or 201 if there was none (update-as-create). The body's "
    "id must equal the URL's.",
    "conditional_update": "The query selects the resource: one match is updated (200), none "
    "means create (201), several matches are 412.",
    "patch": "A JSON Patch applied to the current version, then checked like an update; it may "
    "not change resourceType or id.",
    "delete": "Reads become 410; history keeps every version. Deleting an unknown or deleted "
    "resource is 200 too.",
    "conditional_delete": "Deletes the one resource the query matches; several matches are 412.",
    **_terminology_descriptions(),
    "safeguarding_summary": SUMMARY,
    "safeguarding_summary_by_identifier": SUMMARY,
    "transaction": "A transaction Bundle is all or nothing: its entries run (DELETE, POST, "
    "PUT/PATCH, GET) in one database transaction, `urn:uuid:` fullUrls and conditional "
    "references become ids, and the first failure is answered alone, naming its entry "
    "(`Bundle.entry[3].resource.subject`). A batch's entries run on their own; each failure is "
    "reported in its entry. A retry with the same X-Request-ID (a UUID) gets the first answer.",
}
VERSION_HEADERS = ("ETag", "Last-Modified", "Location")
SUCCESS_HEADERS = {
    "Written": VERSION_HEADERS,
    "Resource": VERSION_HEADERS[:2],
    "OperationOutcome": ("ETag",),
    **{kind: VERSION_HEADERS[:2] for kind in terminology_artefacts.KINDS},
}


def _response(text: str, schema: str, media: str, headers: tuple[str, ...] = ()) -> JSON:
    return {
        "description": text,
        "content": {media: {"schema": _ref("schemas", schema)}},
        "headers": {name: _ref("headers", name) for name in ("X-Request-ID", *headers)},
    }


def _body(kind: str) -> JSON:
    if kind == "form":
        form = {"schema": {"type": "object", "additionalProperties": {"type": "string"}},
                "example": {"patient": PATIENT_ID, "status": "active"}}  # fmt: skip
        return {"required": False, "content": {"application/x-www-form-urlencoded": form}}
    if kind == "bundle":
        patient = "urn:uuid:9a5f1c33-8e7e-4c1a-9d64-2b0c8f0e6a11"
        flag = EXAMPLES["Flag"] | {"subject": {"reference": patient}}
        flag.pop("author")
        entries = [
            {"fullUrl": patient, "resource": EXAMPLES["Patient"],
             "request": {"method": "POST", "url": "Patient",
                         "ifNoneExist": "identifier=https://fhir.nhs.uk/Id/nhs-number|9449306753"}},
            {"resource": flag, "request": {"method": "POST", "url": "Flag"}},
        ]  # fmt: skip
        example: JSON = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        bundle: JSON = {"schema": _ref("schemas", "Bundle"), "example": example}
        return {"required": True, "content": {FHIR_JSON: bundle}}
    if kind == "parameters":
        coding = {"system": SNOMED, "code": "342191000000101"}
        parameters = [{"name": "url", "valueUri": FLAG_TYPE_VALUE_SET},
                      {"name": "coding", "valueCoding": coding}]  # fmt: skip
        body: JSON = {"resourceType": "Parameters", "parameter": parameters}
        described: JSON = {"schema": _ref("schemas", "Parameters"), "example": body}
        return {"required": True, "content": {FHIR_JSON: described}}
    if kind == "patch":
        test = {"op": "test", "path": "/status", "value": "active"}
        case = [{"system": "https://example.org/children-services/case", "value": "CS-20417"}]
        add = {"op": "add", "path": "/identifier", "value": case}
        media = {"schema": _ref("schemas", "JsonPatch"), "example": [test, add]}
        return {"required": True, "content": {"application/json-patch+json": media}}
    examples = {
        name: {"value": resource | ({"id": UPDATE_IDS[name]} if kind == "update" else {})}
        for name, resource in EXAMPLES.items()
    }
    media = {"schema": _ref("schemas", "Resource"), "examples": examples}
    return {"required": True, "content": {FHIR_JSON: media}}


def _operation(path: str, name: str, found: JSON) -> JSON:
    """The operation of route `name` at `path`, from OPERATIONS and what FastAPI `found`."""
    op, fhir = OPERATIONS[name], path == "/fhir" or path.startswith("/fhir/")
    names = re.findall(r"{(\w+)}", path)
    for param in op.parameters:
        if param == "search":
            names.extend(search_parameters())
        elif param == "definitions":
            names.extend(definition_parameters())
        elif param == "terminology":
            names.extend(terminology_parameters())
        else:
            names.append(param)
    names.extend([*(["_format", "_pretty"] if fhir else []), "X-Request-ID", "X-Correlation-ID"])
    media, headers = FHIR_JSON if fhir else "application/json", SUCCESS_HEADERS.get(op.schema, ())
    responses = {
        str(s): _response(HTTPStatus(s).phrase, op.schema, media, headers if s < 300 else ())
        for s in op.ok
    }
    errors = {*op.errors, *([406, 500] if fhir else []), *([404] if "{" in path else [])}
    for status in sorted(errors):
        responses[str(status)] = _response(ERRORS[status], "OperationOutcome", FHIR_JSON)
    text = [DESCRIPTIONS.get(name), found.get("description")]
    operation: JSON = {
        "operationId": re.sub(r"_(\w)", lambda m: m.group(1).upper(), name.strip("_")),
        "summary": op.summary,
        "description": "\n\n".join(filter(None, text)),
        "tags": found.get("tags", []),
        "parameters": [_ref("parameters", param) for param in names],
        "responses": responses,
    }
    if op.body is not None:
        operation["requestBody"] = _body(op.body)
    return operation


INFO = """FHIR R4 (4.0.1) REST service for child-safeguarding information.

- Bodies are `application/fhir+json` (PATCH: `application/json-patch+json`); so are responses.
- Every error is an OperationOutcome whose `issue.expression` names the element at fault.
- Reads and writes return `ETag: W/"n"`; send `If-Match: W/"n"` to write without losing updates.
- Search and history Bundles are paged: follow the `next` link.
"""
TOP: JSON = {
    "servers": [{"url": SERVER, "description": "make run"}],
    "externalDocs": {"url": "http://hl7.org/fhir/R4/http.html"},
    "tags": [{"name": "FHIR", "description": "FHIR R4 RESTful API"}, {"name": "health"}],
}


def _documented_routes(app: FastAPI) -> list[tuple[str, str, list[str], JSON]]:
    """(path, name, methods, what FastAPI knows) of every route that belongs in the document."""
    generated = get_openapi(title=app.title, version=app.version, routes=app.routes)
    found = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            known = generated["paths"][route.path_format]
        elif isinstance(route, Route) and route.include_in_schema and route.path[:5] == "/fhir":
            doc = inspect.getdoc(route.endpoint) or ""
            known = {m.lower(): {"description": doc, "tags": ["FHIR"]} for m in route.methods or ()}
        else:
            continue
        methods = sorted(m.lower() for m in route.methods or () if m != "HEAD")
        found.append((route.path, route.name, methods, known))
    return found


def document(app: FastAPI) -> JSON:
    """The app's OpenAPI schema with every route's operation written from OPERATIONS."""
    paths: dict[str, JSON] = {}
    for path, name, methods, known in _documented_routes(app):
        if name not in OPERATIONS:
            raise KeyError(f"route {name} ({path}) is not in app.openapi.OPERATIONS")
        for method in methods:
            paths.setdefault(path, {})[method] = _operation(path, name, known[method])
    components = {"schemas": SCHEMAS, "headers": HEADERS}
    components["parameters"] = (
        PARAMETERS | search_parameters() | definition_parameters() | terminology_parameters()
    )
    info = {"title": app.title, "version": app.version, "description": INFO}
    if app.summary:
        info["summary"] = app.summary
    top = TOP | {"openapi": app.openapi_version, "info": info, "components": components}
    return copy.deepcopy(top | {"paths": paths})


def render(app: FastAPI) -> str:
    """The document as JSON text: keys sorted, indented by 2, with a trailing newline."""
    return json.dumps(document(app), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    from app.main import create_app
    from app.settings import Settings

    print(render(create_app(Settings())), end="")
