"""Factories: keyword-only functions returning valid resources (as JSON dicts)."""

from typing import Any

from app.flags.codes import Vocabulary

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
SNOMED = "http://snomed.info/sct"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
LOCAL_FLAGS = "https://example.org/flag-codes"  # a clinical flag code system of a test EHR


def nhs_number(serial: int) -> str:
    """A valid NHS number in the 999 test range for a serial (skips serials with check 10)."""
    while True:
        stem = f"999{serial:06d}"
        total = sum(int(d) * w for d, w in zip(stem, range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check != 10:
            return f"{stem}{check}"
        serial += 1


def patient(
    *,
    nhs: str | None = None,
    family: str = "Smith",
    given: str = "Amy",
    gender: str = "female",
    birth_date: str = "2015-03-01",
) -> dict[str, Any]:
    """A child Patient."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given]}],
        "gender": gender,
        "birthDate": birth_date,
    }
    if nhs is not None:
        resource["identifier"] = [{"system": NHS, "value": nhs}]
    return resource


def organization(*, ods: str = "A81001", name: str = "Riverside Surgery") -> dict[str, Any]:
    """A GP practice or other organisation."""
    return {
        "resourceType": "Organization",
        "identifier": [{"system": ODS, "value": ods}],
        "name": name,
    }


def flag(
    *,
    subject: str,
    author: str | None = None,
    status: str = "active",
    code: str = "wheelchair-user",
    display: str = "Uses a wheelchair",
    system: str = LOCAL_FLAGS,
    category: str = "clinical",
    identifier: str | None = None,
) -> dict[str, Any]:
    """A Flag on a subject: a clinical one by default, outside the safeguarding rules (those
    apply when the category is safety or the code a safeguarding one: `safeguarding_flag`)."""
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "status": status,
        "category": [{"coding": [{"system": FLAG_CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": system, "code": code, "display": display}]},
        "subject": {"reference": subject},
        "period": {"start": "2026-01-10"},
    }
    if author is not None:
        resource["author"] = {"reference": author}
    if identifier is not None:
        resource["identifier"] = [{"system": "https://example.org/flags", "value": identifier}]
    return resource


def safeguarding_flag(
    *,
    subject: str,
    author: str,
    status: str = "active",
    code: str = "342191000000101",
    display: str = "Subject to child protection plan",
    system: str = SNOMED,
    start: str = "2026-01-10",
    end: str | None = None,
    removal: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A safeguarding Flag (category safety, a child protection plan by default) raised by
    `author`, an Organization; `removal` is (extension url, coding system|code) when ended."""
    resource = flag(
        subject=subject,
        author=author,
        status=status,
        code=code,
        display=display,
        system=system,
        category="safety",
    )
    resource["period"] = {"start": start} | ({"end": end} if end else {})
    if removal is not None:
        url, coding = removal
        reason_system, _, reason = coding.rpartition("|")
        resource["extension"] = [
            {
                "url": url,
                "valueCodeableConcept": {"coding": [{"system": reason_system, "code": reason}]},
            }
        ]
    return resource


def condition(
    *, subject: str, code: str = "14760008", display: str = "Constipation"
) -> dict[str, Any]:
    """An active, confirmed Condition."""
    return {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "confirmed",
                }
            ]
        },
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "subject": {"reference": subject},
    }


def related_person(
    *, patient: str, relationship: str = "FTH", nhs: str | None = None
) -> dict[str, Any]:
    """A relative of a Patient (father by default)."""
    resource: dict[str, Any] = {
        "resourceType": "RelatedPerson",
        "patient": {"reference": patient},
        "relationship": [{"coding": [{"system": ROLE, "code": relationship}]}],
        "name": [{"family": "Smith", "given": ["John"]}],
    }
    if nhs is not None:
        resource["identifier"] = [{"system": NHS, "value": nhs}]
    return resource


