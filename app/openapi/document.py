"""The OpenAPI document for integration engineers, written by `safeguard openapi` (`make openapi`).

FastAPI sees generic routes (`/fhir/{resource_type}/{logical_id}`) that read their own bodies, so
its schema says little. `document` writes each route's operation from OPERATIONS (by endpoint
name): what it does, its body, the hosted types, the headers honoured and the responses, every
error being an OperationOutcome. Pure: reads the app's routes, returns a new dict; no I/O.
"""

import copy
import inspect
import json
import re
from http import HTTPStatus

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import Route

from app.fhir.definitions import artefacts as terminology_artefacts
from app.flags.codes import SNOMED
from app.nhs import NHS_NUMBER_SYSTEM
from app.openapi.conflicts import conflict_response
from app.openapi.operations import DESCRIPTIONS, OPERATIONS
from app.openapi.schemas import (
    ERRORS,
    EXAMPLES,
    FHIR_JSON,
    FLAG_TYPE_VALUE_SET,
    HEADERS,
    JSON,
    PARAMETERS,
    PATIENT_ID,
    SCHEMAS,
    SERVER,
    UPDATE_IDS,
    audit_parameters,
    component_ref,
    definition_parameters,
    search_parameters,
    terminology_parameters,
)
from app.openapi.scopes import declared_scopes, scope_text, scopes_of

VERSION_HEADERS = ("ETag", "Last-Modified", "Location")
SUCCESS_HEADERS = {
    "Written": VERSION_HEADERS,
    "Resource": VERSION_HEADERS[:2],
    "OperationOutcome": ("ETag",),
    "AuditEvent": VERSION_HEADERS[:2],
    **{kind: VERSION_HEADERS[:2] for kind in terminology_artefacts.KINDS},
}


def _response(text: str, schema: str, media: str, headers: tuple[str, ...] = ()) -> JSON:
    return {
        "description": text,
        "content": {media: {"schema": component_ref("schemas", schema)}},
        "headers": {name: component_ref("headers", name) for name in ("X-Request-ID", *headers)},
    }


def _body(kind: str) -> JSON:
    if kind in ("form", "audit"):
        example = {"patient": PATIENT_ID}
        example |= {"date": "ge2026-01-01"} if kind == "audit" else {"status": "active"}
        form = {
            "schema": {"type": "object", "additionalProperties": {"type": "string"}},
            "example": example,
        }
        return {"required": False, "content": {"application/x-www-form-urlencoded": form}}
    if kind == "bundle":
        return _described("Bundle", _bundle_example())
    if kind == "parameters":
        coding = {"system": SNOMED, "code": "342191000000101"}
        parameters = [
            {"name": "url", "valueUri": FLAG_TYPE_VALUE_SET},
            {"name": "coding", "valueCoding": coding},
        ]
        return _described("Parameters", {"resourceType": "Parameters", "parameter": parameters})
    if kind == "patch":
        test = {"op": "test", "path": "/status", "value": "active"}
        case = [{"system": "https://example.org/children-services/case", "value": "CS-20417"}]
        add = {"op": "add", "path": "/identifier", "value": case}
        media = {"schema": component_ref("schemas", "JsonPatch"), "example": [test, add]}
        fhirpath = _described("Parameters", _fhirpath_patch_example(case[0]))["content"]
        return {"required": True, "content": {"application/json-patch+json": media, **fhirpath}}
    examples = {
        name: {"value": resource | ({"id": UPDATE_IDS[name]} if kind == "update" else {})}
        for name, resource in EXAMPLES.items()
    }
    media = {"schema": component_ref("schemas", "Resource"), "examples": examples}
    return {"required": True, "content": {FHIR_JSON: media}}


