"""A request's AuditEvent, shaped after IHE Basic Audit Log Patterns (BALP) for RESTful
activities, and what it names for search, derived from the event itself (so `verify` can
check the stored search columns against the sealed body).

Spec: http://hl7.org/fhir/R4/auditevent.html, https://profiles.ihe.net/ITI/BALP/
"""

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.access import Caller
from app.access.trail import Trail
from app.clock import instant
from app.ids import new_logical_id

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
ENTITY_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
BALP_ENTITY = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
SERVER = "safeguard-fhir"

# Displays only where a reader needs them (the event type); the other codes are standard
# and each record stays small (one is written per request).
REST = {"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"}
LOGIN_TYPE = {"system": DCM, "code": "110114", "display": "User Authentication"}
LOGIN = {"system": DCM, "code": "110122", "display": "Login"}
CLIENT_ROLE = {"coding": [{"system": DCM, "code": "110153"}]}
SERVER_ROLE = {"coding": [{"system": DCM, "code": "110152"}]}
ORGANISATION_ROLE = {"coding": [{"system": PARTICIPATION, "code": "RESP"}]}
PERSON = {"system": ENTITY_TYPE, "code": "1"}
SYSTEM_OBJECT = {"system": ENTITY_TYPE, "code": "2"}
PATIENT_ROLE = {"system": ENTITY_ROLE, "code": "1"}
RESOURCE_ROLE = {"system": ENTITY_ROLE, "code": "4"}
QUERY_ROLE = {"system": ENTITY_ROLE, "code": "24"}
REQUEST_ID = {"system": BALP_ENTITY, "code": "XrequestId"}
APPLICATION_SERVER = [{"system": SOURCE_TYPE, "code": "4"}]
DESCRIPTION_LIMIT = 500  # characters of a failure's description kept


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One AuditEvent as stored: its canonical JSON, its search columns, and what it names
    (`links_of`, as JSON), which the sealer links when it seals the record."""

    id: str
    recorded: int
    client_id: str | None
    client_org: str | None
    subtype: str
    action: str
    outcome: str
    body: bytes
    names: str


@dataclass(frozen=True, slots=True)
class Server:
    """This server, as audit records name it: its FHIR base and the clients' identifier
    system; the parts of every record that name it are built once."""

    base: str
    clients_system: str
    source: dict[str, Any] = field(init=False)
    agent: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        source = {"site": self.base, "observer": {"display": SERVER}, "type": APPLICATION_SERVER}
        network = {"address": self.base, "type": "5"}
        agent = {"type": SERVER_ROLE, "who": {"display": SERVER}, "requestor": False}
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "agent", agent | {"network": network})


def outcome_code(status: int) -> str:
    """AuditEvent.outcome for an HTTP status: 0 success, 4 minor (4xx), 8 serious (5xx)."""
    return "0" if status < 400 else "4" if status < 500 else "8"


def audit_row(
    trail: Trail,
    caller: Caller | None,
    server: Server,
    *,
    status: int,
    description: str | None,
    recorded: int,
) -> AuditRow:
    """The AuditEvent of a request that ended with `status`, ready to store: its bytes as
    served (the canonical form the chain seals), and its search columns, taken from the
    trail (`search_columns` derives the same from the bytes), and what it names."""
    event = audit_event(
        trail, caller, server, status=status, description=description, recorded=recorded
    )
    client_id = caller.subject if caller is not None else None
    organisation = caller.organisation if caller is not None else None
    return AuditRow(
        event["id"],
        recorded,
        client_id,
        organisation or None,
        event["subtype"][0]["code"],
        trail.action,
        event["outcome"],
        orjson.dumps(event),
        orjson.dumps(links_of(event)).decode(),
    )


def audit_event(
    trail: Trail,
    caller: Caller | None,
    server: Server,
    *,
    status: int,
    description: str | None,
    recorded: int,
) -> dict[str, Any]:
    """The AuditEvent resource (http://hl7.org/fhir/R4/auditevent.html)."""
    when = instant(recorded)
    outcome = outcome_code(status)
    login = trail.subtype == "login"
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": new_logical_id(),
        "meta": {"versionId": "1", "lastUpdated": when},
        "type": LOGIN_TYPE if login else REST,
        "subtype": [LOGIN if login else {"system": INTERACTION, "code": trail.subtype}],
        "action": trail.action,
        "recorded": when,
        "outcome": outcome,
        "agent": _agents(trail, caller, server),
        "source": server.source,
        "entity": _entities(trail),
    }
    if outcome != "0":
        text = f"HTTP {status}" + (f": {description}" if description else "")
        event["outcomeDesc"] = text[:DESCRIPTION_LIMIT]
    return event


