"""Writes the demo population (`app.demo.population`) through the FHIR API, in-process, as the
demo-system client (the demo clients are registered first, `app.demo.clients`): one
transaction Bundle for the Organizations, then one a family, every entry `PUT Type/id`. A group
whose first resource already exists is skipped, so seeding the same seed again writes nothing.

Spec: http://hl7.org/fhir/R4/http.html#transaction
"""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import orjson

from app.demo.clients import SEEDING_CLIENT, register_demo_clients
from app.demo.population import Family, population
from app.flags.codes import vocabulary
from app.main import create_app
from app.nhs import NHS_NUMBER_SYSTEM
from app.settings import Settings
from app.storage.db import Database

FHIR_JSON = "application/fhir+json"
Advance = Callable[[int], None]  # told when another group (one transaction) is done


class SeedFailed(RuntimeError):
    """The server refused a demo Bundle (the message has its OperationOutcome's text)."""


@dataclass(slots=True)
class Seeded:
    """What a seeding wrote (and skipped as already there), and a few calls to try."""

    written: Counter[str] = field(default_factory=Counter)  # resources by type
    families: int = 0
    skipped: int = 0  # groups (the Organizations, or a family) already in the database
    examples: list[str] = field(default_factory=list)  # request paths under the FHIR base


def transaction(resources: Family) -> dict[str, Any]:
    """A transaction Bundle writing each resource at its own id."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": resource,
                "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
            }
            for resource in resources
        ],
    }


def _outcome_text(response: httpx.Response) -> str:
    """Every issue of an OperationOutcome answer (or the raw body), on one line."""
    try:
        issues = response.json().get("issue") or []
    except ValueError:
        return response.text[:500]
    return "; ".join(
        f"{', '.join(issue.get('expression') or [])}: {issue.get('diagnostics', '')}"
        for issue in issues
    )


async def _exists(client: httpx.AsyncClient, resource: dict[str, Any]) -> bool:
    response = await client.get(f"{resource['resourceType']}/{resource['id']}")
    if response.status_code not in (200, 404, 410):
        raise SeedFailed(f"reading {resource['id']}: {response.status_code}")
    return response.status_code == 200


async def write_group(client: httpx.AsyncClient, resources: Family) -> bool:
    """Write one group in one transaction, unless its first resource exists already."""
    if not resources or await _exists(client, resources[0]):
        return False
    response = await client.post(
        str(client.base_url).rstrip("/"),
        content=orjson.dumps(transaction(resources)),
        headers={"content-type": FHIR_JSON, "accept": FHIR_JSON},
    )
    if response.status_code != 200:
        raise SeedFailed(f"{resources[0]['id']}: {response.status_code} {_outcome_text(response)}")
    return True


async def seed(
    client: httpx.AsyncClient, groups: Iterable[Family], advance: Advance | None = None
) -> Seeded:
    """Write the Organizations group, then each family's, through `client` (the FHIR base),
    telling `advance` as each group is done."""
    seeded = Seeded()
    all_groups = list(groups)
    for index, resources in enumerate(all_groups):
        if await write_group(client, resources):
            seeded.written.update(resource["resourceType"] for resource in resources)
            seeded.families += index > 0
        else:
            seeded.skipped += 1
        if advance is not None:
            advance(1)
    seeded.examples = examples(all_groups[1:])
    return seeded


async def holds_data(db: Database) -> bool:
    """Whether the database holds data: any search-index row (read without a caller, so
    not from the resource tables, which only a caller's filtered statements read)."""
    async with db.reader() as conn:
        return await conn.fetchrow("SELECT 1 FROM idx_token LIMIT 1") is not None


async def seed_database(
    settings: Settings,
    families: int,
    seed_number: int,
    today: date,
    only_if_empty: bool = False,
    advance: Advance | None = None,
) -> Seeded | None:
    """Seed the database of `settings` through a private app (`advance` told of each of the
    `families` + 1 groups); None if `only_if_empty` and it holds data already."""
    groups = population(families, seed_number, vocabulary(settings.canonical_base), today)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        db = app.state.context.store.db
        if only_if_empty and await holds_data(db):
            return None
        await register_demo_clients(db)
        token = await app.state.authority.local_token(SEEDING_CLIENT)
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url=settings.base_url, headers=headers
        ) as client:
            return await seed(client, groups, advance)


def examples(families: list[Family]) -> list[str]:
    """Three requests worth trying on one child (one with half-siblings and active Flags, when
    there is one): the child's summary, active Flags, and relatives of one kind."""
    relations: dict[str, list[str]] = {}
    active_flags: Counter[str] = Counter()
    numbers = {}
    for resource in (resource for family in families for resource in family):
        kind = resource["resourceType"]
        if kind == "RelatedPerson":
            code = resource["relationship"][0]["coding"][0]["code"]
            relations.setdefault(resource["patient"]["reference"], []).append(code)
        elif kind == "Flag" and resource["status"] == "active":
            active_flags[resource["subject"]["reference"]] += 1
        elif kind == "Patient":
            numbers[f"Patient/{resource['id']}"] = resource["identifier"][0]["value"]
    if not relations:
        return []
    child = max(sorted(relations), key=lambda ref: ("HSIB" in relations[ref], active_flags[ref]))
    relation = "HSIB" if "HSIB" in relations[child] else relations[child][0]
    return [
        f"Patient/$safeguarding-summary?identifier={NHS_NUMBER_SYSTEM}|{numbers[child]}",
        f"Flag?patient={child}&status=active",
        f"RelatedPerson?patient={child}&relationship={relation}",
    ]
