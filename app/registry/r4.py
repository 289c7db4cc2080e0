"""The search parameters of the hosted types: every one the R4 resource pages list, plus the
Flag parameters R4 lacks (status, category, code), defined here as custom parameters.

Spec: http://hl7.org/fhir/R4/searchparameter-registry.html
"""

from app.nhs import NHS_NUMBER_SYSTEM
from app.registry.model import SearchParam as P

HL7 = "http://hl7.org/fhir/SearchParameter"
PEOPLE = ("Patient", "Practitioner", "PractitionerRole", "RelatedPerson")


def _std(
    name: str,
    type_: str,
    paths: tuple[str, ...],
    description: str,
    expression: str,
    canonical: str,
    **extra: object,
) -> P:
    return P(
        name,
        type_,
        paths,
        description,
        expression,
        definition=f"{HL7}/{canonical}",
        **extra,  # type: ignore[arg-type]
    )


def _address(owner: str, shared: str) -> list[P]:
    base = f"{owner}.address"
    # A table, one search parameter per entry: formatted, each would take seven lines.
    # fmt: off
    return [
        _std("address", "string", (base,), "A server defined search that may match any of "
             "the string fields in the Address", base, f"{shared}-address"),
        _std("address-city", "string", (f"{base}.city",), "A city specified in an address",
             f"{base}.city", f"{shared}-address-city"),
        _std("address-country", "string", (f"{base}.country",),
             "A country specified in an address", f"{base}.country",
             f"{shared}-address-country"),
        _std("address-postalcode", "string", (f"{base}.postalCode",),
             "A postalCode specified in an address", f"{base}.postalCode",
             f"{shared}-address-postalcode"),
        _std("address-state", "string", (f"{base}.state",),
             "A state specified in an address", f"{base}.state", f"{shared}-address-state"),
        _std("address-use", "token", (f"{base}.use",), "A use code specified in an address",
             f"{base}.use", f"{shared}-address-use"),
    ]
    # fmt: on


def _telecom(owner: str, shared: str) -> list[P]:
    path = (f"{owner}.telecom",)
    # A table, one search parameter per entry: formatted, each would take seven lines.
    # fmt: off
    return [
        _std("email", "token", path, "A value in an email contact",
             f"{owner}.telecom.where(system='email')", f"{shared}-email",
             where=("system", "email")),
        _std("phone", "token", path, "A value in a phone contact",
             f"{owner}.telecom.where(system='phone')", f"{shared}-phone",
             where=("system", "phone")),
        _std("telecom", "token", path, "The value in any kind of telecom details",
             f"{owner}.telecom", f"{shared}-telecom"),
    ]
    # fmt: on


def _identifier(owner: str, canonical: str) -> P:
    return _std(
        "identifier",
        "token",
        (f"{owner}.identifier",),
        f"An identifier of the {owner}",
        f"{owner}.identifier",
        canonical,
    )


def _active(owner: str) -> P:
    return _std(
        "active",
        "token",
        (f"{owner}.active",),
        f"Whether the {owner} record is active",
        f"{owner}.active",
        f"{owner}-active",
    )


def _gender(owner: str, canonical: str) -> P:
    return _std(
        "gender",
        "token",
        (f"{owner}.gender",),
        "Gender of the person",
        f"{owner}.gender",
        canonical,
    )


def _birthdate(owner: str, canonical: str) -> P:
    return _std(
        "birthdate",
        "date",
        (f"{owner}.birthDate",),
        "The date of birth",
        f"{owner}.birthDate",
        canonical,
    )