def entry(
    *,
    method: str,
    url: str,
    resource: dict[str, Any] | None = None,
    full_url: str | None = None,
    if_none_exist: str | None = None,
    if_match: str | None = None,
) -> dict[str, Any]:
    """A Bundle entry with its request (http://hl7.org/fhir/R4/bundle.html)."""
    request: dict[str, Any] = {"method": method, "url": url}
    if if_none_exist is not None:
        request["ifNoneExist"] = if_none_exist
    if if_match is not None:
        request["ifMatch"] = if_match
    found: dict[str, Any] = {}
    if full_url is not None:
        found["fullUrl"] = full_url
    if resource is not None:
        found["resource"] = resource
    found["request"] = request
    return found


def bundle(*, kind: str = "transaction", entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A transaction (or batch) Bundle."""
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def project_flag(
    *,
    vocabulary: Vocabulary,
    subject: str,
    author: str,
    flag_type: str,
    status: str = "active",
    start: str = "2026-01-10",
    end: str | None = None,
    reason: str = "plan-ended",
) -> dict[str, Any]:
    """A safeguarding Flag coded with a project flag type, raised by `author` (an Organization);
    an ended one (inactive or entered-in-error) gets `period.end` and its removal reason."""
    concept = next(c for c in vocabulary.flag_types if c.code == flag_type)
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "status": status,
        "category": [{"coding": [{"system": FLAG_CATEGORY, "code": "safety"}]}],
        "code": {
            "coding": [
                {
                    "system": vocabulary.flag_type_system,
                    "code": flag_type,
                    "display": concept.display,
                }
            ]
        },
        "subject": {"reference": subject},
        "period": {"start": start},
        "author": {"reference": author},
    }
    if status != "active":
        resource["period"]["end"] = end or start
        concept_of_reason = {
            "coding": [{"system": vocabulary.removal_reason_system, "code": reason}]
        }
        resource["extension"] = [
            {"url": vocabulary.removal_reason_extension, "valueCodeableConcept": concept_of_reason}
        ]
    return resource


def recorded_condition(
    *,
    vocabulary: Vocabulary,
    subject: str,
    organization: str,
    code: str = "35489007",
    display: str = "Depressive disorder",
    clinical_status: str = "active",
) -> dict[str, Any]:
    """A Condition with the Organization that recorded it (the recording-organization
    extension)."""
    resource = condition(subject=subject, code=code, display=display)
    resource["clinicalStatus"]["coding"][0]["code"] = clinical_status
    resource["extension"] = [
        {
            "url": vocabulary.recording_organization_extension,
            "valueReference": {"reference": organization},
        }
    ]
    return resource


BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"


def subscription(
    *,
    topic: str,
    endpoint: str | None = None,
    content: str = "id-only",
    heartbeat: int | None = None,
    max_count: int | None = None,
) -> dict[str, Any]:
    """A topic-based Subscription (backport profile) to a topic's canonical URL: a rest-hook
    to `endpoint`, or with none, events held for $events."""
    channel: dict[str, Any] = {
        "type": "rest-hook",
        "payload": "application/fhir+json",
        "_payload": {
            "extension": [{"url": f"{BACKPORT}/backport-payload-content", "valueCode": content}]
        },
    }
    extensions = []
    if heartbeat is not None:
        extensions.append(
            {"url": f"{BACKPORT}/backport-heartbeat-period", "valueUnsignedInt": heartbeat}
        )
    if max_count is not None:
        extensions.append({"url": f"{BACKPORT}/backport-max-count", "valuePositiveInt": max_count})
    if extensions:
        channel["extension"] = extensions
    if endpoint is not None:
        channel["endpoint"] = endpoint
    return {
        "resourceType": "Subscription",
        "meta": {"profile": [f"{BACKPORT}/backport-subscription"]},
        "status": "requested",
        "reason": "Tell the authority about its children",
        "criteria": topic,
        "channel": channel,
    }
