"""The rules a safeguarding Flag obeys on every write path, on top of structural validation.

A Flag is a safeguarding flag when its category is `safety` (flag-category) or its code is in
the safeguarding flag-type value set (`codes`). Ending one is a status change, never a delete:
to `inactive` with `period.end`, or to `entered-in-error`, each with a removal reason
(modelled on NHS England's Extension-England-FlagRemovalReason). Pure functions.
Spec: http://hl7.org/fhir/R4/flag.html
"""

from typing import Any

from app.errors import Issue
from app.flags.codes import FLAG_CATEGORY, ONE_ACTIVE_PER_CHILD, SAFETY, Vocabulary
from app.normalise import split_reference

ENDED = ("inactive", "entered-in-error")


def is_safety(resource: dict[str, Any]) -> bool:
    """Whether the Flag's category includes flag-category `safety`."""
    categories = resource.get("category")
    return any(
        isinstance(coding, dict)
        and coding.get("system") == FLAG_CATEGORY
        and coding.get("code") == SAFETY
        for category in (categories if isinstance(categories, list) else [])
        if isinstance(category, dict)
        for coding in (category.get("coding") or [])
    )


def is_safeguarding(resource: dict[str, Any], vocabulary: Vocabulary) -> bool:
    """Whether a Flag is a safeguarding flag (category safety, or a safeguarding code)."""
    return is_safety(resource) or bool(vocabulary.types_of(resource.get("code")))


def _target_type(resource: dict[str, Any], element: str, base_url: str) -> str | None:
    value = resource.get(element)
    reference = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(reference, str):
        return None
    return split_reference(reference, base_url)[0]


def flag_issues(resource: dict[str, Any], vocabulary: Vocabulary, base_url: str) -> list[Issue]:
    """What a safeguarding Flag breaks of the rules (none for other Flags)."""
    flag_types = vocabulary.types_of(resource.get("code"))
    if not flag_types and not is_safety(resource):
        return []
    issues = _code_issues(resource, flag_types, vocabulary)
    if _target_type(resource, "subject", base_url) != "Patient":
        issues.append(_rule("a safeguarding flag's subject is a Patient", "Flag.subject"))
    if _target_type(resource, "author", base_url) != "Organization":
        why = "a safeguarding flag's author is the Organization that raised it"
        issues.append(_rule(why, "Flag.author"))
    issues.extend(_period_and_ending_issues(resource, vocabulary))
    return issues


def _rule(diagnostics: str, expression: str) -> Issue:
    return Issue(diagnostics, "business-rule", (expression,))


def _code_issues(
    resource: dict[str, Any], flag_types: frozenset[str], vocabulary: Vocabulary
) -> list[Issue]:
    """Category safety, and one flag type from the value set."""
    issues = []
    if not is_safety(resource):
        why = f"a safeguarding flag has category 'safety' ({FLAG_CATEGORY})"
        issues.append(_rule(why, "Flag.category"))
    if len(flag_types) > 1:
        named = ", ".join(sorted(flag_types))
        why = f"a flag records one thing, not {len(flag_types)} ({named}): raise one flag per type"
        issues.append(_rule(why, "Flag.code"))
    elif not flag_types:
        valueset = vocabulary.url("ValueSet", "safeguarding-flag-type")
        why = f"a safeguarding flag's code must be in {valueset}"
        issues.append(Issue(why, "code-invalid", ("Flag.code",)))
    return issues


def _period_and_ending_issues(resource: dict[str, Any], vocabulary: Vocabulary) -> list[Issue]:
    found = resource.get("period")
    period: dict[str, Any] = found if isinstance(found, dict) else {}
    issues = []
    if not period.get("start"):
        issues.append(
            Issue(
                "a safeguarding flag has period.start "
                "(for a was-not-brought episode, the appointment date)",
                "required",
                ("Flag.period.start",),
            )
        )
    status = resource.get("status")
    if status == "inactive" and not period.get("end"):
        issues.append(
            Issue("an ended safeguarding flag has period.end", "required", ("Flag.period.end",))
        )
    reasons = _removal_reasons(resource, vocabulary)
    for expression, reason in reasons:
        if reason is None:
            issues.append(
                Issue(
                    f"the removal reason must come from {vocabulary.removal_reason_system}",
                    "code-invalid",
                    (expression,),
                )
            )
    if status in ENDED and not reasons:
        issues.append(
            Issue(
                f"a safeguarding flag set to {status} carries the reason "
                f"(extension {vocabulary.removal_reason_extension})",
                "required",
                ("Flag.extension",),
            )
        )
    return issues


def _removal_reasons(
    resource: dict[str, Any], vocabulary: Vocabulary
) -> list[tuple[str, str | None]]:
    """(expression, reason code or None if not one of ours) of each removal-reason extension."""
    extensions = resource.get("extension")
    found = []
    for index, extension in enumerate(extensions if isinstance(extensions, list) else []):
        if isinstance(extension, dict) and extension.get("url") == (
            vocabulary.removal_reason_extension
        ):
            reason = vocabulary.removal_reason(extension.get("valueCodeableConcept"))
            found.append((f"Flag.extension[{index}].valueCodeableConcept", reason))
    return found


def may_claim(resource: dict[str, Any], vocabulary: Vocabulary) -> bool:
    """Whether a Flag is active and of a kind a child may have only one of at a time."""
    return resource.get("status") == "active" and (
        vocabulary.flag_type(resource.get("code")) in ONE_ACTIVE_PER_CHILD
    )


def one_active_claim(
    resource: dict[str, Any], vocabulary: Vocabulary, base_url: str
) -> tuple[str, str] | None:
    """(patient id, flag type) when the Flag is an active one of the kinds a child may have
    only one of at a time (elective home education, child protection plan)."""
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if not may_claim(resource, vocabulary) or not isinstance(reference, str):
        return None
    flag_type = str(vocabulary.flag_type(resource.get("code")))
    target_type, target_id = split_reference(reference, base_url)
    return (target_id, flag_type) if target_type == "Patient" and target_id else None


def change_issues(before: dict[str, Any], after: dict[str, Any], base_url: str) -> list[Issue]:
    """A safeguarding flag's code and subject are fixed once it is created."""
    issues = []
    if _codes(before.get("code")) != _codes(after.get("code")):
        issues.append(
            Issue(
                "a flag's code cannot change after creation (end this flag and raise a new one)",
                "business-rule",
                ("Flag.code",),
            )
        )
    if _subject(before, base_url) != _subject(after, base_url):
        issues.append(
            Issue(
                "a flag's subject cannot change after creation", "business-rule", ("Flag.subject",)
            )
        )
    return issues


def _codes(concept: Any) -> frozenset[tuple[Any, Any]]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return frozenset(
        (c.get("system"), c.get("code"))
        for c in (codings if isinstance(codings, list) else [])
        if isinstance(c, dict)
    )


def _subject(resource: dict[str, Any], base_url: str) -> tuple[str | None, str | None] | None:
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    return split_reference(reference, base_url) if isinstance(reference, str) else None