def _fhirpath_patch_example(identifier: JSON) -> JSON:
    """The same change as the JSON Patch example, as a FHIRPath Patch (R4 fhirpatch.html)."""
    add = [
        {"name": "type", "valueCode": "add"},
        {"name": "path", "valueString": "Flag"},
        {"name": "name", "valueString": "identifier"},
        {"name": "value", "valueIdentifier": identifier},
    ]
    return {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": add}]}


def _described(schema: str, example: JSON) -> JSON:
    """A required FHIR JSON body of a schema, with an example."""
    described = {"schema": component_ref("schemas", schema), "example": example}
    return {"required": True, "content": {FHIR_JSON: described}}


def _bundle_example() -> JSON:
    """A transaction: a Patient created unless its NHS number is known, and a Flag on it."""
    patient = "urn:uuid:9a5f1c33-8e7e-4c1a-9d64-2b0c8f0e6a11"
    flag = EXAMPLES["Flag"] | {"subject": {"reference": patient}}
    flag.pop("author")
    if_none_exist = f"identifier={NHS_NUMBER_SYSTEM}|9449306753"
    create = {"method": "POST", "url": "Patient", "ifNoneExist": if_none_exist}
    entries = [
        {"fullUrl": patient, "resource": EXAMPLES["Patient"], "request": create},
        {"resource": flag, "request": {"method": "POST", "url": "Flag"}},
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


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
        elif param == "audit":
            names.extend(audit_parameters())
        else:
            names.append(param)
    names.extend([*(["_format", "_pretty"] if fhir else []), "X-Request-ID", "X-Correlation-ID"])
    media = op.media or (FHIR_JSON if fhir else "application/json")
    headers = op.headers if op.headers is not None else SUCCESS_HEADERS.get(op.schema, ())
    responses = {
        str(s): _response(HTTPStatus(s).phrase, op.schema, media, headers if s < 300 else ())
        for s in op.ok
    }
    guarded = fhir and path != "/fhir/metadata"
    errors = {*op.errors, *([406, 500] if fhir else []), *([404] if "{" in path else [])}
    errors |= {401, 403, 429, 503} if guarded else set()
    for status in sorted(errors):
        responses[str(status)] = _response(ERRORS[status], "OperationOutcome", FHIR_JSON)
    if 409 in errors:
        responses["409"] = conflict_response(name)
    text = [DESCRIPTIONS.get(name), found.get("description"), scope_text(name) if guarded else None]
    operation: JSON = {
        "operationId": re.sub(r"_(\w)", lambda m: m.group(1).upper(), name.strip("_")),
        "summary": op.summary,
        "description": "\n\n".join(filter(None, text)),
        "tags": found.get("tags", []),
        "parameters": [component_ref("parameters", param) for param in names],
        "responses": responses,
    }
    if op.body is not None:
        operation["requestBody"] = _body(op.body)
    if guarded:
        operation["security"] = [{"smartBackendServices": list(scopes_of(name))}, {"bearer": []}]
    return operation


INFO = """FHIR R4 (4.0.1) REST service for child-safeguarding information.

- Bodies are `application/fhir+json` (`application/json` is accepted as the same); so are
  responses. PATCH takes JSON Patch (`application/json-patch+json`) or FHIRPath Patch (a
  Parameters resource in FHIR JSON).
- Under `Prefer: handling=strict` an unknown or meaningless query parameter is 400; otherwise
  it is ignored with a warning issue.
- Every error is an OperationOutcome whose `issue.expression` names the element at fault.
- Reads and writes return `ETag: W/"n"`; send `If-Match: W/"n"` to write without losing updates.
- Search and history Bundles are paged: follow the `next` link.
- Every `/fhir` request but `metadata` needs `Authorization: Bearer <access token>`, obtained
  with SMART Backend Services (a client-credentials grant with a signed JWT assertion) from
  `/auth/token`; discovery at `/fhir/.well-known/smart-configuration`, the server's token keys
  at `/auth/jwks`. What a client may not see answers as if it did not exist.
"""
SECURITY: JSON = {
    "smartBackendServices": {
        "type": "oauth2",
        "description": "SMART Backend Services: POST grant_type=client_credentials, "
        "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer and "
        "client_assertion (RS384 or ES384, iss = sub = client id, aud = the token URL).",
        "flows": {
            "clientCredentials": {
                "tokenUrl": SERVER.rsplit("/fhir", 1)[0] + "/auth/token",
                "scopes": declared_scopes(),
            }
        },
    },
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}
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
            raise KeyError(f"route {name} ({path}) is not in app.openapi.operations.OPERATIONS")
        for method in methods:
            paths.setdefault(path, {})[method] = _operation(path, name, known[method])
    components = {"schemas": SCHEMAS, "headers": HEADERS, "securitySchemes": SECURITY}
    components["parameters"] = (
        PARAMETERS
        | search_parameters()
        | definition_parameters()
        | terminology_parameters()
        | audit_parameters()
    )
    info = {"title": app.title, "version": app.version, "description": INFO}
    if app.summary:
        info["summary"] = app.summary
    top = TOP | {"openapi": app.openapi_version, "info": info, "components": components}
    return copy.deepcopy(top | {"paths": paths})


def render(app: FastAPI) -> str:
    """The document as JSON text: keys sorted, indented by 2, with a trailing newline."""
    return json.dumps(document(app), indent=2, sort_keys=True) + "\n"