# A table, one search parameter per entry: formatted, each would take seven lines.
# fmt: off
PATIENT = [
    _active("Patient"),
    *_address("Patient", "individual"),
    _birthdate("Patient", "individual-birthdate"),
    _std("death-date", "date", ("Patient.deceasedDateTime",),
         "The date of death has been provided and satisfies this search value",
         "(Patient.deceased as dateTime)", "Patient-death-date"),
    _std("deceased", "token", ("Patient.deceasedBoolean", "Patient.deceasedDateTime"),
         "This patient has been marked as deceased, or has a death date entered",
         "Patient.deceased.exists() and Patient.deceased != false", "Patient-deceased"),
    *_telecom("Patient", "individual"),
    _std("family", "string", ("Patient.name.family",), "A portion of the family name",
         "Patient.name.family", "individual-family"),
    _gender("Patient", "individual-gender"),
    _std("general-practitioner", "reference", ("Patient.generalPractitioner",),
         "Patient's nominated general practitioner", "Patient.generalPractitioner",
         "Patient-general-practitioner",
         targets=("Organization", "Practitioner", "PractitionerRole")),
    _std("given", "string", ("Patient.name.given",), "A portion of the given name",
         "Patient.name.given", "individual-given"),
    _identifier("Patient", "Patient-identifier"),
    _std("language", "token", ("Patient.communication.language",),
         "Language code (irrespective of use value)", "Patient.communication.language",
         "Patient-language"),
    _std("link", "reference", ("Patient.link.other",),
         "All patients linked to the given patient", "Patient.link.other", "Patient-link",
         targets=("Patient", "RelatedPerson")),
    _std("name", "string", ("Patient.name",), "A server defined search that may match any "
         "of the string fields in the HumanName", "Patient.name", "Patient-name"),
    _std("organization", "reference", ("Patient.managingOrganization",),
         "The organization that is the custodian of the patient record",
         "Patient.managingOrganization", "Patient-organization", targets=("Organization",)),
    _std("phonetic", "string", ("Patient.name",), "A portion of either family or given name "
         "using some kind of phonetic matching algorithm", "Patient.name",
         "individual-phonetic"),
]
# fmt: on

# A table, one search parameter per entry: formatted, each would take seven lines.
# fmt: off
ORGANIZATION = [
    _active("Organization"),
    *_address("Organization", "Organization"),
    _std("endpoint", "reference", ("Organization.endpoint",),
         "Technical endpoints providing access to services operated for the organization",
         "Organization.endpoint", "Organization-endpoint", targets=("Endpoint",)),
    _identifier("Organization", "Organization-identifier"),
    _std("name", "string", ("Organization.name", "Organization.alias"),
         "A portion of the organization's name or alias",
         "Organization.name | Organization.alias", "Organization-name"),
    _std("partof", "reference", ("Organization.partOf",),
         "An organization of which this organization forms a part", "Organization.partOf",
         "Organization-partof", targets=("Organization",)),
    _std("phonetic", "string", ("Organization.name",),
         "A portion of the organization's name using some kind of phonetic matching "
         "algorithm", "Organization.name", "Organization-phonetic"),
    _std("type", "token", ("Organization.type",), "A code for the type of organization",
         "Organization.type", "Organization-type"),
]
# fmt: on

FLAG_SUBJECTS = (
    "Group",
    "Location",
    "Medication",
    "Organization",
    "Patient",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
)

# A table, one search parameter per entry: formatted, each would take seven lines.
# fmt: off
FLAG = [
    _std("author", "reference", ("Flag.author",), "Flag creator", "Flag.author",
         "Flag-author",
         targets=("Device", "Organization", "Patient", "Practitioner", "PractitionerRole")),
    _std("date", "date", ("Flag.period",), "Time period when flag is active", "Flag.period",
         "clinical-date"),
    _std("encounter", "reference", ("Flag.encounter",), "Alert relevant during encounter",
         "Flag.encounter", "clinical-encounter", targets=("Encounter",)),
    _identifier("Flag", "Flag-identifier"),
    _std("patient", "reference", ("Flag.subject",), "The identity of a subject to list "
         "flags for", "Flag.subject.where(resolve() is Patient)", "clinical-patient",
         targets=("Patient",)),
    _std("subject", "reference", ("Flag.subject",), "The identity of a subject to list "
         "flags for", "Flag.subject", "Flag-subject", targets=FLAG_SUBJECTS),
    P("status", "token", ("Flag.status",), "active | inactive | entered-in-error",
      "Flag.status", custom=True, definition="SearchParameter/Flag-status"),
    P("category", "token", ("Flag.category",), "Clinical, administrative, safety... "
      "category of the flag", "Flag.category", custom=True,
      definition="SearchParameter/Flag-category"),
    P("code", "token", ("Flag.code",), "The coded flag (what the flag is about)",
      "Flag.code", custom=True, definition="SearchParameter/Flag-code"),
]
# fmt: on

