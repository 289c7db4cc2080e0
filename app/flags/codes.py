"""The safeguarding vocabulary, kept as data (`data/*.csv`): the project's code system of
safeguarding flag types (each with its source, and its SNOMED CT equivalent only where one is
confirmed), the reasons a flag is ended for, and the value sets built on them. Canonical URLs
sit under the configured canonical base (`Settings.canonical_base`).

Spec: http://hl7.org/fhir/R4/codesystem.html, http://hl7.org/fhir/R4/valueset.html
"""

import csv
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from app.access.endpoints import AllowedEndpoint, Network

DATA = Path(__file__).parent / "data"
SNOMED = "http://snomed.info/sct"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
SAFETY = "safety"

FLAG_TYPES = "safeguarding-flag-type"  # id of the code system and of its value set
REMOVAL_REASONS = "flag-removal-reason"  # id of the code system, its value set and extension
CARE_TEAM_ROLES = "care-team-role"  # id of the code system and value set of CareTeam roles
LEAD_PROFESSIONAL = "lead-professional"  # the role of a child's one active lead
RECORDING_ORGANIZATION = "recording-organization"  # extension: who recorded a Condition
RESPONSIBLE_LOCAL_AUTHORITY = "responsible-local-authority"  # extension on a child's Patient
WRITTEN_BY = "written-by-organization"  # meta extension: whose client wrote a version
GSS_CODE = "gss-code"  # ONS GSS codes of local authorities: no official FHIR system exists

# Flag types the rules and the summary single out (codes of the project code system).
ELECTIVE_HOME_EDUCATION = "elective-home-education"
WAS_NOT_BROUGHT = "was-not-brought"
CHILD_PROTECTION_PLAN = "child-protection-plan"
UNBORN_CHILD_PROTECTION_PLAN = "unborn-child-protection-plan"
LOOKED_AFTER_CHILD = "looked-after-child"
DOMESTIC_ABUSE = "domestic-abuse-in-household"
PARENTAL_MENTAL_HEALTH = "parental-mental-health-concern"
PARENTAL_SUBSTANCE_MISUSE = "parental-substance-misuse"
ONE_ACTIVE_PER_CHILD = (ELECTIVE_HOME_EDUCATION, CHILD_PROTECTION_PLAN)
HOUSEHOLD_RISKS = (DOMESTIC_ABUSE, PARENTAL_MENTAL_HEALTH, PARENTAL_SUBSTANCE_MISUSE)


@dataclass(frozen=True, slots=True)
class Concept:
    """One code of a project code system; `snomed` only where the equivalence is confirmed."""

    code: str
    display: str
    definition: str
    source: str = ""
    snomed: str | None = None
    snomed_display: str | None = None


def _read(name: str) -> tuple[Concept, ...]:
    with (DATA / name).open(encoding="utf-8", newline="") as file:
        return tuple(
            Concept(
                code=row["code"],
                display=row["display"],
                definition=row["definition"],
                source=row.get("source") or "",
                snomed=row.get("snomed_code") or None,
                snomed_display=row.get("snomed_display") or None,
            )
            for row in csv.DictReader(file)
        )


