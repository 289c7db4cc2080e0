"""Factories: keyword-only functions returning valid resources (as JSON dicts)."""

from typing import Any

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
SNOMED = "http://snomed.info/sct"


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
    code: str = "342191000000101",
    display: str = "Subject to child protection plan",
    identifier: str | None = None,
) -> dict[str, Any]:
    """A safeguarding Flag on a subject."""
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                        "code": "safety",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
        "subject": {"reference": subject},
        "period": {"start": "2026-01-10"},
    }
    if author is not None:
        resource["author"] = {"reference": author}
    if identifier is not None:
        resource["identifier"] = [{"system": "https://example.org/flags", "value": identifier}]
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
