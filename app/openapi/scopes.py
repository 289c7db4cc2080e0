"""The SMART scopes each documented route needs, for the OpenAPI document's `security`.

`{resource_type}` stands for the type in the URL. v2 letters (c create, r read, u update,
d delete, s search); a wider scope (`system/Flag.cruds`, `system/*.rs`, v1's `.read`, `.write`
and `.*`) grants them too. Spec: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
The scopes are checked where each route is dispatched (`app.fhir.permissions`).
"""

from app.registry import COMPARTMENT_MEMBERS

TYPED = "system/{resource_type}"
READ, SEARCH = f"{TYPED}.r", f"{TYPED}.s"
NO_SCOPE = ()  # any valid token: what the client may not read is left out inside the SQL

SCOPES: dict[str, tuple[str, ...]] = {
    "read": (READ,),
    "vread": (READ,),
    "history_instance": (READ,),
    "history_type": (READ,),
    "search_type": (SEARCH,),
    "search_post": (SEARCH,),
    "create": (f"{TYPED}.c",),
    "update": (f"{TYPED}.u",),
    "conditional_update": (f"{TYPED}.u",),
    "patch": (f"{TYPED}.u",),
    "delete": (f"{TYPED}.d",),
    "conditional_delete": (f"{TYPED}.d",),
    **{f"search_patient_{m.lower()}": (f"system/{m}.s",) for m in COMPARTMENT_MEMBERS},
    "safeguarding_summary": ("system/Patient.r", "system/Flag.s"),
    "safeguarding_summary_by_identifier": ("system/Patient.s", "system/Flag.s"),
    "subscription_status": ("system/Subscription.r",),
    "subscription_events": ("system/Subscription.r",),
    "read_audit_event": ("system/AuditEvent.r",),
    "search_audit_events": ("system/AuditEvent.s",),
    "search_audit_events_post": ("system/AuditEvent.s",),
}
WHY = {
    "update": " An update that creates its resource needs system/{resource_type}.c too.",
    "conditional_update": " One that creates its resource needs system/{resource_type}.c too.",
    "transaction": " Each entry needs the scope its own interaction needs, checked entry by "
    "entry before any runs.",
    "read_audit_event": " The client's role must be auditor as well.",
    "search_audit_events": " The client's role must be auditor as well.",
    "search_audit_events_post": " The client's role must be auditor as well.",
}
LETTERS = {
    "c": "create",
    "r": "read, vread and the history of",
    "u": "update and patch",
    "d": "delete",
    "s": "search",
}


def scopes_of(route: str) -> tuple[str, ...]:
    """The scopes route `route` needs, all of them (none: any valid token)."""
    return SCOPES.get(route, NO_SCOPE)


def scope_text(route: str) -> str:
    """A sentence saying which scopes the route needs, for its description."""
    needed = scopes_of(route)
    if not needed:
        why = WHY.get(route, " What the client may not read is left out.")
        return f"Scopes: any valid access token.{why}"
    listed = " and ".join(f"`{scope}`" for scope in needed)
    return f"Scopes: {listed} (or a wider scope granting the same letters).{WHY.get(route, '')}"


def declared_scopes() -> dict[str, str]:
    """Every scope the routes name, with what it grants, for the security scheme."""
    declared = {"system/*.cruds": "everything, on every type (system clients)"}
    for needed in SCOPES.values():
        for scope in needed:
            kind, letter = scope.removeprefix("system/").rsplit(".", 1)
            what = "resources of the type in the URL" if kind == "{resource_type}" else f"{kind}s"
            declared[scope] = f"{LETTERS[letter]} {what}"
    return dict(sorted(declared.items()))
