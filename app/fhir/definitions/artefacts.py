"""The safeguarding vocabulary (`flags.codes.Vocabulary`) as read-only FHIR CodeSystem and
ValueSet resources, built once per app with the codes each holds; the parameters of the search over
them and the answer of `$validate-code` (pure functions; `fhir.terminology` serves them).

Spec: http://hl7.org/fhir/R4/codesystem.html, http://hl7.org/fhir/R4/valueset.html
"""

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from app.fhir.definitions.selection import Parameter, Table
from app.fhir.elements import SUBSETTED
from app.flags.codes import (
    CARE_TEAM_ROLES,
    FLAG_TYPES,
    REMOVAL_REASONS,
    SNOMED,
    Concept,
    Vocabulary,
)
from app.registry import COMMON_PARAMS, SearchParam

CODE_SYSTEM, VALUE_SET = "CodeSystem", "ValueSet"
KINDS = (CODE_SYSTEM, VALUE_SET)
INTERACTIONS = ("read", "search-type")
VERSION = "0.1.0"  # business version of the artefacts: raise it when a code or display changes
PUBLISHER = "safeguard-fhir"
PUBLICATION_STATUS = "http://hl7.org/fhir/publication-status"
HL7 = "http://hl7.org/fhir/SearchParameter"
OPERATION = "http://hl7.org/fhir/OperationDefinition"

Member = tuple[str, str]  # (system, code)

# The parameters of `GET /CodeSystem` and `GET /ValueSet`; HL7 defines each for both types. A
# status may name its system; `terminology` handles the result parameters skipped here.
SEARCH = Table(
    (
        Parameter(COMMON_PARAMS["_id"], element="id"),
        Parameter(
            SearchParam(
                "url",
                "uri",
                (),
                "The uri that identifies the code system or value set",
                "CodeSystem.url | ValueSet.url",
                definition=f"{HL7}/conformance-url",
            ),
            element="url",
        ),
        Parameter(
            SearchParam(
                "name",
                "string",
                (),
                "Computationally friendly name",
                "CodeSystem.name | ValueSet.name",
                definition=f"{HL7}/conformance-name",
            ),
            element="name",
            modifiers=("exact", "contains"),
        ),
        Parameter(
            SearchParam(
                "status",
                "token",
                (),
                "The current status (active)",
                "CodeSystem.status | ValueSet.status",
                definition=f"{HL7}/conformance-status",
            ),
            element="status",
            system=PUBLICATION_STATUS,
        ),
        Parameter(
            SearchParam(
                "version",
                "token",
                (),
                "The business version",
                "CodeSystem.version | ValueSet.version",
                definition=f"{HL7}/conformance-version",
            ),
            element="version",
        ),
    ),
    skipped_keys=frozenset(
        {"_count", "_cursor", "_summary", "_elements", "_total", "_format", "_pretty"}
    ),
)
# `_summary=true` keeps the isSummary elements, `_summary=text` and `_elements` the mandatory.
_SUMMARY_BOTH = frozenset(
    {"id", "meta", "implicitRules", "url", "identifier", "version", "name", "title", "status"}
    | {"experimental", "date", "publisher", "contact", "useContext", "jurisdiction"}
)
SUMMARY = {
    CODE_SYSTEM: _SUMMARY_BOTH
    | {"caseSensitive", "valueSet", "hierarchyMeaning", "compositional", "versionNeeded"}
    | {"content", "supplements", "count", "filter", "property"},
    VALUE_SET: _SUMMARY_BOTH | {"immutable"},
}
MANDATORY = {CODE_SYSTEM: frozenset({"status", "content"}), VALUE_SET: frozenset({"status"})}
ALWAYS_KEPT = frozenset({"resourceType", "id", "meta"})
SHOWN = 100  # characters of a client's value repeated in a message


