"""Pure invariants checked on every write, on top of structural validation.

fhir.resources checks structure but not required code bindings, so they are enforced here
(http://hl7.org/fhir/R4/terminologies.html#required), as are NHS number check digits.
"""

from collections.abc import Iterator
from typing import Any

from app.errors import Issue

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
SNOMED = "http://snomed.info/sct"
HTTPS_SNOMED = "https://snomed.info/sct"  # a common misspelling, normalised on input

GENDER = frozenset({"male", "female", "other", "unknown"})
IDENTIFIER_USE = frozenset({"usual", "official", "temp", "secondary", "old"})
NAME_USE = frozenset({"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"})
TELECOM_SYSTEM = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
TELECOM_USE = frozenset({"home", "work", "temp", "old", "mobile"})
ADDRESS_USE = frozenset({"home", "work", "temp", "old", "billing"})
ADDRESS_TYPE = frozenset({"postal", "physical", "both"})
NARRATIVE_STATUS = frozenset({"generated", "extensions", "additional", "empty"})

CLINICAL_STATUS = (
    "http://terminology.hl7.org/CodeSystem/condition-clinical",
    frozenset({"active", "recurrence", "relapse", "inactive", "remission", "resolved"}),
)
VERIFICATION_STATUS = (
    "http://terminology.hl7.org/CodeSystem/condition-ver-status",
    frozenset(
        {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"}
    ),
)

_PARTY_CODES: tuple[tuple[str, frozenset[str]], ...] = (
    ("identifier.use", IDENTIFIER_USE),
    ("name.use", NAME_USE),
    ("telecom.system", TELECOM_SYSTEM),
    ("telecom.use", TELECOM_USE),
    ("address.use", ADDRESS_USE),
    ("address.type", ADDRESS_TYPE),
    ("text.status", NARRATIVE_STATUS),
)

CODE_BINDINGS: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {
    "Patient": (
        *_PARTY_CODES,
        ("gender", GENDER),
        ("contact.gender", GENDER),
        ("contact.telecom.system", TELECOM_SYSTEM),
        ("link.type", frozenset({"replaced-by", "replaces", "refer", "seealso"})),
    ),
    "RelatedPerson": (*_PARTY_CODES, ("gender", GENDER)),
    "Organization": (*_PARTY_CODES, ("contact.telecom.system", TELECOM_SYSTEM)),
    "Flag": (
        ("status", frozenset({"active", "inactive", "entered-in-error"})),
        ("identifier.use", IDENTIFIER_USE),
        ("text.status", NARRATIVE_STATUS),
    ),
    "Condition": (("identifier.use", IDENTIFIER_USE), ("text.status", NARRATIVE_STATUS)),
}

REQUIRED_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Flag": ("status", "code", "subject"),
    "Condition": ("subject",),
    "RelatedPerson": ("patient",),
}


def walk(value: Any, path: list[str], expression: str) -> Iterator[tuple[str, Any]]:
    """(expression, value) for each value at a dotted path, with list indexes in expressions."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, path, f"{expression}[{index}]")
        return
    if not path:
        yield expression, value
        return
    if isinstance(value, dict) and path[0] in value:
        yield from walk(value[path[0]], path[1:], f"{expression}.{path[0]}")


def binding_issues(resource_type: str, resource: dict[str, Any]) -> list[Issue]:
    """Codes outside their required value set, and missing required elements."""
    issues = [
        Issue(f"{resource_type}.{name} is required", "required", (f"{resource_type}.{name}",))
        for name in REQUIRED_ELEMENTS.get(resource_type, ())
        if resource.get(name) in (None, "", [], {})
    ]
    for path, allowed in CODE_BINDINGS.get(resource_type, ()):
        for expression, code in walk(resource, path.split("."), resource_type):
            if code not in allowed:
                issues.append(
                    Issue(
                        f"'{code}' is not in the required value set ({', '.join(sorted(allowed))})",
                        "code-invalid",
                        (expression,),
                    )
                )
    if resource_type == "Condition":
        issues.extend(_condition_issues(resource))
    return issues


def _concept_issue(concept: Any, binding: tuple[str, frozenset[str]], name: str) -> Issue | None:
    system, allowed = binding
    codes = [
        c.get("code")
        for c in (concept.get("coding") or [] if isinstance(concept, dict) else [])
        if isinstance(c, dict) and c.get("system") == system
    ]
    if codes and all(code in allowed for code in codes):
        return None
    return Issue(
        f"Condition.{name} needs a coding from {system} ({', '.join(sorted(allowed))})",
        "code-invalid",
        (f"Condition.{name}",),
    )


def _condition_issues(resource: dict[str, Any]) -> list[Issue]:
    issues = []
    for name, binding in (
        ("clinicalStatus", CLINICAL_STATUS),
        ("verificationStatus", VERIFICATION_STATUS),
    ):
        if name in resource:
            issue = _concept_issue(resource[name], binding, name)
            if issue is not None:
                issues.append(issue)
    verification = [
        c.get("code") for c in (resource.get("verificationStatus") or {}).get("coding") or []
    ]
    if "entered-in-error" in verification and "clinicalStatus" in resource:
        issues.append(
            Issue(
                "con-5: clinicalStatus SHALL NOT be present if verificationStatus is "
                "entered-in-error",
                "invariant",
                ("Condition.clinicalStatus",),
            )
        )
    return issues


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
    holds each."""
    found = {}
    for expression, identifier in walk(resource, ["identifier"], resource["resourceType"]):
        if isinstance(identifier, dict) and identifier.get("system") == NHS_NUMBER_SYSTEM:
            found[f"{expression}.value"] = str(identifier.get("value", ""))
    return found


def nhs_number_issues(resource: dict[str, Any]) -> list[Issue]:
    """NHS numbers that fail the modulus-11 check."""
    return [
        Issue(f"'{number}' is not a valid NHS number", "value", (expression,))
        for expression, number in nhs_numbers(resource).items()
        if not nhs_number_is_valid(number)
    ]


def references(value: Any, expression: str) -> list[tuple[str, str]]:
    """(expression, reference string) for every Reference.reference anywhere in a resource."""
    found: list[tuple[str, str]] = []
    _survey(value, expression, found)
    return found


def survey(resource: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """One walk of a resource: it normalised (`normalise`), and its `references`."""
    found: list[tuple[str, str]] = []
    https_snomed = _survey(resource, resource["resourceType"], found)
    return (_normalised(resource) if https_snomed else resource), found


def _survey(value: Any, path: str, found: list[tuple[str, str]]) -> bool:
    """Collect references under `value` into `found`; whether any system is https SNOMED."""
    https_snomed = False
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict | list):
                https_snomed |= _survey(item, f"{path}[{index}]", found)
        return https_snomed
    for key, item in value.items():
        if isinstance(item, str):
            if key == "reference":
                found.append((path, item))
            elif key == "system" and item == HTTPS_SNOMED:
                https_snomed = True
        elif isinstance(item, dict | list):  # contained resources' references are their own
            https_snomed |= _survey(item, f"{path}.{key}", [] if key == "contained" else found)
    return https_snomed


def normalise(value: Any) -> Any:
    """Input normalisation: SNOMED written as `https://snomed.info/sct` becomes `http://`."""
    return _normalised(value) if _survey(value, "", []) else value


def _normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (SNOMED if k == "system" and v == HTTPS_SNOMED else _normalised(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normalised(item) for item in value]
    return value
