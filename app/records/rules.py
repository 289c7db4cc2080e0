"""Pure invariants checked on every write, on top of structural validation.

fhir.resources checks structure but not required code bindings, so they are enforced here
(http://hl7.org/fhir/R4/terminologies.html#required), as are NHS number check digits.
"""

from collections.abc import Iterator
from typing import Any

from app.errors import Issue
from app.flags.codes import SNOMED
from app.nhs import nhs_number_is_valid, nhs_numbers
from app.registry.bindings import (
    CLINICAL_STATUS,
    CODE_BINDINGS,
    REQUIRED_ELEMENTS,
    VERIFICATION_STATUS,
)

HTTPS_SNOMED = "https://snomed.info/sct"  # a common misspelling, normalised on input


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


def nhs_number_issues(resource: dict[str, Any]) -> list[Issue]:
    """NHS numbers that fail the modulus-11 check."""
    return [
        Issue(f"'{number}' is not a valid NHS number", "value", (expression,))
        for expression, number in nhs_numbers(resource).items()
        if not nhs_number_is_valid(number)
    ]


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


def _normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (SNOMED if k == "system" and v == HTTPS_SNOMED else _normalised(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normalised(item) for item in value]
    return value
