"""Transaction and batch Bundle entries: parsed and checked (the caller's scopes first,
then the resource) before any is processed.

Spec: http://hl7.org/fhir/R4/http.html#transaction, http://hl7.org/fhir/R4/bundle.html
"""

import base64
import binascii
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from app.access import Caller
from app.errors import FhirError, Invalid, MethodNotAllowed, PayloadTooLarge
from app.fhir import permissions, wire
from app.fhir.bundles.references import Slot, slots_of
from app.fhir.resources import validate_structure
from app.registry import RESOURCE_TYPES
from app.registry.audit import AUDIT_EVENT

KINDS = {"transaction": "transaction-response", "batch": "batch-response"}
# The order a transaction's entries are processed in (http.html#trules); GET and HEAD last.
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
JSON_PATCH = "application/json-patch+json"
WRITES: dict[str, permissions.Interaction] = {
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


@dataclass(slots=True)
class Entry:
    """One entry's request, parsed: what it acts on and with what."""

    index: int
    method: str
    resource_type: str
    logical_id: str | None = None  # Type/id
    version: int | None = None  # Type/id/_history/n
    query: str | None = None  # Type?criteria: conditional update or delete, or a search
    resource: dict[str, Any] | None = None
    patch: Any = None  # a JSON Patch document (a list) or a FHIRPath Patch (Parameters)
    full_url: str | None = None
    if_none_exist: str | None = None
    if_match: int | None = None
    slots: list[Slot] = field(default_factory=list)  # the resource's strings a Bundle rewrites

    @property
    def where(self) -> str:
        """The FHIRPath of this entry in the Bundle."""
        return f"Bundle.entry[{self.index}]"

    @property
    def interaction(self) -> permissions.Interaction:
        """What the entry asks for (http://hl7.org/fhir/R4/valueset-type-restful-interaction.html)."""
        if self.method in WRITES:
            return WRITES[self.method]
        if self.logical_id is None:
            return "search-type"
        return "read" if self.version is None else "vread"


def entries_of(body: Any, max_entries: int) -> tuple[str, list[Any]]:
    """The Bundle's type and raw entries; 400 unless a transaction or batch, 413 if too many."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise Invalid.of("the body must be a Bundle of type transaction or batch", "resourceType")
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in KINDS:
        raise Invalid.of(f"Bundle.type must be transaction or batch, not {kind!r}", "Bundle.type")
    entries = body.get("entry", [])
    if not isinstance(entries, list):
        raise Invalid.of("Bundle.entry must be a list", "Bundle.entry")
    if len(entries) > max_entries:
        raise PayloadTooLarge.of(
            f"a Bundle may hold at most {max_entries} entries, not {len(entries)}", "Bundle.entry"
        )
    return kind, entries


def parse_entry(raw: Any, index: int, base: str, caller: Caller) -> Entry:
    """One entry the caller's scopes allow, its resource structurally valid; errors name the
    entry's elements (a refusal, the entry)."""
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("request"), dict):
        raise Invalid.of("each entry needs a request", f"{where}.request")
    request = raw["request"]
    method = request.get("method")
    if not isinstance(method, str) or method not in ORDER:
        raise Invalid.of(f"request.method {method!r} is not supported", f"{where}.request.method")
    entry = _target(index, method, request.get("url"), base)
    permissions.require(caller, entry.resource_type, entry.interaction, where)
    entry.full_url = raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None
    entry.if_none_exist = _text(request, "ifNoneExist", where)
    entry.if_match = wire.etag_version(_text(request, "ifMatch", where), f"{where}.request.ifMatch")
    if method in ("POST", "PUT"):
        entry.resource = _resource(raw.get("resource"), entry, where)
    elif method == "PATCH":
        entry.patch = _json_patch(raw.get("resource"), where)
    return entry


def _text(request: dict[str, Any], key: str, where: str) -> str | None:
    value = request.get(key)
    if value is not None and not isinstance(value, str):
        raise Invalid.of(f"request.{key} must be a string", f"{where}.request.{key}")
    return value


def _target(index: int, method: str, url: Any, base: str) -> Entry:
    """What request.url names: Type, Type/id, Type/id/_history/n or Type?criteria."""
    expression = f"Bundle.entry[{index}].request.url"
    if not isinstance(url, str) or not url:
        raise Invalid.of("request.url is required", expression)
    path, _, query = url.removeprefix(base.rstrip("/") + "/").partition("?")
    parts = path.strip("/").split("/")
    if parts[0] == AUDIT_EVENT:
        raise _audit_entry(index, method)
    if parts[0] not in RESOURCE_TYPES:
        raise Invalid.of(f"request.url {url!r} names no resource type hosted here", expression)
    entry = Entry(index, method, parts[0], query=query or None)
    reading = method in ("GET", "HEAD")
    if len(parts) == 1 and (reading or method == "POST" or (query and method != "PATCH")):
        if method == "POST" and query:
            raise Invalid.of("a create's URL takes no criteria (use ifNoneExist)", expression)
        return entry
    if len(parts) == 2 and not query and method != "POST":
        entry.logical_id = wire.require_id(parts[1], expression)
        return entry
    if len(parts) == 4 and parts[2] == "_history" and reading and not query:
        entry.logical_id = wire.require_id(parts[1], expression)
        entry.version = wire.version_number(parts[3])
        if entry.version is not None:
            return entry
    raise Invalid.of(f"{method} {url} is not an interaction this server offers", expression)


