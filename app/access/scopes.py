"""SMART scopes: what a client may do to which resource types.

v2 syntax (`system/Flag.cruds`, `system/*.rs`), with v1's `.read`, `.write` and `.*` taken as
their v2 equivalents. A grant is a (resource type or `*`, interaction letter) pair.
Spec: https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
"""

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from app.errors import Forbidden, Invalid, Issue

if TYPE_CHECKING:
    from app.access.caller import Caller

LETTERS = "cruds"  # create, read (read, vread, history), update (and patch), delete, search
V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]{0,63})\.(\*|read|write|c?r?u?d?s?)$")

Grant = tuple[str, str]  # (resource type or "*", one of LETTERS)
Grants = frozenset[Grant]


def parse(text: str, known_types: Iterable[str]) -> Grants:
    """The grants a space-separated scope string names; 400 naming a scope it cannot read.
    Scopes outside `system/` (launch, openid, user/, patient/) grant nothing here."""
    known = set(known_types)
    grants: set[Grant] = set()
    for scope in text.split():
        if not scope.startswith("system/"):
            continue
        match = _SCOPE.match(scope)
        if match is None or not match.group(2):
            raise Invalid.of(f"scope {scope!r} is not a SMART system scope")
        resource_type, permissions = match.groups()
        if resource_type != "*" and resource_type not in known:
            raise Invalid.of(f"scope {scope!r} names an unknown resource type")
        for letter in V1.get(permissions, permissions):
            grants.add((resource_type, letter))
    return frozenset(grants)


def allows(grants: Grants, resource_type: str, letter: str) -> bool:
    """Whether `grants` cover `letter` on `resource_type`."""
    return (resource_type, letter) in grants or ("*", letter) in grants


def intersect(asked: Grants, registered: Grants) -> Grants:
    """What both cover: a client is granted what it asked for and is registered for."""
    both = {g for g in asked if _covers(registered, g)}
    both |= {g for g in registered if _covers(asked, g)}
    return frozenset(g for g in both if g[0] == "*" or ("*", g[1]) not in both)


def _covers(grants: Grants, grant: Grant) -> bool:
    resource_type, letter = grant
    return grant in grants or ("*", letter) in grants if resource_type != "*" else grant in grants


def render(grants: Grants) -> str:
    """The scope string of `grants` (v2 syntax, one scope per resource type, sorted)."""
    by_type: dict[str, set[str]] = {}
    for resource_type, letter in grants:
        by_type.setdefault(resource_type, set()).add(letter)
    return " ".join(
        f"system/{resource_type}.{''.join(c for c in LETTERS if c in letters)}"
        for resource_type, letters in sorted(by_type.items())
    )


def needed(resource_type: str, letter: str) -> str:
    """The scope a refusal names: the narrowest one that would allow the interaction."""
    return f"system/{resource_type}.{letter}"


# The interaction codes of http://hl7.org/fhir/R4/valueset-type-restful-interaction.html
Interaction = Literal[
    "read",
    "vread",
    "history-instance",
    "history-type",
    "search-type",
    "create",
    "update",
    "patch",
    "delete",
]
LETTERS_OF: dict[Interaction, str] = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "history-type": "r",
    "search-type": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}


def refusal(resource_type: str, interaction: Interaction, why: str, *expression: str) -> Forbidden:
    """403 naming the scope that would allow `interaction` on `resource_type`."""
    scope = needed(resource_type, LETTERS_OF[interaction])
    text = f"this client's scopes do not allow {interaction} on {resource_type}{why}"
    return Forbidden([Issue(f"{text}: it needs {scope}", "forbidden", expression)])


def require(
    caller: "Caller", resource_type: str, interaction: Interaction, *expression: str
) -> None:
    """403 unless the caller's scopes allow `interaction` on `resource_type` (SMART)."""
    if not caller.may(resource_type, LETTERS_OF[interaction]):
        raise refusal(resource_type, interaction, "", *expression)
