"""Every warning of a summary, in one fixed order of rules: the child's (`summary_warnings`),
the parent's or carer's (`adult_warnings`), the lead professional's (`lead_warnings`), then
`summary-incomplete`. Whether the subject is read as an adult decides which apply.
"""

import calendar
from collections.abc import Callable
from datetime import date

from app.flags.adult_warnings import adult_findings
from app.flags.codes import Vocabulary
from app.flags.lead_warnings import no_lead_professional
from app.flags.summary_warnings import (
    ADULT_AGE,
    Family,
    Finding,
    Held,
    Limits,
    father_not_identified,
    home_education,
    household_risk,
    incomplete,
    multiple_services,
    no_father,
    not_brought,
    sibling_plan,
)


def findings(family: Family, vocabulary: Vocabulary, limits: Limits) -> tuple[Finding, ...]:
    """Every warning about the summary's subject. A missing or unidentified father and a
    missing lead professional are warnings about a child, not given for an adult."""
    adult = as_adult(family, limits.today)
    rules: list[Callable[[], list[Finding]]] = [
        lambda: [] if adult else no_father(family),
        lambda: [] if adult else father_not_identified(family),
        lambda: home_education(family, vocabulary),
        lambda: not_brought(family, vocabulary, limits),
        lambda: sibling_plan(family, vocabulary),
        lambda: multiple_services(family, vocabulary),
        lambda: household_risk(family, vocabulary),
        lambda: adult_findings(family, vocabulary, limits.today),
        lambda: [] if adult else no_lead_professional(family, vocabulary),
        lambda: incomplete(family),
    ]
    return tuple(finding for rule in rules for finding in rule())


def is_adult(patient: Held, today: date) -> bool:
    """Whether a Patient is surely `ADULT_AGE` or older on `today` by its birthDate (a year or
    year-month counts from its last possible day); unknown: no."""
    born = patient.resource.get("birthDate")
    if not isinstance(born, str):
        return False
    try:
        if len(born) == 4:
            latest = date(int(born), 12, 31)
        elif len(born) == 7:
            year, month = int(born[:4]), int(born[5:7])
            latest = date(year, month, calendar.monthrange(year, month)[1])
        else:
            latest = date.fromisoformat(born[:10])
    except ValueError:
        return False
    try:
        return latest.replace(year=latest.year + ADULT_AGE) <= today
    except ValueError:  # born on 29 February: of age on 1 March
        return date(latest.year + ADULT_AGE, 3, 1) <= today


def as_adult(family: Family, today: date) -> bool:
    """Whether the summary's subject is read as an adult: of age by birthDate, or, with no
    birthDate, the parent or carer of a linked child."""
    if is_adult(family.child, today):
        return True
    unknown = not isinstance(family.child.resource.get("birthDate"), str)
    return unknown and any(relative.kind == "child" for relative in family.relatives)