@dataclass(frozen=True, slots=True)
class Artefact:
    """One published resource, the bytes a read sends, and its codes with their displays."""

    resource: dict[str, Any]
    body: bytes
    members: dict[Member, str | None]

    @property
    def kind(self) -> str:
        """CodeSystem or ValueSet."""
        return str(self.resource["resourceType"])

    @property
    def url(self) -> str:
        """Its canonical URL."""
        return str(self.resource["url"])

    @property
    def systems(self) -> frozenset[str]:
        """The code systems its codes come from."""
        return frozenset(system for system, _ in self.members)


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every artefact of one app, published at one instant (`meta.lastUpdated`)."""

    published_micros: int
    artefacts: dict[tuple[str, str], Artefact]  # (kind, id) -> artefact

    def of_kind(self, kind: str) -> list[Artefact]:
        """The artefacts of one type, in publication order."""
        return [artefact for (k, _), artefact in self.artefacts.items() if k == kind]

    def by_url(self, kind: str, url: str) -> Artefact | None:
        """The artefact of that type at that canonical URL, if any."""
        return next((a for a in self.of_kind(kind) if a.url == url), None)


def _header(kind: str, logical_id: str, url: str, published: str) -> dict[str, Any]:
    """The elements a code system and a value set share, down to `description`."""
    title = _TITLES[logical_id]
    summary = html.escape(f"{title}: {_DESCRIPTIONS[logical_id]}")
    return {
        "resourceType": kind,
        "id": logical_id,
        "meta": {"versionId": "1", "lastUpdated": published},
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{summary}</p></div>',
        },
        "url": url,
        "version": VERSION,
        "name": title.title().replace(" ", ""),
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": PUBLISHER,
        "description": _DESCRIPTIONS[logical_id],
    }


_TITLES = {
    FLAG_TYPES: "Safeguarding flag type",
    REMOVAL_REASONS: "Flag removal reason",
    CARE_TEAM_ROLES: "Care team role",
}
_DESCRIPTIONS = {
    FLAG_TYPES: "The kinds of child-safeguarding flag recorded here, each with the source that "
    "called for it, and its SNOMED CT equivalent where one is confirmed.",
    REMOVAL_REASONS: "Why a safeguarding flag was ended.",
    CARE_TEAM_ROLES: "The roles a participant takes in a child's CareTeam: the lead professional "
    "who coordinates the services around the child (a SNOMED CT equivalent only where one is "
    "confirmed: none is yet).",
}
_PROPERTIES = {
    "source": {
        "code": "source",
        "type": "string",
        "description": "Where the need for this flag type was found",
    },
    "snomed-ct": {
        "code": "snomed-ct",
        "uri": SNOMED,
        "type": "Coding",
        "description": "The confirmed SNOMED CT equivalent of this code",
    },
}


def _snomed(concept: Concept) -> dict[str, str]:
    assert concept.snomed is not None
    coding = {"system": SNOMED, "code": concept.snomed}
    return coding | ({"display": concept.snomed_display} if concept.snomed_display else {})


def _concept(concept: Concept) -> dict[str, Any]:
    """One CodeSystem.concept, with its `source` and `snomed-ct` properties when it has them."""
    rendered: dict[str, Any] = {"code": concept.code, "display": concept.display}
    if concept.definition:
        rendered["definition"] = concept.definition
    properties: list[dict[str, Any]] = []
    if concept.source:
        properties.append({"code": "source", "valueString": concept.source})
    if concept.snomed:
        properties.append({"code": "snomed-ct", "valueCoding": _snomed(concept)})
    return rendered | ({"property": properties} if properties else {})


def code_system(
    logical_id: str, url: str, concepts: Sequence[Concept], published: str
) -> dict[str, Any]:
    """A complete, case-sensitive CodeSystem of `concepts`. Spec: codesystem.html"""
    resource = _header(CODE_SYSTEM, logical_id, url, published)
    resource |= {"caseSensitive": True, "content": "complete", "count": len(concepts)}
    used = {"source": any(c.source for c in concepts), "snomed-ct": any(c.snomed for c in concepts)}
    if declared := [_PROPERTIES[code] for code, present in used.items() if present]:
        resource["property"] = declared
    resource["concept"] = [_concept(concept) for concept in concepts]
    return resource


def value_set(
    logical_id: str, url: str, system: str, concepts: Sequence[Concept], published: str
) -> dict[str, Any]:
    """A ValueSet of the whole of `system`, plus the SNOMED CT equivalents of its concepts,
    with its expansion. Spec: valueset.html"""
    resource = _header(VALUE_SET, logical_id, url, published)
    includes: list[dict[str, Any]] = [{"system": system}]
    contains = [{"system": system, "code": c.code, "display": c.display} for c in concepts]
    snomed = {c.snomed: _snomed(c) for c in concepts if c.snomed}  # one entry per SNOMED code
    if snomed:
        includes.append(
            {"system": SNOMED, "concept": [_without(s, "system") for s in snomed.values()]}
        )
        contains += snomed.values()
    expansion = {"timestamp": published, "total": len(contains), "contains": contains}
    return resource | {"compose": {"include": includes}, "expansion": expansion}


def _without(mapping: dict[str, str], key: str) -> dict[str, str]:
    return {k: v for k, v in mapping.items() if k != key}


def _artefact(resource: dict[str, Any], members: dict[Member, str | None]) -> Artefact:
    return Artefact(resource, orjson.dumps(resource), members)


def _members(system: str, concepts: Sequence[Concept]) -> dict[Member, str | None]:
    return {(system, concept.code): concept.display for concept in concepts}


def catalogue(vocabulary: Vocabulary, published: str, published_micros: int) -> Catalogue:
    """The code systems and value sets of `vocabulary`, stamped as published at `published`."""
    artefacts: dict[tuple[str, str], Artefact] = {}
    for logical_id, concepts in (
        (FLAG_TYPES, vocabulary.flag_types),
        (REMOVAL_REASONS, vocabulary.removal_reasons),
        (CARE_TEAM_ROLES, vocabulary.care_team_roles),
    ):
        system = vocabulary.url(CODE_SYSTEM, logical_id)
        own = _members(system, concepts)
        snomed = {(SNOMED, c.snomed): c.snomed_display for c in concepts if c.snomed}
        artefacts[(CODE_SYSTEM, logical_id)] = _artefact(
            code_system(logical_id, system, concepts, published), own
        )
        url = vocabulary.url(VALUE_SET, logical_id)
        artefacts[(VALUE_SET, logical_id)] = _artefact(
            value_set(logical_id, url, system, concepts, published), own | snomed
        )
    return Catalogue(published_micros, artefacts)


def shape(artefact: Artefact, summary: str | None, elements: tuple[str, ...] | None) -> bytes:
    """The bytes a search entry sends under `_summary`/`_elements` (search.html#summary), tagged
    SUBSETTED when elements were left out; `_elements` wins over `_summary`."""
    resource = artefact.resource
    if elements is not None:
        kept = ALWAYS_KEPT | MANDATORY[artefact.kind] | set(elements)
    elif summary in ("true", "count"):
        kept = ALWAYS_KEPT | SUMMARY[artefact.kind]
    elif summary == "text":
        kept = ALWAYS_KEPT | MANDATORY[artefact.kind] | {"text"}
    elif summary == "data":
        kept = frozenset(resource) - {"text"}
    else:
        return artefact.body
    shaped = {key: value for key, value in resource.items() if key in kept}
    if len(shaped) < len(resource):
        shaped["meta"] = resource["meta"] | {"tag": [SUBSETTED]}
    return orjson.dumps(shaped)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One coding to validate, and the parameter it came from (named in errors)."""

    system: str
    code: str
    display: str | None
    version: str | None
    where: str


def shown(text: str) -> str:
    """A client's value, quoted and cut short, for a message."""
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "...")


