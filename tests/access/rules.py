"""The access rules as plain Python over a known population: the oracle the access tests
compare the server with. Independent of the SQL: it reads the resources as written.

- `system` sees everything; `auditor` nothing of these types.
- `health` sees every resource not labelled restricted, and restricted ones its own
  Organization authored.
- `local-authority` sees Organizations, what its Organization authored, and everything about
  a child it is responsible for (named by the child's responsible-local-authority extension,
  or author of an active Flag about the child); an exact NHS-number Patient search shows that
  one Patient too.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.factories import NHS

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
RESTRICTED_LABEL = {"system": CONFIDENTIALITY, "code": "R"}
TYPES = ("Patient", "Flag", "Condition", "RelatedPerson", "Organization")
Key = tuple[str, str]  # (resource type, id)

# The reference search parameters the tests use, as the paths they follow.
REFERENCES = {
    ("Flag", "subject"): "subject",
    ("Flag", "patient"): "subject",
    ("Flag", "author"): "author",
    ("Condition", "subject"): "subject",
    ("Condition", "patient"): "subject",
    ("RelatedPerson", "patient"): "patient",
    ("Patient", "organization"): "managingOrganization",
    ("Organization", "partof"): "partOf",
}


def restricted(body: dict[str, Any]) -> dict[str, Any]:
    """`body` labelled restricted (meta.security R)."""
    return body | {"meta": {"security": [RESTRICTED_LABEL]}}


def _target(reference: Any) -> Key | None:
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    kind, _, logical_id = reference["reference"].rpartition("/")
    return (kind.rsplit("/", 1)[-1], logical_id) if kind else None


@dataclass(frozen=True)
class Res:
    """A stored resource as written, and the client Organization that created it."""

    body: dict[str, Any]
    creator: str | None = None

    @property
    def type(self) -> str:
        return str(self.body["resourceType"])

    @property
    def id(self) -> str:
        return str(self.body["id"])

    @property
    def key(self) -> Key:
        return (self.type, self.id)

    def refs(self, param: str) -> list[Key]:
        """What this resource's reference search parameter `param` points at."""
        element = REFERENCES.get((self.type, param))
        value = self.body.get(element) if element else None
        found = [_target(v) for v in (value if isinstance(value, list) else [value])]
        keys = [k for k in found if k is not None]
        return [k for k in keys if k[0] == "Patient"] if param == "patient" else keys

    def all_refs(self) -> set[Key]:
        return {k for (kind, param) in REFERENCES if kind == self.type for k in self.refs(param)}

    @property
    def restricted(self) -> bool:
        labels = self.body.get("meta", {}).get("security", [])
        return any(
            label.get("system") == CONFIDENTIALITY and label.get("code") == "R" for label in labels
        )

    @property
    def nhs(self) -> str | None:
        for identifier in self.body.get("identifier", []):
            if identifier.get("system") == NHS:
                return str(identifier["value"])
        return None


@dataclass(frozen=True, slots=True)
class Who:
    """A caller as the rules see it: role and Organization id."""

    name: str
    role: str
    org: str | None


