"""The demo population `make run` seeds (20 families, seed 1), served: the README's first
three calls, read from the README itself, answer as the demo GP's client, and the summaries
show each warning of the adult's summary and of the lead professional somewhere."""

import datetime
import re
from pathlib import Path

import httpx
from fastapi import FastAPI

from app.cli import SERVE_DEMO_FAMILIES, SERVE_DEMO_SEED
from app.demo.clients import register_demo_clients
from app.demo.population import population
from app.demo.seeding import seed
from app.flags.codes import vocabulary
from app.settings import Settings
from tests.conftest import database

README = Path(__file__).parents[2] / "README.md"
CALL = re.compile(
    r"""^curl -s -H "Authorization: Bearer \$TOKEN" '(http://127\.0\.0\.1:8000/fhir)(/[^']+)'"""
)


def first_calls(count: int = 3) -> list[str]:
    """The paths (under /fhir) of the README's first authenticated curl calls."""
    found = [m.group(2) for line in README.read_text().splitlines() if (m := CALL.match(line))]
    return found[:count]


async def _seeded(client: httpx.AsyncClient, app: FastAPI, settings: Settings) -> None:
    await register_demo_clients(database(app))
    today = datetime.date.today()
    canonical = vocabulary(settings.canonical_base)
    await seed(client, population(SERVE_DEMO_FAMILIES, SERVE_DEMO_SEED, canonical, today))


async def test_the_readmes_first_three_calls_answer_on_the_demo_population(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    await _seeded(client, app, settings)
    token = await app.state.authority.local_token("demo-gp")
    summary, flags, half_siblings = first_calls()

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=str(client.base_url),
        headers={"Authorization": f"Bearer {token}"},
    ) as gp:
        answers = [await gp.get(path) for path in (summary, flags, half_siblings)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    bundle = answers[0].json()
    outcome = bundle.get("entry", [])[-1]["resource"]
    codes = {
        i["details"]["coding"][0]["code"] for i in outcome["issue"] if i["severity"] == "warning"
    }
    assert "repeated-was-not-brought" in codes
    found = [e["resource"] for e in answers[1].json().get("entry", [])]
    assert len([f for f in found if f["status"] == "active"]) >= 3
    assert len(answers[2].json().get("entry", [])) == 2


async def test_the_demo_shows_each_warning_of_parents_and_of_the_lead_professional(
    client: httpx.AsyncClient, app: FastAPI, settings: Settings
) -> None:
    await _seeded(client, app, settings)
    patients = (await client.get("/Patient", params={"_count": "500", "_elements": "id"})).json()

    seen: set[str] = set()
    led = 0
    for entry in patients.get("entry", []):
        bundle = (
            await client.get(f"/Patient/{entry['resource']['id']}/$safeguarding-summary")
        ).json()
        issues = bundle.get("entry", [])[-1]["resource"]["issue"]
        seen |= {i["details"]["coding"][0]["code"] for i in issues if i["severity"] == "warning"}
        led += any(e["resource"]["resourceType"] == "CareTeam" for e in bundle.get("entry", []))

    assert {"child-subject-to-plan", "child-on-register-elsewhere", "no-lead-professional"} <= seen
    assert led > 0  # and some children have their lead professional in their summary