# A table, one search parameter per entry: formatted, each would take seven lines.
# fmt: off
CONDITION = [
    _std("abatement-age", "quantity", ("Condition.abatementAge", "Condition.abatementRange"),
         "Abatement as age or age range", "Condition.abatement.as(Age) | "
         "Condition.abatement.as(Range)", "Condition-abatement-age"),
    _std("abatement-date", "date", ("Condition.abatementDateTime", "Condition.abatementPeriod"),
         "Date-related abatements (dateTime and period)", "Condition.abatement.as(dateTime) | "
         "Condition.abatement.as(Period)", "Condition-abatement-date"),
    _std("abatement-string", "string", ("Condition.abatementString",),
         "Abatement as a string", "Condition.abatement.as(string)",
         "Condition-abatement-string"),
    _std("asserter", "reference", ("Condition.asserter",), "Person who asserts this condition",
         "Condition.asserter", "Condition-asserter", targets=PEOPLE),
    _std("body-site", "token", ("Condition.bodySite",), "Anatomical location, if relevant",
         "Condition.bodySite", "Condition-body-site"),
    _std("category", "token", ("Condition.category",), "The category of the condition",
         "Condition.category", "Condition-category"),
    _std("clinical-status", "token", ("Condition.clinicalStatus",),
         "The clinical status of the condition", "Condition.clinicalStatus",
         "Condition-clinical-status"),
    _std("code", "token", ("Condition.code",), "Code for the condition", "Condition.code",
         "clinical-code"),
    _std("encounter", "reference", ("Condition.encounter",), "Encounter created as part of",
         "Condition.encounter", "Condition-encounter", targets=("Encounter",)),
    _std("evidence", "token", ("Condition.evidence.code",),
         "Manifestation/symptom", "Condition.evidence.code", "Condition-evidence"),
    _std("evidence-detail", "reference", ("Condition.evidence.detail",),
         "Supporting information found elsewhere", "Condition.evidence.detail",
         "Condition-evidence-detail"),
    _identifier("Condition", "clinical-identifier"),
    _std("onset-age", "quantity", ("Condition.onsetAge", "Condition.onsetRange"),
         "Onsets as age or age range", "Condition.onset.as(Age) | Condition.onset.as(Range)",
         "Condition-onset-age"),
    _std("onset-date", "date", ("Condition.onsetDateTime", "Condition.onsetPeriod"),
         "Date related onsets (dateTime and Period)", "Condition.onset.as(dateTime) | "
         "Condition.onset.as(Period)", "Condition-onset-date"),
    _std("onset-info", "string", ("Condition.onsetString",), "Onsets as a string",
         "Condition.onset.as(string)", "Condition-onset-info"),
    _std("patient", "reference", ("Condition.subject",), "Who has the condition?",
         "Condition.subject.where(resolve() is Patient)", "clinical-patient",
         targets=("Patient",)),
    _std("recorded-date", "date", ("Condition.recordedDate",),
         "Date record was first recorded", "Condition.recordedDate",
         "Condition-recorded-date"),
    _std("severity", "token", ("Condition.severity",), "The severity of the condition",
         "Condition.severity", "Condition-severity"),
    _std("stage", "token", ("Condition.stage.summary",), "Simple summary (disease specific)",
         "Condition.stage.summary", "Condition-stage"),
    _std("subject", "reference", ("Condition.subject",), "Who has the condition?",
         "Condition.subject", "Condition-subject", targets=("Group", "Patient")),
    _std("verification-status", "token", ("Condition.verificationStatus",),
         "unconfirmed | provisional | differential | confirmed | refuted | entered-in-error",
         "Condition.verificationStatus", "Condition-verification-status"),
]
# fmt: on

# A table, one search parameter per entry: formatted, each would take seven lines.
# fmt: off
RELATED_PERSON = [
    _active("RelatedPerson"),
    *_address("RelatedPerson", "individual"),
    _birthdate("RelatedPerson", "individual-birthdate"),
    *_telecom("RelatedPerson", "individual"),
    _gender("RelatedPerson", "individual-gender"),
    _identifier("RelatedPerson", "RelatedPerson-identifier"),
    _std("name", "string", ("RelatedPerson.name",), "A server defined search that may match "
         "any of the string fields in the HumanName", "RelatedPerson.name",
         "RelatedPerson-name"),
    _std("patient", "reference", ("RelatedPerson.patient",), "The patient this related "
         "person is related to", "RelatedPerson.patient", "RelatedPerson-patient",
         targets=("Patient",)),
    _std("phonetic", "string", ("RelatedPerson.name",), "A portion of name using some kind "
         "of phonetic matching algorithm", "RelatedPerson.name", "individual-phonetic"),
    _std("relationship", "token", ("RelatedPerson.relationship",),
         "The relationship between the patient and the relatedperson",
         "RelatedPerson.relationship", "RelatedPerson-relationship"),
    # Indexed by the server (storage.person_links), not from a path of the resource itself.
    P("linked-patient", "reference", (), "The related person's own Patient record: the live "
      "Patient holding the NHS number the RelatedPerson carries", "RelatedPerson.identifier"
      f".where(system='{NHS_NUMBER_SYSTEM}')", targets=("Patient",),
      custom=True, definition="SearchParameter/RelatedPerson-linked-patient"),
]
# fmt: on

