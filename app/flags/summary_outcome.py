"""The summary's warnings as its OperationOutcome: one issue per finding, coded in the
project's `safeguarding-summary-warning` code system, saying in plain English what to notice
and pointing (`expression`) at the Bundle entries at issue.
Spec: http://hl7.org/fhir/R4/operationoutcome.html
"""

from collections.abc import Mapping, Sequence
from typing import Any

from app.flags.codes import Vocabulary
from app.flags.summary_warnings import DISPLAYS, WARNING_SYSTEM, Finding


def outcome(
    found: Sequence[Finding], vocabulary: Vocabulary, paths: Mapping[str, str]
) -> dict[str, Any]:
    """The OperationOutcome of the warnings; `paths` maps a reference to its FHIRPath in the
    summary Bundle. With no warning, one informational issue (an empty one is not allowed)."""
    if not found:
        details = {"text": "No safeguarding warnings"}
        calm = {"severity": "information", "code": "informational", "details": details}
        return {"resourceType": "OperationOutcome", "issue": [calm]}
    system = vocabulary.url("CodeSystem", WARNING_SYSTEM)
    issues = []
    for finding in found:
        coding = {"system": system, "code": finding.code, "display": DISPLAYS[finding.code]}
        issue: dict[str, Any] = {
            "severity": "warning",
            "code": "informational",
            "details": {"coding": [coding], "text": finding.text},
        }
        expressions = list(dict.fromkeys(paths[r] for r in finding.about if r in paths))
        if expressions:
            issue["expression"] = expressions
        issues.append(issue)
    return {"resourceType": "OperationOutcome", "issue": issues}
