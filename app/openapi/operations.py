"""Each documented route's operation (by endpoint name), for `app.openapi.document`."""

from dataclasses import dataclass

from app.fhir.definitions import artefacts as terminology_artefacts
from app.registry import COMPARTMENT_MEMBERS


@dataclass(frozen=True, slots=True)
class Op:
    """One route's documentation; path, format and tracing parameters and errors are added."""

    summary: str
    ok: tuple[int, ...]
    schema: str
    errors: tuple[int, ...] = ()
    parameters: tuple[str, ...] = ()
    body: str | None = None  # "create", "update" (examples carry the id), "patch", "parameters"
    media: str | None = None  # of the success answer, when not FHIR JSON
    headers: tuple[str, ...] | None = None  # of the success answer, when not the schema's own


WRITE = (400, 409, 412, 413, 415, 422)
HISTORY = ("_since", "_count", "_cursor")
SEARCH = (
    "search",
    "_count",
    "_cursor",
    "_sort",
    "_total",
    "_summary",
    "_elements",
    "_include",
    "_revinclude",
    "Prefer-handling",
)
VERSIONED = ("If-Match", "Prefer-return", "Prefer-handling")
AUDIT_SEARCH = ("audit", "_count", "_cursor", "_sort", "_total", "_summary", "Prefer-handling")
TERMINOLOGY_SEARCH = (
    "terminology",
    "_count",
    "_cursor",
    "_summary",
    "_elements",
    "_total",
    "Prefer-handling",
)
EXPORT = ("Prefer-async", "_outputFormat", "_since-export", "_type-export", "_typeFilter")
EXPORT_STARTED = ("Content-Location",)
VALIDATE = ("validate-url", "validate-system", "validate-code", "validate-display")