def _audit_entry(index: int, method: str) -> FhirError:
    """An entry on AuditEvent: a write is 405, as it is alone (before any scope is looked at);
    a read or search is sent on its own, to the auditors' routes (`app.audit`)."""
    where = f"Bundle.entry[{index}].request"
    if method in WRITES:
        text = f"{method} is not allowed: {AUDIT_EVENT}s are never changed through the API"
        return MethodNotAllowed.of(text, where)
    text = f"read and search {AUDIT_EVENT}s with a request of their own, not in a Bundle"
    return Invalid.of(text, where, code="not-supported")


def _resource(found: Any, entry: Entry, where: str) -> dict[str, Any]:
    """The entry's resource, of the URL's type and structurally valid."""
    if not isinstance(found, dict):
        raise Invalid.of(f"a {entry.method} entry needs a resource", f"{where}.resource")
    if found.get("resourceType") != entry.resource_type:
        raise Invalid.of(
            f"the resource is not a {entry.resource_type}", f"{where}.resource.resourceType"
        )
    resource: dict[str, Any] = {**found}
    if entry.method == "POST":
        resource.pop("id", None)  # the server assigns ids
    elif entry.logical_id is not None and resource.setdefault("id", entry.logical_id) != (
        entry.logical_id
    ):
        raise Invalid.of("the resource id must equal the id in request.url", f"{where}.resource.id")
    elif "id" in resource:  # a conditional update's body may name the id to create
        wire.require_id(str(resource["id"]), f"{where}.resource.id")
    entry.slots = slots_of(resource, f"{where}.resource")  # bounds the depth, too
    try:
        validate_structure(entry.resource_type, resource)
    except FhirError as error:
        raise in_entry(error, entry.index, entry.resource_type) from None
    return resource


def _json_patch(resource: Any, where: str) -> Any:
    """The patch a PATCH entry carries: a FHIRPath Patch's Parameters as it is, or a JSON
    Patch document from its Binary (http://hl7.org/fhir/R4/http.html#patch)."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Parameters":
        return resource
    if not (
        isinstance(resource, dict)
        and resource.get("resourceType") == "Binary"
        and resource.get("contentType") == JSON_PATCH
        and isinstance(resource.get("data"), str)
    ):
        raise Invalid.of(
            f"a PATCH entry's resource must be a Parameters (FHIRPath Patch) or a Binary of "
            f"{JSON_PATCH}",
            f"{where}.resource",
        )
    try:
        return orjson.loads(base64.b64decode(resource["data"], validate=True))
    except (binascii.Error, ValueError):
        raise Invalid.of("Binary.data is not base64 JSON", f"{where}.resource.data") from None


def identity_clashes(entries: list[Entry]) -> None:
    """400 if two entries act on the same resource or share a fullUrl (transactions only)."""
    seen: dict[tuple[str, ...], int] = {}
    for entry in entries:
        keys: list[tuple[str, ...]] = []
        if entry.full_url is not None:
            keys.append(("fullUrl", entry.full_url))
        if entry.if_none_exist is not None:
            keys.append(("ifNoneExist", entry.resource_type, entry.if_none_exist))
        if entry.method in ("PUT", "PATCH", "DELETE"):
            if entry.logical_id is not None:
                keys.append(("id", entry.resource_type, entry.logical_id))
            else:
                keys.append(("query", entry.resource_type, entry.query or ""))
        for key in keys:
            if key in seen:
                raise Invalid.of(
                    f"entries {seen[key]} and {entry.index} act on the same resource "
                    f"({'/'.join(key[1:])})",
                    entry.where,
                    code="duplicate",
                )
            seen[key] = entry.index


def in_entry(error: FhirError, index: int, resource_type: str | None) -> FhirError:
    """The error with each issue's expression placed inside entry `index` of the Bundle."""
    where = f"Bundle.entry[{index}]"

    def place(expression: str) -> str:
        if expression.startswith("Bundle."):
            return expression
        if resource_type and expression.split(".", 1)[0].split("[", 1)[0] == resource_type:
            return f"{where}.resource{expression[len(resource_type) :]}"
        if expression == "If-Match":
            return f"{where}.request.ifMatch"
        return f"{where}.request"

    issues = [
        replace(issue, expression=tuple(place(e) for e in issue.expression) or (where,))
        for issue in error.issues
    ]
    return type(error)(issues)
