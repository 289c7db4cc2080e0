"""The demo's OAuth clients, registered with local keys when the demo population is seeded,
so that `safeguard token --client demo-gp` prints a token the server accepts.

Each belongs to an organisation of the demo population: a GP practice and a hospital trust
(health), two councils (local-authority); demo-system and demo-auditor belong to the regional
hub (`families.HUB`), so that what the seeding writes as demo-system is no care service's.
"""

from app.auth.clients import find, local_key_pair, register
from app.demo.families import HUB, LOCALITIES
from app.demo.population import org_id
from app.storage.db import Database

CARE = (
    "system/Patient.crus system/Flag.cruds system/Condition.cruds system/RelatedPerson.cruds "
    "system/CareTeam.cruds system/Organization.rs"
)
AUTHORITY = f"{CARE} system/Subscription.cruds"  # councils also subscribe to notifications
FIRST, SECOND = LOCALITIES[0], LOCALITIES[1]
DEMO_CLIENTS = (
    ("demo-gp", org_id(FIRST.practices[0]), "health", CARE),
    ("demo-hospital", org_id(FIRST.hospital), "health", CARE),
    ("demo-la-a", org_id(FIRST.council), "local-authority", AUTHORITY),
    ("demo-la-b", org_id(SECOND.council), "local-authority", AUTHORITY),
    ("demo-system", org_id(HUB), "system", "system/*.cruds"),
    ("demo-auditor", org_id(HUB), "auditor", "system/AuditEvent.rs"),
)
SEEDING_CLIENT = "demo-system"


async def register_demo_clients(db: Database) -> list[str]:
    """Register each demo client not registered yet, with a new local key; their ids."""
    added = []
    for client_id, organisation, role, scope in DEMO_CLIENTS:
        async with db.reader() as conn:
            if await find(conn, client_id) is not None:
                continue
        private, public = local_key_pair()
        await register(db, client_id, f"Organization/{organisation}", role, scope, public, private)
        added.append(client_id)
    return added