@dataclass
class World:
    """The whole population, and the canonical extension URLs it was written with."""

    resources: list[Res] = field(default_factory=list)
    responsible_extension: str = ""
    recording_extension: str = ""
    local_authorities: frozenset[str] = frozenset()

    def add(self, resource: Res) -> Res:
        self.resources.append(resource)
        return resource

    def of(self, resource_type: str) -> list[Res]:
        return [r for r in self.resources if r.type == resource_type]

    def get(self, key: Key) -> Res | None:
        return next((r for r in self.resources if r.key == key), None)

    def author(self, r: Res) -> str | None:
        """The Organization that authored a resource, as the rules define it."""
        if r.type == "Flag":
            target = _target(r.body.get("author"))
            return target[1] if target and target[0] == "Organization" else None
        if r.type == "Condition":
            for extension in r.body.get("extension", []):
                if extension.get("url") == self.recording_extension:
                    target = _target(extension.get("valueReference"))
                    return target[1] if target and target[0] == "Organization" else None
            return None
        return r.creator

    def child_of(self, r: Res) -> str | None:
        """The Patient a resource is about (the Patient itself for a Patient)."""
        if r.type == "Patient":
            return r.id
        element = {"Flag": "subject", "Condition": "subject", "RelatedPerson": "patient"}
        target = _target(r.body.get(element[r.type])) if r.type in element else None
        return target[1] if target and target[0] == "Patient" else None

    def responsible(self, org: str | None) -> set[str]:
        """The children `org` is a responsible local authority for."""
        children = set()
        for patient in self.of("Patient"):
            for extension in patient.body.get("extension", []):
                if extension.get("url") == self.responsible_extension:
                    target = _target(extension.get("valueReference"))
                    if target == ("Organization", org):
                        children.add(patient.id)
        for flag in self.of("Flag"):
            child = self.child_of(flag)
            if flag.body.get("status") == "active" and self.author(flag) == org and child:
                children.add(child)
        return children

    def visible(self, who: Who, r: Res, nhs: str | None = None) -> bool:
        """Whether `who` may see `r`; `nhs`: the exact NHS number of a Patient search."""
        if who.role == "system":
            return True
        if who.role == "health":
            return not r.restricted or self.author(r) == who.org
        if who.role == "local-authority":
            if r.type == "Organization" or self.author(r) == who.org:
                return True
            if nhs is not None and r.type == "Patient" and r.nhs == nhs:
                return True
            child = self.child_of(r)
            return child is not None and child in self.responsible(who.org)
        return False

    def may_change(self, who: Who, r: Res) -> bool:
        """Whether `who` may update or delete `r` (one it can see): system clients anything;
        others what their organisation authored, never an Organization (the directory)."""
        if who.role == "system":
            return True
        return r.type != "Organization" and self.author(r) == who.org

    def seen(self, who: Who, among: Iterable[Res], nhs: str | None = None) -> set[Key]:
        return {r.key for r in among if self.visible(who, r, nhs)}

    def hidden_ids(self, who: Who) -> set[str]:
        """Ids `who` may not see that no resource it may see names: none may appear anywhere
        in an answer to it."""
        shown = [r for r in self.resources if self.visible(who, r)]
        named = {key[1] for r in shown for key in r.all_refs()}
        named |= {self.author(r) or "" for r in shown}
        named.add(who.org or "")  # a client knows its own organisation
        return {r.id for r in self.resources if not self.visible(who, r)} - named

    def referenced(self, sources: Iterable[Key], param: str, target: str | None) -> set[Key]:
        """What the `param` references of `sources` point at (of type `target` if given)."""
        found = set()
        for key in sources:
            r = self.get(key)
            if r is not None:
                found |= {k for k in r.refs(param) if target is None or k[0] == target}
        return found

    def referencing(self, targets: Iterable[Key], source: str, param: str) -> set[Key]:
        """The `source` resources whose `param` references one of `targets`."""
        wanted = set(targets)
        return {r.key for r in self.of(source) if wanted & set(r.refs(param))}

    def included(
        self,
        visible: Callable[[Res], bool],
        matches: set[Key],
        includes: list["Rule"],
        revincludes: list["Rule"],
    ) -> set[Key]:
        """Matches with what `_include` and `_revinclude` add, each only if `visible`:
        non-iterate rules from the matches, iterate rules again from everything added until
        nothing more is (http://hl7.org/fhir/R4/search.html#include)."""

        def shown(keys: set[Key]) -> set[Key]:
            return {k for k in keys if (r := self.get(k)) is not None and visible(r)}

        def step(base: set[Key], iterate_only: bool) -> set[Key]:
            added: set[Key] = set()
            for source, param, target, iterate in includes:
                if iterate or not iterate_only:
                    added |= self.referenced({k for k in base if k[0] == source}, param, target)
            for source, param, _, iterate in revincludes:
                if iterate or not iterate_only:
                    added |= self.referencing(base, source, param)
            return shown(added)

        found = matches | step(matches, False)
        while more := step(found, True) - found:
            found |= more
        return found


# An include rule: (source type, reference parameter, target type or None, iterate)
Rule = tuple[str, str, str | None, bool]