def _agents(trail: Trail, caller: Caller | None, server: Server) -> list[dict[str, Any]]:
    """The client (the requester, with its network address), its Organization, this server."""
    client: dict[str, Any] = {"type": CLIENT_ROLE}
    if caller is not None:
        identifier = {"system": server.clients_system, "value": caller.subject}
        client["who"] = {"identifier": identifier}
    elif trail.claimed_client is not None:
        client["altId"] = trail.claimed_client  # asserted, never authenticated
    client["requestor"] = True
    if trail.address:
        client["network"] = {"address": trail.address, "type": "2"}
    agents = [client]
    if caller is not None and caller.organisation:
        organisation = {"reference": f"Organization/{caller.organisation}"}
        agents.append({"type": ORGANISATION_ROLE, "who": organisation, "requestor": False})
    agents.append(server.agent)
    return agents


def _entities(trail: Trail) -> list[dict[str, Any]]:
    """The request id, the query, each Patient concerned, then each resource read or written."""
    entities: list[dict[str, Any]] = [
        {"what": {"identifier": {"value": trail.request_id}}, "type": REQUEST_ID}
    ]
    if trail.query is not None:
        query = base64.b64encode(trail.query.encode()).decode()
        entities.append({"type": SYSTEM_OBJECT, "role": QUERY_ROLE, "query": query})
    for patient_id in trail.patients:
        what = {"reference": f"Patient/{patient_id}"}
        entities.append({"what": what, "type": PERSON, "role": PATIENT_ROLE})
    for reference in trail.entities:
        entities.append(
            {"what": {"reference": reference}, "type": SYSTEM_OBJECT, "role": RESOURCE_ROLE}
        )
    return entities


def search_columns(event: dict[str, Any]) -> tuple[str | None, str | None, str, str, str]:
    """(client id, client organisation, subtype, action, outcome) of an AuditEvent."""
    client_id = client_org = None
    for agent in event.get("agent", []):
        who = agent.get("who", {})
        if agent.get("type") == CLIENT_ROLE and "identifier" in who:
            client_id = who["identifier"]["value"]
        elif agent.get("type") == ORGANISATION_ROLE:
            client_org = who["reference"].split("/", 1)[1]
    subtype = event["subtype"][0]["code"]
    return client_id, client_org, subtype, event["action"], event["outcome"]


def links_of(event: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """What an AuditEvent names, for search, each once: ("patient", "Patient/x") for each
    Patient concerned, ("entity", "Type/id") for each other resource (versionless). A
    Patient is an entity too: `entity=` searches both kinds. The client and its
    Organization are columns of the record itself."""
    patients = {
        entity["what"]["reference"]: None
        for entity in event.get("entity", [])
        if entity.get("role") == PATIENT_ROLE
    }
    links: dict[tuple[str, str], None] = {("patient", p): None for p in patients}
    for entity in event.get("entity", []):
        reference = entity.get("what", {}).get("reference")
        if reference is not None and entity.get("role") != PATIENT_ROLE:
            versionless = "/".join(reference.split("/")[:2])
            if versionless not in patients:
                links["entity", versionless] = None
    return tuple(links)
