"""Who is asking: the client behind a request, its organisation, role and grants.

Resolved once per request from its bearer token (`app.auth`); every read of stored resources
is filtered for it inside the SQL (`app.access.visibility`), and every write checked against
it (`app.access.writing`).
"""

from dataclasses import dataclass, field
from typing import Literal

from app.access.scopes import Grants, allows

Role = Literal["health", "local-authority", "system", "auditor"]
ROLES: tuple[Role, ...] = ("health", "local-authority", "system", "auditor")


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity behind a request and what it may do.

    `subject`: the client id. `organisation`: the id of the Organization it belongs to.
    `grants`: what its token's scopes allow (None: everything). `readable_types`: the types
    it may read (None: every type), derived from the grants unless given. `nhs_number`: set
    only for a local authority's Patient search by an exact NHS number, the one way it finds
    a child it is not yet responsible for.
    """

    subject: str
    organisation: str | None = None
    role: Role = "system"
    grants: Grants | None = None
    readable_types: frozenset[str] | None = None
    nhs_number: str | None = field(default=None, compare=True)

    def may(self, resource_type: str, letter: str) -> bool:
        """Whether the caller's scopes allow interaction `letter` (c r u d s) on a type."""
        return self.grants is None or allows(self.grants, resource_type, letter)

    @property
    def acts_for_anyone(self) -> bool:
        """`system` clients may write on behalf of any organisation and see all they may read."""
        return self.role == "system"


def caller_for(
    subject: str, organisation: str | None, role: Role, grants: Grants, known_types: frozenset[str]
) -> Caller:
    """A caller with `grants`, its readable types worked out from them."""
    if ("*", "r") in grants:  # every type, those defined later too: no type filter at all
        return Caller(subject, organisation, role, grants, None)
    readable = frozenset(t for t in known_types if allows(grants, t, "r"))
    return Caller(subject, organisation, role, grants, readable)


ANONYMOUS = Caller(subject="anonymous")
SYSTEM = Caller(subject="system")