@dataclass(frozen=True)
class Vocabulary:
    """The project's code systems and value sets, at their canonical URLs."""

    canonical_base: str
    flag_types: tuple[Concept, ...]
    removal_reasons: tuple[Concept, ...]
    care_team_roles: tuple[Concept, ...] = ()
    # Where Subscriptions may send notifications (settings; `access.endpoints`): none by default.
    endpoints: tuple[AllowedEndpoint, ...] = ()
    private_networks: tuple[Network, ...] = ()

    def url(self, kind: str, artefact: str) -> str:
        """The canonical URL of a project artefact (`CodeSystem`, `ValueSet`, ...)."""
        return f"{self.canonical_base}/{kind}/{artefact}"

    @property
    def flag_type_system(self) -> str:
        """The code system of safeguarding flag types."""
        return self.url("CodeSystem", FLAG_TYPES)

    @property
    def removal_reason_system(self) -> str:
        """The code system of the reasons a flag is ended for."""
        return self.url("CodeSystem", REMOVAL_REASONS)

    @property
    def care_team_role_system(self) -> str:
        """The code system of the roles a CareTeam participant takes (the lead professional)."""
        return self.url("CodeSystem", CARE_TEAM_ROLES)

    @property
    def removal_reason_extension(self) -> str:
        """The extension on a Flag that says why it was ended."""
        return self.url("StructureDefinition", REMOVAL_REASONS)

    @property
    def recording_organization_extension(self) -> str:
        """The extension on a Condition naming the Organization that recorded it (R4's
        Condition has no element for it; the summary compares services by it)."""
        return self.url("StructureDefinition", RECORDING_ORGANIZATION)

    def recorded_by(self, condition: dict[str, Any]) -> Any:
        """The valueReference of a Condition's first recording-organization extension."""
        extensions = condition.get("extension")
        for extension in extensions if isinstance(extensions, list) else []:
            if isinstance(extension, dict) and (
                extension.get("url") == self.recording_organization_extension
            ):
                return extension.get("valueReference")
        return None

    @property
    def responsible_local_authority_extension(self) -> str:
        """The extension on a child's Patient naming a local authority responsible for them."""
        return self.url("StructureDefinition", RESPONSIBLE_LOCAL_AUTHORITY)

    def responsible_authorities(self, patient: dict[str, Any]) -> list[Any]:
        """The valueReference of each responsible-local-authority extension of a Patient."""
        extensions = patient.get("extension")
        return [
            extension.get("valueReference")
            for extension in (extensions if isinstance(extensions, list) else [])
            if isinstance(extension, dict)
            and extension.get("url") == self.responsible_local_authority_extension
        ]

    def client_source(self, client_id: str) -> str:
        """The `meta.source` of what a client writes: the client, under the canonical base."""
        return self.url("clients", client_id)

    @property
    def written_by_extension(self) -> str:
        """The `meta` extension naming the Organization of the client that wrote a version."""
        return self.url("StructureDefinition", WRITTEN_BY)

    @property
    def gss_system(self) -> str:
        """The identifier system of local authorities' ONS GSS codes (a project URL)."""
        return self.url("Id", GSS_CODE)

    @cached_property
    def _flag_type_index(self) -> dict[tuple[Any, Any], str]:
        """(system, code) -> project flag type, for our codes and their SNOMED equivalents."""
        index: dict[tuple[Any, Any], str] = {}
        for concept in self.flag_types:
            index[(self.flag_type_system, concept.code)] = concept.code
            if concept.snomed is not None:
                index[(SNOMED, concept.snomed)] = concept.code
        return index

    def types_of(self, concept: Any) -> frozenset[str]:
        """Every project flag type a CodeableConcept's codings code (by our code or a SNOMED
        equivalent); a valid safeguarding flag codes exactly one."""
        index = self._flag_type_index
        found = (index.get((c.get("system"), c.get("code"))) for c in _codings(concept))
        return frozenset(t for t in found if t is not None)

    def flag_type(self, concept: Any) -> str | None:
        """The one project flag type a CodeableConcept codes; None for none, or for several
        (a flag records one thing)."""
        types = self.types_of(concept)
        return next(iter(types)) if len(types) == 1 else None

    def removal_reason(self, concept: Any) -> str | None:
        """The removal reason a CodeableConcept codes, if it is one of ours."""
        codes = {c.code for c in self.removal_reasons}
        for coding in _codings(concept):
            if coding.get("system") == self.removal_reason_system and coding.get("code") in codes:
                return str(coding["code"])
        return None


def _codings(concept: Any) -> list[dict[str, Any]]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return [c for c in codings if isinstance(c, dict)] if isinstance(codings, list) else []


@cache
def vocabulary(canonical_base: str) -> Vocabulary:
    """The vocabulary with its artefacts under `canonical_base` (no trailing slash)."""
    return Vocabulary(
        canonical_base.rstrip("/"),
        _read("safeguarding_flag_types.csv"),
        _read("flag_removal_reasons.csv"),
        _read("care_team_roles.csv"),
    )