def _problem(artefact: Artefact, candidate: Candidate) -> str | None:
    """Why a candidate is not in the artefact, or None if it is."""
    system, code = candidate.system, candidate.code
    named = f"{artefact.kind} {artefact.url}"
    if system not in artefact.systems:
        return f"no code of {shown(system)} is in {named}"
    if (system, code) not in artefact.members:
        return f"the code {shown(code)} of {system} is not in {named}"
    if candidate.version not in (None, VERSION) and system != SNOMED:
        return f"version {shown(candidate.version or '')} of {system} is not known"
    return None


def validation(artefact: Artefact, candidates: list[Candidate]) -> dict[str, Any]:
    """$validate-code's out-parameters: result, a message if false or a display is not ours, and
    our display. Spec: http://hl7.org/fhir/R4/valueset-operation-validate-code.html"""
    problems, warnings, displays = [], [], []
    for candidate in candidates:
        problem = _problem(artefact, candidate)
        if problem is not None:
            problems.append(f"{candidate.where}: {problem}")
            continue
        display = artefact.members[(candidate.system, candidate.code)]
        if display is not None:
            displays.append(display)
        if display is not None and candidate.display not in (None, display):
            given, at = shown(candidate.display or ""), f"{candidate.system}#{candidate.code}"
            warnings.append(
                f"{candidate.where}: the display {given} does not match the "
                f"expected display {display!r} of {at}"
            )
    result = len(problems) < len(candidates)
    out: list[dict[str, Any]] = [{"name": "result", "valueBoolean": result}]
    if messages := warnings if result else problems:
        out.append({"name": "message", "valueString": "; ".join(messages)})
    if result and displays:
        out.append({"name": "display", "valueString": displays[0]})
    return {"resourceType": "Parameters", "parameter": out}