# A table, one search parameter per entry: formatted, each would take seven lines.
# fmt: off
CARE_TEAM = [
    _std("category", "token", ("CareTeam.category",), "Type of team", "CareTeam.category",
         "CareTeam-category"),
    _std("date", "date", ("CareTeam.period",), "Time period team covers", "CareTeam.period",
         "clinical-date"),
    _std("encounter", "reference", ("CareTeam.encounter",), "Encounter created as part of",
         "CareTeam.encounter", "CareTeam-encounter", targets=("Encounter",)),
    _identifier("CareTeam", "clinical-identifier"),
    _std("participant", "reference", ("CareTeam.participant.member",), "Who is involved",
         "CareTeam.participant.member", "CareTeam-participant",
         targets=("CareTeam", "Organization", "Patient", *PEOPLE[1:])),
    _std("patient", "reference", ("CareTeam.subject",), "Who care team is for",
         "CareTeam.subject.where(resolve() is Patient)", "clinical-patient",
         targets=("Patient",)),
    _std("status", "token", ("CareTeam.status",),
         "proposed | active | suspended | inactive | entered-in-error", "CareTeam.status",
         "CareTeam-status"),
    _std("subject", "reference", ("CareTeam.subject",), "Who care team is for",
         "CareTeam.subject", "CareTeam-subject", targets=("Group", "Patient")),
]
# fmt: on

# A table, one search parameter per entry: formatted, each would take seven lines.
# fmt: off
COMMON = [
    _std("_id", "token", ("Resource.id",), "Logical id of this artifact", "Resource.id",
         "Resource-id"),
    _std("_lastUpdated", "date", ("Resource.meta.lastUpdated",),
         "When the resource version last changed", "Resource.meta.lastUpdated",
         "Resource-lastUpdated"),
    _std("_profile", "uri", ("Resource.meta.profile",), "Profiles this resource claims to "
         "conform to", "Resource.meta.profile", "Resource-profile"),
    _std("_source", "uri", ("Resource.meta.source",), "Identifies where the resource comes "
         "from (here: the client that wrote it)", "Resource.meta.source", "Resource-source"),
    _std("_security", "token", ("Resource.meta.security",), "Security Labels applied to "
         "this resource", "Resource.meta.security", "Resource-security"),
    _std("_tag", "token", ("Resource.meta.tag",), "Tags applied to this resource",
         "Resource.meta.tag", "Resource-tag"),
]
# fmt: on

# A table, one search parameter per entry: formatted, each would take seven lines.
# fmt: off
SUBSCRIPTION = [
    _std("contact", "token", ("Subscription.contact",), "Contact details for the subscription",
         "Subscription.contact", "Subscription-contact"),
    _std("criteria", "string", ("Subscription.criteria",), "The search rules used to "
         "determine when to send a notification (here: a topic's canonical URL)",
         "Subscription.criteria", "Subscription-criteria"),
    _std("payload", "token", ("Subscription.channel.payload",), "The mime-type of the "
         "notification payload", "Subscription.channel.payload", "Subscription-payload"),
    _std("status", "token", ("Subscription.status",), "The current state of the subscription",
         "Subscription.status", "Subscription-status"),
    _std("type", "token", ("Subscription.channel.type",), "The type of channel for the sent "
         "notifications", "Subscription.channel.type", "Subscription-type"),
    _std("url", "uri", ("Subscription.channel.endpoint",), "The uri that will receive the "
         "notifications", "Subscription.channel.endpoint", "Subscription-url"),
]
# fmt: on

TABLES = {
    "Patient": PATIENT,
    "Organization": ORGANIZATION,
    "Flag": FLAG,
    "Condition": CONDITION,
    "RelatedPerson": RELATED_PERSON,
    "CareTeam": CARE_TEAM,
    "Subscription": SUBSCRIPTION,
}