def _terminology_operations() -> dict[str, Op]:
    """read, search and $validate-code (GET and POST, type and instance) on each type."""
    operations: dict[str, Op] = {}
    for kind in terminology_artefacts.KINDS:
        slug = "code_system" if kind == "CodeSystem" else "value_set"
        query = VALIDATE if kind == "ValueSet" else tuple(p for p in VALIDATE if "system" not in p)
        operations |= {
            f"read_{slug}": Op(f"Read a {kind}", (200,), kind),
            f"search_{slug}s": Op(
                f"Search the {kind}s", (200,), "Bundle", (400,), TERMINOLOGY_SEARCH
            ),
        }
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
    "history_system": Op(
        "History of every resource", (200,), "Bundle", (400,), (*HISTORY, "_type")
    ),
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
        for member in COMPARTMENT_MEMBERS
    },
    "create": Op(
        "Create", (201, 200), "Written", WRITE, ("If-None-Exist", *VERSIONED[1:]), "create"
    ),
    "update": Op("Update", (200, 201), "Written", WRITE, VERSIONED, "update"),
    "conditional_update": Op(
        "Conditional update", (200, 201), "Written", WRITE, ("search", *VERSIONED), "create"
    ),
    "patch": Op("Patch", (200,), "Written", (*WRITE, 410), VERSIONED, "patch"),
    "delete": Op(
        "Delete", (200,), "OperationOutcome", (400, 409, 412), ("If-Match", "Prefer-handling")
    ),
    "conditional_delete": Op(
        "Conditional delete", (200,), "OperationOutcome", (400, 409, 412), ("search",)
    ),
    "transaction": Op(
        "Transaction or batch", (200,), "Bundle", (*WRITE, 404, 410), ("Prefer-return",), "bundle"
    ),
    **_terminology_operations(),
    "read_operation_definition": Op("Read an OperationDefinition", (200,), "OperationDefinition"),
    "read_audit_event": Op("Read an AuditEvent", (200,), "AuditEvent"),
    "search_audit_events": Op("Search the audit trail", (200,), "Bundle", (400,), AUDIT_SEARCH),
    "search_audit_events_post": Op(
        "Search the audit trail by POST", (200,), "Bundle", (400, 413, 415), AUDIT_SEARCH, "audit"
    ),
    "safeguarding_summary": Op("Safeguarding summary of a child", (200,), "Bundle", (404, 410)),
    "safeguarding_summary_by_identifier": Op(
        "Safeguarding summary of a child, by NHS number",
        (200,),
        "Bundle",
        (400, 404, 412),
        ("summary-identifier",),
    ),
    **{
        name: Op(
            summary,
            (202,),
            "OperationOutcome",
            (400,),
            (*EXPORT, "_elements"),
            None,
            None,
            EXPORT_STARTED,
        )
        for name, summary in (
            ("export_system", "Bulk export of every type"),
            ("export_patients", "Bulk export of every Patient and its compartment"),
        )
    },
    "export_status": Op(
        "Status of a bulk export",
        (200, 202),
        "ExportManifest",
        (),
        (),
        None,
        "application/json",
        ("X-Progress", "Retry-After"),
    ),
    "export_cancel": Op("Cancel a bulk export", (202,), "OperationOutcome", (), (), None, None, ()),
    "export_file": Op(
        "Download a bulk export file", (200,), "Ndjson", (), (), None, "application/fhir+ndjson", ()
    ),
    "subscription_status": Op("Status of a Subscription", (200,), "Bundle", (404,)),
    "subscription_events": Op(
        "Events of a Subscription, by number",
        (200,),
        "Bundle",
        (400, 404),
        ("eventsSinceNumber", "eventsUntilNumber", "events-content", "_count-events"),
    ),
    "_ping": Op("Alive", (200,), "Health"),
    "_status": Op("Ready", (200, 503), "Health"),
}
SUMMARY = (
    "'Think Family': one collection Bundle, generated from live data on each call, with the "
    "child (or parent or carer), its active flags, conditions and CareTeams (its lead "
    "professional), its RelatedPersons, the Patient records of its linked parents, siblings and "
    "half-siblings and of the children whose records link it as parent or carer, with their "
    "active safeguarding flags, and an OperationOutcome of warnings with an XHTML narrative, "
    "each warning with a stable code (no-father-recorded, father-not-identified, "
    "elective-home-education, repeated-was-not-brought, sibling-subject-to-plan, "
    "multiple-services-same-condition, household-risk, child-subject-to-plan, "
    "child-on-register-elsewhere, no-lead-professional, summary-incomplete). With _format=html "
    "(or an Accept naming text/html before FHIR JSON): the same summary as a self-contained "
    "HTML page (text/html; no script, nothing loaded) with a family diagram as inline SVG."
)
AUDIT = (
    "The audit trail: one AuditEvent per request, recorded by the server and never changed "
    "through the API (create, update, patch, delete and history are 405 for every client). "
    "Auditors only: role auditor and scope system/AuditEvent.rs, 403 otherwise. Reading it is "
    "audited too."
)
AUDIT_RESULTS = (
    "Values of one parameter are ORed, parameters ANDed. Newest first (_sort=date: oldest "
    "first); the next link pages on. Unknown parameters are ignored and reported."
)
EXPORT_KICK_OFF = (
    "Bulk Data export (https://hl7.org/fhir/uv/bulkdata/STU2/export.html), asynchronous: 202 "
    "and Content-Location, the status URL to poll. A consistent snapshot as of its "
    "transactionTime, of what the client may read; a later export with _since=transactionTime "
    "holds exactly what changed after it. Parameters other than those listed are 400. "
    "429 when the client already has SAFEGUARD_EXPORT_MAX_JOBS_PER_CLIENT jobs in progress."
)
UNUSED = (
    "query parameters other than _format and _pretty are ignored, each with a warning issue "
    "in the OperationOutcome that Prefer: return=OperationOutcome returns, or refused (400, "
    "an error issue each) under Prefer: handling=strict."
)
DESCRIPTIONS = {
    "metadata": "The hosted types, their interactions and search parameters.",
    "read_definition": "A search parameter this server defines (R4 has no Flag status, category "
    "or code parameter); its url is the definition the CapabilityStatement names. Read-only: "
    "other methods are 405.",
    "search_definitions": "The search parameters this server defines, by url, code, base or "
    "_id; unknown parameters are ignored and reported. Read-only: other methods are 405.",
    "history_system": "Every version of every resource, newest first; deletions have no resource. "
    "Bundle.meta.lastUpdated is the point to poll from next (`_since`): every change before it "
    "is in this answer and its next pages, none after it.",
    "history_type": "Every version of every resource of the type, newest first.",
    "history_instance": "Every version of the resource, newest first.",
    "vread": "One version, as stored; 410 if that version is a deletion.",
    "read": "The current version, as stored.",
    "search_type": "Live resources matching every parameter; the Bundle's next link pages on.",
    "create": "201 with a server-assigned id. With If-None-Exist: if one resource matches, 200 "
    "and that resource (nothing is created); several matches are 412. A conditional create's "
    f"query goes in If-None-Exist, never the URL: {UNUSED}",
    "update": "200 with a new version, or 201 if there was none (update-as-create). The body's "
    f"id must equal the URL's. As on create, {UNUSED}",
    "conditional_update": "The query selects the resource: one match is updated (200), none "
    "means create (201), several matches are 412.",
    "patch": "A JSON Patch, or a FHIRPath Patch (Parameters of add, insert, delete, replace and "
    "move operations; paths of element names, [n], first(), last() and where(element = "
    "'value')), applied to the current version, then checked like an update; it may "
    "not change resourceType or id.",
    "delete": "Reads become 410; history keeps every version. Deleting an unknown or deleted "
    f"resource is 200 too. As on create, {UNUSED}",
    "conditional_delete": "Deletes the one resource the query matches; several matches are 412.",
    **_terminology_descriptions(),
    "read_operation_definition": "The definition of an operation this server defines "
    "(Patient-safeguarding-summary); its url is the one the CapabilityStatement names. "
    "Read-only: other methods are 405.",
    "safeguarding_summary": SUMMARY,
    "read_audit_event": f"{AUDIT} Read-only: other methods, and history, are 405.",
    "search_audit_events": f"{AUDIT} {AUDIT_RESULTS}",
    "search_audit_events_post": f"{AUDIT} {AUDIT_RESULTS} The form body holds the parameters.",
    "safeguarding_summary_by_identifier": SUMMARY,
    "export_system": EXPORT_KICK_OFF,
    "export_patients": f"{EXPORT_KICK_OFF} Only Patients and the resources in their compartments "
    f"({', '.join(COMPARTMENT_MEMBERS)}).",
    "export_status": "Only for the client that asked (404 for any other). While the job runs: "
    "202 with X-Progress and Retry-After; then 200 with the manifest (transactionTime, request, "
    "requiresAccessToken, output files with counts, error; with _since, deleted: NDJSON of "
    "transaction Bundles each deleting one resource). A failed job: 500 with an "
    "OperationOutcome saying why.",
    "export_cancel": "Stops the job and deletes it and its files (202); 404 for any other client.",
    "export_file": "One NDJSON file the manifest lists, one resource per line; only for the "
    "client that asked (404 for any other, and for a token of it that may not read the file's "
    "type). Files are deleted SAFEGUARD_EXPORT_RETENTION after the job ends.",
    "subscription_status": "Subscriptions R5 Backport $status: a searchset Bundle holding the "
    "Subscription's SubscriptionStatus (a Parameters resource: status, topic, "
    "events-since-subscription-start). Only its organisation and system clients see it.",
    "subscription_events": "Subscriptions R5 Backport $events: the Subscription's numbered "
    "events from eventsSinceNumber to eventsUntilNumber (both included, a page at most), as a "
    "history notification Bundle of type query-event. Page on with eventsSinceNumber = the "
    "last number + 1; every event comes once, in order. Kept SAFEGUARD_NOTIFY_EVENT_RETENTION.",
    "transaction": "A transaction Bundle is all or nothing: its entries run (DELETE, POST, "
    "PUT/PATCH, GET) in one database transaction, `urn:uuid:` fullUrls and conditional "
    "references become ids, and the first failure is answered alone, naming its entry "
    "(`Bundle.entry[3].resource.subject`). A batch's entries run on their own; each failure is "
    "reported in its entry. A retry with the same X-Request-ID (a UUID) gets the first answer.",
}
