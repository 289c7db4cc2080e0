"""The required bindings of the hosted types (terminologies.html#required) and their required
elements: fhir.resources checks structure, not codes, so `records.rules` checks these.

Spec: http://hl7.org/fhir/R4/terminologies.html#required
"""

GENDER = frozenset({"male", "female", "other", "unknown"})
IDENTIFIER_USE = frozenset({"usual", "official", "temp", "secondary", "old"})
NAME_USE = frozenset({"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"})
TELECOM_SYSTEM = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
TELECOM_USE = frozenset({"home", "work", "temp", "old", "mobile"})
ADDRESS_USE = frozenset({"home", "work", "temp", "old", "billing"})
ADDRESS_TYPE = frozenset({"postal", "physical", "both"})
NARRATIVE_STATUS = frozenset({"generated", "extensions", "additional", "empty"})

CLINICAL_STATUS = (
    "http://terminology.hl7.org/CodeSystem/condition-clinical",
    frozenset({"active", "recurrence", "relapse", "inactive", "remission", "resolved"}),
)
VERIFICATION_STATUS = (
    "http://terminology.hl7.org/CodeSystem/condition-ver-status",
    frozenset(
        {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"}
    ),
)

_PARTY_CODES: tuple[tuple[str, frozenset[str]], ...] = (
    ("identifier.use", IDENTIFIER_USE),
    ("name.use", NAME_USE),
    ("telecom.system", TELECOM_SYSTEM),
    ("telecom.use", TELECOM_USE),
    ("address.use", ADDRESS_USE),
    ("address.type", ADDRESS_TYPE),
    ("text.status", NARRATIVE_STATUS),
)

CODE_BINDINGS: dict[str, tuple[tuple[str, frozenset[str]], ...]] = {
    "Patient": (
        *_PARTY_CODES,
        ("gender", GENDER),
        ("contact.gender", GENDER),
        ("contact.telecom.system", TELECOM_SYSTEM),
        ("link.type", frozenset({"replaced-by", "replaces", "refer", "seealso"})),
    ),
    "RelatedPerson": (*_PARTY_CODES, ("gender", GENDER)),
    "Organization": (*_PARTY_CODES, ("contact.telecom.system", TELECOM_SYSTEM)),
    "Flag": (
        ("status", frozenset({"active", "inactive", "entered-in-error"})),
        ("identifier.use", IDENTIFIER_USE),
        ("text.status", NARRATIVE_STATUS),
    ),
    "Condition": (("identifier.use", IDENTIFIER_USE), ("text.status", NARRATIVE_STATUS)),
    "CareTeam": (
        ("status", frozenset({"proposed", "active", "suspended", "inactive", "entered-in-error"})),
        ("identifier.use", IDENTIFIER_USE),
        ("telecom.system", TELECOM_SYSTEM),
        ("telecom.use", TELECOM_USE),
        ("text.status", NARRATIVE_STATUS),
    ),
}

REQUIRED_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Flag": ("status", "code", "subject"),
    "Condition": ("subject",),
    "RelatedPerson": ("patient",),
    "CareTeam": ("subject",),
}
