"""NHS England's identifier systems and the NHS number's check digit.

Spec: https://digital.nhs.uk/services/nhs-number, https://simplifier.net/guide/ukcoreversionhistory
"""

from typing import Any

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"


def nhs_number_is_valid(number: str) -> bool:
    """Modulus-11 check of a 10-digit NHS number (weights 10..2; 11 -> 0; 10 invalid)."""
    if len(number) != 10 or not number.isdigit():
        return False
    weights = range(10, 1, -1)
    total = sum(int(digit) * weight for digit, weight in zip(number[:9], weights, strict=True))
    check = (11 - total % 11) % 11
    return check != 10 and check == int(number[9])


def nhs_numbers(resource: dict[str, Any]) -> dict[str, str]:
    """NHS numbers in a Patient's (or RelatedPerson's) identifiers, by the expression that
    holds each (`Patient.identifier[0].value`)."""
    found = resource.get("identifier")
    where = f"{resource['resourceType']}.identifier"
    indexed = (
        [(f"{where}[{i}]", item) for i, item in enumerate(found)]
        if isinstance(found, list)
        else [(where, found)]
    )
    return {
        f"{expression}.value": str(identifier.get("value", ""))
        for expression, identifier in indexed
        if isinstance(identifier, dict) and identifier.get("system") == NHS_NUMBER_SYSTEM
    }
