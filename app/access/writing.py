"""Which writes a caller may make: authorship, the directory of organisations, and changes
to what others wrote. Reads are ruled in `visibility`; these rules run on every write path.

- What a client writes is written by its own organisation: a declared author (Flag.author,
  a Condition's recording organisation) must be it, and is set to it when absent. `system`
  clients write on behalf of any organisation.
- Organizations are the directory: only `system` clients create, change or delete them.
- Subscriptions (notifications to local authorities) are made by local-authority and
  `system` clients only.
- Only the authoring organisation (for a Patient or RelatedPerson, the one whose client
  created it) updates, ends or deletes a resource; `system` clients may change anything.
- A write by id of a resource the caller cannot see is answered as if none existed (404),
  and creating by id (update-as-create) is for `system` clients only.
"""

from app.access.caller import Caller
from app.errors import Forbidden, NotFound

DIRECTORY = "Organization"
SUBSCRIBING, SUBSCRIBERS = "Subscription", ("local-authority", "system")


def author_to_record(caller: Caller, declared: str | None, expression: str) -> str | None:
    """The authoring Organization id to record: the caller's own when none is declared; 403
    when another is declared. `system` clients record what they declare."""
    if caller.acts_for_anyone:
        return declared
    if declared is not None and declared != caller.organisation:
        raise Forbidden.of(
            f"{expression} must be this client's own organisation "
            f"(Organization/{caller.organisation}): clients write only as themselves",
            expression,
        )
    return caller.organisation


def check_type(caller: Caller, resource_type: str) -> None:
    """403 unless the caller may write resources of this type at all."""
    if resource_type == SUBSCRIBING and caller.role not in SUBSCRIBERS:
        raise Forbidden.of(
            "Subscriptions carry notifications to local authorities: only local-authority "
            "and system clients create, change or delete them",
            resource_type,
        )
    if resource_type == DIRECTORY and not caller.acts_for_anyone:
        raise Forbidden.of(
            "Organizations are the directory of services and authorities: only system "
            "clients create, change or delete them",
            resource_type,
        )


def check_change(caller: Caller, resource_type: str, logical_id: str, author: str | None) -> None:
    """403 unless the caller may change or delete a resource it can see, authored by `author`."""
    check_type(caller, resource_type)
    if caller.acts_for_anyone or (author is not None and author == caller.organisation):
        return
    raise Forbidden.of(
        f"{resource_type}/{logical_id} was written by another organisation: only its author "
        "may change, end or delete it"
    )


def check_absent(caller: Caller, resource_type: str, logical_id: str) -> None:
    """For a write by id of a resource the caller cannot see, or that does not exist: 404,
    except for `system` clients (update-as-create; delete of nothing)."""
    if not caller.acts_for_anyone:
        raise NotFound.of(f"{resource_type}/{logical_id} is not known")
