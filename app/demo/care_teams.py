"""The demo's lead professionals: for a child whose safeguarding flags and conditions are
recorded by two or more services, half the time a CareTeam naming one of them lead
professional (the council when it has raised a flag, else the first service met); the other
half have none, so their summaries warn `no-lead-professional`. Drawn from a generator of its
own, so adding teams changes nothing else the population draws.
"""

import random
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from app.demo.families import FamilyPlan, Person, Service
from app.flags.codes import LEAD_PROFESSIONAL, Vocabulary

SHARE_LED = 0.5  # of the children seen by several services, those given a lead


def care_teams(
    plan: FamilyPlan,
    prefix: str,
    involved: Sequence[tuple[Person, Service]],
    vocabulary: Vocabulary,
    reference: date,
) -> list[dict[str, Any]]:
    """CareTeams for the family's children; `involved`: (child, service) of each active flag
    and condition, in the order written."""
    rng = random.Random(f"safeguard-demo:{prefix}:teams")  # noqa: S311 (reproducible, not secret)
    teams = []
    for child in plan.children:
        services = list(dict.fromkeys(s for person, s in involved if person is child))
        if len(services) < 2 or rng.random() >= SHARE_LED:
            continue
        councils = [s for s in services if child.home and s is child.home.locality.council]
        lead = (councils or services)[0]
        start = reference - timedelta(days=rng.randint(20, 300))
        teams.append(_team(f"{prefix}-{child.key}-team", child, prefix, lead, vocabulary, start))
    return teams


def _team(
    logical_id: str, child: Person, prefix: str, lead: Service, vocabulary: Vocabulary, start: date
) -> dict[str, Any]:
    organisation = {"reference": f"Organization/demo-org-{lead.ods.lower()}"}
    role = {
        "system": vocabulary.care_team_role_system,
        "code": LEAD_PROFESSIONAL,
        "display": "Lead professional",
    }
    return {
        "resourceType": "CareTeam",
        "id": logical_id,
        "status": "active",
        "name": f"Lead professional for {child.given} {child.surname}",
        "subject": {"reference": f"Patient/{prefix}-{child.key}"},
        "period": {"start": start.isoformat()},
        "participant": [{"role": [{"coding": [role]}], "member": organisation}],
        "managingOrganization": [organisation],
    }
