"""Search by parameter type, table-driven, against the spec (http://hl7.org/fhir/R4/search.html).

Each test stores a small fixed population, then runs a table of (query, expected labels):
the ids of the `match` entries must be exactly the labelled resources. Every case runs, and a
failure lists each case that went wrong. Queries name ids as `{label}`.
"""

from collections.abc import Sequence
from typing import Any

import httpx

from tests import factories as f
from tests.http import create

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
MRN = "https://example.org/mrn"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
LOCAL_CODES = "https://example.org/codes"
UCUM = "http://unitsofmeasure.org"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CP_PLAN = "342191000000101"
LOOKED_AFTER = "764841000000100"

Table = Sequence[tuple[str, str]]


async def _failures(client: httpx.AsyncClient, table: Table, ids: dict[str, str]) -> list[str]:
    """Each case whose matches are not exactly its expected labels, described."""
    labels = {resource_id: label for label, resource_id in ids.items()}
    failures = []
    for query, expected in table:
        url = "/" + query.format(**ids) + "&_count=100"
        try:
            response = await client.get(url)
        except Exception as error:  # the app raised instead of answering: report, go on
            failures.append(f"{query}: raised {type(error).__name__}: {error}")
            continue
        body: dict[str, Any] = response.json()
        if response.status_code != 200 or body.get("type") != "searchset":
            issues = [i.get("diagnostics") for i in body.get("issue", [])]
            failures.append(f"{query}: HTTP {response.status_code} {issues}")
            continue
        got = {
            labels.get(entry["resource"]["id"], f"?{entry['resource']['id']}")
            for entry in body.get("entry", [])
            if entry["search"]["mode"] == "match"
        }
        if got != set(expected.split()):
            wanted = sorted(expected.split())
            failures.append(f"{query}: expected {wanted}, got {sorted(got)}")
    return failures


async def _refusals(client: httpx.AsyncClient, queries: Sequence[str]) -> list[str]:
    """Each query that is not refused with 400 and an OperationOutcome, described."""
    failures = []
    for query in queries:
        try:
            response = await client.get("/" + query)
        except Exception as error:
            failures.append(f"{query}: raised {type(error).__name__}: {error}")
            continue
        kind = response.json().get("resourceType")
        if response.status_code != 400 or kind != "OperationOutcome":
            failures.append(f"{query}: expected 400 OperationOutcome, got {response.status_code}")
    return failures


def _person(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **elements}


async def _store(client: httpx.AsyncClient, **resources: dict[str, Any]) -> dict[str, str]:
    """Create resources in order, returning their ids by label."""
    return {label: (await create(client, body))["id"] for label, body in resources.items()}


def _flag(subject: str, **elements: Any) -> dict[str, Any]:
    """A Flag on a subject with the given elements, and no period or category unless given."""
    body = f.flag(subject=subject)
    del body["period"], body["category"]
    return body | elements


def _removal(client: httpx.AsyncClient) -> tuple[str, str]:
    """The removal-reason extension url and `system|code` of 'plan ended' on this server."""
    base = str(client.base_url).rstrip("/")
    return (
        f"{base}/StructureDefinition/flag-removal-reason",
        f"{base}/CodeSystem/flag-removal-reason|plan-ended",
    )


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code} | ({"display": display} if display else {})
    return {"coding": [coding]}


TOKENS = [
    ("Patient?identifier=MRN-1", "amy dan"),
    (f"Patient?identifier={MRN}|MRN-1", "amy"),
    ("Patient?identifier=https://example.org/other|MRN-1", "dan"),
    ("Patient?identifier=|LOCAL-7", "cat"),
    ("Patient?identifier=|MRN-1", ""),
    ("Patient?identifier=LOCAL-7", "cat"),
    (f"Patient?identifier={MRN}|", "amy cat dan"),
    ("Patient?identifier=A\\,B", "cat"),
    ("Patient?identifier=A,B", ""),
    (f"Patient?identifier={MRN}|X\\|Y", "cat"),
    ("Patient?identifier=X\\|Y", "cat"),
    ("Patient?identifier=MRN-1&identifier=https://example.org/other|", "dan"),
    (f"Patient?identifier={f.NHS}|{{amy_nhs}}", "amy"),
    ("Patient?identifier=MRN-9", ""),
    (f"Patient?identifier:not={MRN}|MRN-1", "ben cat dan eve"),
    ("Patient?identifier:not=MRN-1", "ben cat eve"),
    ("Patient?identifier:text=medical", "amy"),
    (f"Patient?identifier:of-type={V2_0203}|MR|MRN-1", "amy"),
    (f"Patient?identifier:of-type={V2_0203}|MR|MRN-2", "dan"),
    (f"Patient?identifier:of-type={V2_0203}|MR|LOCAL-7", ""),
    (f"Patient?identifier:of-type={V2_0203}|NH|MRN-1", ""),
    ("Patient?identifier:missing=true", "eve"),
    ("Patient?identifier:missing=false", "amy ben cat dan"),
    ("Patient?active=true", "amy dan"),
    ("Patient?active=false", "ben"),
    ("Patient?active:not=true", "ben cat eve"),
    ("Patient?active:missing=true", "cat eve"),
    ("Patient?deceased=true", "dan"),
    ("Patient?deceased=false", "amy ben cat eve"),
    ("Patient?death-date=2020", "dan"),
    ("Patient?death-date:missing=true", "amy ben cat eve"),
    ("Patient?gender=female", "amy"),
    ("Patient?gender=male,other", "ben dan"),
    ("Patient?gender:not=male", "amy cat dan eve"),
    ("Patient?gender=male&gender=female", ""),
    ("Patient?gender:missing=true", "cat eve"),
    ("Patient?gender:missing=false", "amy ben dan"),
    ("Patient?email=amy@example.org", "amy"),
    ("Patient?email=ben@example.org", ""),
    ("Patient?email=07700900123", ""),
    ("Patient?phone=07700900123", "amy"),
    ("Patient?phone=07700900456", "ben"),
    ("Patient?phone=amy@example.org", ""),
    ("Patient?telecom=ben@example.org", "ben"),
    ("Patient?telecom=07700900123,ben@example.org", "amy ben"),
    ("Patient?email:missing=true", "ben cat dan eve"),
    ("Patient?telecom:missing=false", "amy ben"),
    ("Patient?language=en-GB", "amy"),
    ("Patient?language:text=english", "amy"),
    ("Patient?language:text=ENGLISH%20(UNITED", "amy"),
    ("Patient?language:text=anglais", "amy"),
    ("Patient?language:text=united", ""),
    ("Flag?status=active", "f_active"),
    ("Flag?status=inactive,entered-in-error", "f_inactive f_error"),
    ("Flag?status:not=active", "f_inactive f_error"),
    ("Flag?category=safety", "f_active f_inactive"),
    (f"Flag?category={FLAG_CATEGORY}|safety", "f_active f_inactive"),
    (f"Flag?category={FLAG_CATEGORY}|", "f_active f_inactive"),
    (f"Flag?category={LOCAL_CODES}|safety", "f_inactive"),
    ("Flag?category=admin", "f_inactive"),
    ("Flag?category:missing=true", "f_error"),
    ("Flag?category:text=safe", "f_active"),
    (f"Flag?code={CP_PLAN}", "f_active f_error"),
    (f"Flag?code={f.SNOMED}|{CP_PLAN}", "f_active"),
    (f"Flag?code={LOCAL_CODES}|{CP_PLAN}", "f_error"),
    (f"Flag?code={f.SNOMED}|", "f_active f_inactive"),
    (f"Flag?code:not={f.SNOMED}|{CP_PLAN}", "f_inactive f_error"),
    ("Flag?code:text=subject", "f_active"),
    ("Flag?code:text=cp%20plan", "f_active"),
    ("Flag?code:text=LOOKED%20after", "f_inactive"),
    ("Flag?code:text=protection", ""),  # starts-with on the whole text, as HAPI FHIR does
    ("Condition?evidence=e1", "c_full"),
    ("Condition?evidence:missing=true", "c_resolved"),
    ("Condition?stage=s1", "c_full"),
    (f"Condition?severity={f.SNOMED}|24484000", "c_full"),
    ("Condition?body-site=b1", "c_full"),
    ("Condition?category=problem-list-item", "c_full"),
    ("Condition?clinical-status=active", "c_full"),
    ("Condition?clinical-status=resolved", "c_resolved"),
    ("Condition?verification-status=confirmed", "c_full c_resolved"),
    (f"Condition?code={f.SNOMED}|14760008", "c_full c_resolved"),
    ("Condition?onset-info=about", "c_resolved"),
    ("Condition?abatement-string=last", "c_resolved"),
]


async def test_token_search_matches_the_spec(client: httpx.AsyncClient) -> None:
    mrn_type = _concept(V2_0203, "MR") | {"text": "Medical record number"}
    telecom_amy = [
        {"system": "email", "value": "amy@example.org"},
        {"system": "phone", "value": "07700900123"},
    ]
    telecom_ben = [
        {"system": "phone", "value": "07700900456"},
        {"system": "other", "value": "ben@example.org"},
    ]
    english = _concept("urn:ietf:bcp:47", "en-GB", "English (United Kingdom)")
    ids = await _store(
        client,
        amy=_person(
            identifier=[
                {"system": f.NHS, "value": f.nhs_number(1)},
                {"system": MRN, "value": "MRN-1", "type": mrn_type},
            ],
            active=True,
            gender="female",
            telecom=telecom_amy,
            communication=[{"language": english | {"text": "Anglais"}}],
        ),
        ben=_person(
            identifier=[{"system": f.NHS, "value": f.nhs_number(2)}],
            active=False,
            gender="male",
            telecom=telecom_ben,
            deceasedBoolean=False,
        ),
        cat=_person(
            identifier=[
                {"value": "LOCAL-7"},
                {"system": MRN, "value": "A,B"},
                {"system": MRN, "value": "X|Y"},
            ]
        ),
        dan=_person(
            identifier=[
                {"system": MRN, "value": "MRN-2", "type": _concept(V2_0203, "MR")},
                {"system": "https://example.org/other", "value": "MRN-1"},
            ],
            active=True,
            gender="other",
            deceasedDateTime="2020-01-01",
        ),
        eve=_person(name=[{"family": "Eve"}]),
    )
    amy = f"Patient/{ids['amy']}"
    cp_plan = _concept(f.SNOMED, CP_PLAN, "Subject to child protection plan")
    council = f"Organization/{(await _store(client, council=f.organization()))['council']}"
    ended = f.safeguarding_flag(
        subject=amy, author=council, status="inactive", end="2026-02-01", removal=_removal(client)
    )
    ids |= await _store(
        client,
        f_active=_flag(
            amy,
            status="active",
            category=[_concept(FLAG_CATEGORY, "safety", "Safety")],
            code=cp_plan | {"text": "CP plan"},
            author={"reference": council},
            period={"start": "2026-01-10"},
        ),
        f_inactive=_flag(
            amy,
            status="inactive",
            category=[
                {"coding": [{"system": FLAG_CATEGORY, "code": "admin"}]},
                {"coding": [{"system": LOCAL_CODES, "code": "safety"}]},
                {"coding": [{"system": FLAG_CATEGORY, "code": "safety"}]},
            ],
            code=_concept(f.SNOMED, LOOKED_AFTER, "Looked after child"),
            author={"reference": council},
            period=ended["period"],
            extension=ended["extension"],
        ),
        f_error=_flag(amy, status="entered-in-error", code=_concept(LOCAL_CODES, CP_PLAN)),
        c_full=f.condition(subject=amy)
        | {
            "severity": _concept(f.SNOMED, "24484000"),
            "bodySite": [_concept(f.SNOMED, "b1")],
            "evidence": [{"code": [_concept(f.SNOMED, "e1")]}],
            "stage": [{"summary": _concept(f.SNOMED, "s1")}],
            "category": [_concept(CONDITION_CATEGORY, "problem-list-item")],
        },
        c_resolved=f.condition(subject=amy)
        | {
            "clinicalStatus": _concept(CONDITION_CLINICAL, "resolved"),
            "onsetString": "About a year ago",
            "abatementString": "Last spring",
        },
    )
    ids["amy_nhs"] = f.nhs_number(1)
    failures = await _failures(client, TOKENS, ids)
    assert not failures, "\n".join(failures)


STRINGS = [
    ("Patient?family=smi", "smith smith_accent smithson"),
    ("Patient?family=SMITH", "smith smith_accent smithson"),
    ("Patient?family=śmith", "smith smith_accent smithson"),
    ("Patient?family=smith,jones", "smith smith_accent smithson jones"),
    ("Patient?family=mith", ""),
    ("Patient?family=smiths", "smithson"),
    ("Patient?family=van%20der", "berg"),
    ("Patient?family=VAN%20%20DER", "berg"),
    ("Patient?family=der", ""),
    ("Patient?family:exact=Smith", "smith"),
    ("Patient?family:exact=smith", ""),
    ("Patient?family:exact=Smi", ""),
    ("Patient?family:exact=Śmith", "smith_accent"),
    ("Patient?family:exact=van%20der%20Berg", "berg"),
    ("Patient?family:contains=mit", "smith smith_accent smithson"),
    ("Patient?family:contains=SON", "smithson"),
    ("Patient?family:contains=der%20b", "berg"),
    ("Patient?family:contains=x", ""),
    ("Patient?family:missing=true", "nameless"),
    (
        "Patient?family:missing=false",
        "smith smith_accent smithson jones smyth berg strasse vandyke renamed",
    ),
    ("Patient?family=strass", "strasse"),
    ("Patient?family=STRASSE", "strasse"),
    ("Patient?family:exact=Straße", "strasse"),
    ("Patient?family:exact=Strasse", ""),
    ("Patient?family:contains=asse", "strasse"),
    ("Patient?given=fiona", "strasse"),
    ("Patient?given=FI", "strasse"),
    ("Patient?family=van%20d", "berg"),
    ("Patient?family=vand", "vandyke"),
    ("Patient?given=emile", "jones"),
    ("Patient?given=jo", "smith"),
    ("Patient?given=amy&given=jo", "smith"),
    ("Patient?given=amy&given=ben", ""),
    ("Patient?given=amy,ben", "smith smith_accent"),
    ("Patient?given:exact=Émile", "jones"),
    ("Patient?given:exact=Emile", ""),
    ("Patient?name=smi", "smith smith_accent smithson"),
    ("Patient?name=miss", "smith"),
    ("Patient?name=jr", "jones"),
    ("Patient?name=emile%20jones", "jones"),
    ("Patient?name=ben", "smith_accent"),
    ("Patient?name:exact=Ben", "smith_accent"),
    ("Patient?name:contains=ONE", "jones"),
    ("Patient?name:missing=true", "nameless"),
    ("Patient?address=leeds", "smith"),
    ("Patient?address=1%20high", "smith"),
    ("Patient?address=west%20york", "smith"),
    ("Patient?address=england", "smith"),
    ("Patient?address=ls1", "smith"),
    ("Patient?address=uk", "smith"),
    ("Patient?address=flat%202", "jones"),
    ("Patient?address=yorkshire", "jones"),
    ("Patient?address=street", ""),
    ("Patient?address:contains=street", "smith"),
    (
        "Patient?address:missing=true",
        "smith_accent smithson smyth berg nameless strasse vandyke renamed",
    ),
    ("Patient?address-city=leeds", "smith"),
    ("Patient?address-city=high", ""),
    ("Patient?address-postalcode=ls1%204", "smith"),
    ("Patient?address-country=united", "jones"),
    ("Patient?address-state=eng", "smith"),
    ("Patient?address-use=home", "smith"),
    ("Patient?family=oldname", ""),
    ("Patient?family=newname", "renamed"),
    ("Patient?phonetic=Smyth", "smith smith_accent smyth"),
    ("Patient?phonetic=smith", "smith smith_accent smyth"),
    ("Patient?phonetic=Jonas", "jones"),
    ("Patient?phonetic=Brown", ""),
    ("Patient?phonetic=Aimee", "smith"),
    ("Patient?family=smith&gender=male", "smith_accent"),
    ("Organization?name=river", "riverside"),
    ("Organization?name=the%20old", "riverside"),
    ("Organization?name=smith\\,%20jones", "partners"),
    ("Organization?name=smith,river", "partners riverside"),
    ("Organization?name:exact=Riverside", ""),
]


async def test_string_search_matches_the_spec(client: httpx.AsyncClient) -> None:
    leeds = {
        "line": ["1 High Street"],
        "city": "Leeds",
        "district": "West Yorkshire",
        "state": "England",
        "postalCode": "LS1 4AP",
        "country": "UK",
        "use": "home",
    }
    york = {"text": "Flat 2, Rose Court, York", "state": "Yorkshire", "country": "United Kingdom"}
    ids = await _store(
        client,
        smith=_person(
            name=[{"family": "Smith", "given": ["Amy", "Jo"], "prefix": ["Miss"]}],
            address=[leeds],
            gender="female",
        ),
        smith_accent=_person(name=[{"family": "Śmith", "given": ["Ben"]}], gender="male"),
        smithson=_person(name=[{"family": "Smithson", "given": ["Cat"]}]),
        jones=_person(
            name=[
                {"family": "Jones", "given": ["Émile"], "suffix": ["Jr"], "text": "Émile Jones Jr"}
            ],
            address=[york],
        ),
        smyth=_person(name=[{"family": "Smyth", "given": ["Dan"]}]),
        berg=_person(name=[{"family": "van der Berg", "given": ["Eva"]}]),
        nameless=_person(gender="unknown"),
        strasse=_person(name=[{"family": "Straße", "given": ["ﬁona"]}]),
        vandyke=_person(name=[{"family": "Vandyke"}]),
        riverside=f.organization(name="Riverside Surgery") | {"alias": ["The Old Mill"]},
        partners=f.organization(ods="A81002", name="Smith, Jones & Co"),
        renamed=_person(name=[{"family": "Oldname"}]),
        deleted=_person(name=[{"family": "Smith"}], address=[leeds]),
    )
    renamed = _person(id=ids["renamed"], name=[{"family": "Newname"}])
    assert (await client.put(f"/Patient/{ids['renamed']}", json=renamed)).status_code == 200
    assert (await client.delete(f"/Patient/{ids['deleted']}")).status_code in (200, 204)
    failures = await _failures(client, STRINGS, ids)
    assert not failures, "\n".join(failures)


DATES = [
    ("Patient?birthdate=2015-03-01", "day"),
    ("Patient?birthdate=eq2015-03-01", "day"),
    ("Patient?birthdate=2015", "day new_year_eve month"),
    ("Patient?birthdate=2015-03", "day month"),
    ("Patient?birthdate=2015-03-01,2016", "day year"),
    ("Patient?birthdate=ne2015", "year older"),
    ("Patient?birthdate=ne2015-03-01", "new_year_eve month year older"),
    ("Patient?birthdate=gt2015-03-01", "new_year_eve month year"),
    ("Patient?birthdate=lt2015-03-01", "older"),
    ("Patient?birthdate=ge2015-03-01", "day new_year_eve month year"),
    ("Patient?birthdate=le2015-03-01", "day older"),
    ("Patient?birthdate=sa2015-03-01", "new_year_eve year"),
    ("Patient?birthdate=eb2015-03-01", "older"),
    ("Patient?birthdate=gt2015", "year"),
    ("Patient?birthdate=lt2016", "day new_year_eve month older"),
    ("Patient?birthdate=ge2016-01-01", "year"),
    ("Patient?birthdate=le2015-12-31", "day new_year_eve month older"),
    ("Patient?birthdate=sa2015", "year"),
    ("Patient?birthdate=eb2016", "day new_year_eve month older"),
    ("Patient?birthdate=eb2015-03-02", "day older"),
    ("Patient?birthdate=sa2015-02", "day new_year_eve month year"),
    ("Patient?birthdate=2015-03-01T10:00:00Z", ""),
    ("Patient?birthdate=gt2015-03-01T10:00:00Z", "day new_year_eve month year"),
    ("Patient?birthdate=lt2015-03-01T10:00:00%2B05:00", "day month older"),
    ("Patient?birthdate=lt2015-03-01T02:00:00%2B05:00", "older"),
    ("Patient?birthdate=lt2015-03-01T10:00:00", "day month older"),
    ("Patient?birthdate=lt2015,gt2015", "older year"),
    ("Patient?birthdate=ge2015&birthdate=lt2015-06", "day month"),
    ("Patient?birthdate:missing=true", "undated"),
    ("Patient?birthdate:missing=false", "day new_year_eve month year older"),
    ("Flag?date=2026-01-20", ""),
    ("Flag?date=2026", "closed"),
    ("Flag?date=ne2026", "ongoing ended"),
    ("Flag?date=gt2026-06-01", "ongoing"),
    ("Flag?date=lt2026-01-01", "ended"),
    ("Flag?date=ge2026-02-01", "closed ongoing"),
    ("Flag?date=le2026-01-15", "closed ended"),
    ("Flag?date=sa2026-02-15", "ongoing"),
    ("Flag?date=eb2026-03-01", "closed ended"),
    ("Flag?date:missing=true", "timeless"),
    ("Condition?onset-date=2020-05-17", "instant day_onset"),
    ("Condition?onset-date=2020", "instant day_onset year_period"),
    ("Condition?onset-date=2020-05", "instant day_onset"),
    ("Condition?onset-date=gt2020-06", "year_period"),
    ("Condition?onset-date=lt2020-05-17T10:30:00Z", "day_onset year_period"),
    ("Condition?onset-date=2020-05-17T12:30:00%2B02:00", "instant"),
    ("Condition?onset-date=sa2020-05-17", ""),
    ("Condition?onset-date=eb2021", "instant day_onset year_period"),
    ("Condition?onset-date:missing=true", "at_five"),
]

MALFORMED_DATES = [
    "Patient?birthdate=2015-13-01",
    "Patient?birthdate=xx2015",
    "Patient?birthdate=2015-02-30",
    "Patient?birthdate=gt",
    "Patient?_lastUpdated=gtyesterday",
    "Flag?date=2026-1-1",
]


async def test_date_search_compares_ranges_as_the_spec_defines(client: httpx.AsyncClient) -> None:
    ids = await _store(
        client,
        day=_person(birthDate="2015-03-01"),
        new_year_eve=_person(birthDate="2015-12-31"),
        month=_person(birthDate="2015-03"),
        year=_person(birthDate="2016"),
        older=_person(birthDate="2014-06-15"),
        undated=_person(),
    )
    child = f"Patient/{ids['day']}"
    condition = f.condition(subject=child)
    age = {"value": 5, "unit": "years", "system": UCUM, "code": "a"}
    ids |= await _store(
        client,
        closed=_flag(child, period={"start": "2026-01-10", "end": "2026-02-10"}),
        ongoing=_flag(child, period={"start": "2026-03-01"}),
        ended=_flag(child, period={"end": "2025-12-31"}),
        timeless=_flag(child),
        instant=condition | {"onsetDateTime": "2020-05-17T10:30:00Z"},
        day_onset=condition | {"onsetDateTime": "2020-05-17"},
        year_period=condition | {"onsetPeriod": {"start": "2020-01-01", "end": "2020-12-31"}},
        at_five=condition | {"onsetAge": age},
    )
    failures = await _failures(client, DATES, ids)
    failures += await _refusals(client, MALFORMED_DATES)
    assert not failures, "\n".join(failures)


REFERENCES = [
    ("Flag?patient=Patient/{amy}", "by_amy absolute versioned"),
    ("Flag?patient={amy}", "by_amy absolute versioned"),
    ("Flag?patient=http://test/fhir/Patient/{amy}", "by_amy absolute versioned"),
    ("Flag?patient={amy},{ben}", "by_amy absolute versioned on_ben"),
    ("Flag?subject=https://other.example/fhir/Patient/{amy}", "external"),
    ("Flag?patient=https://other.example/fhir/Patient/{amy}", "external"),
    ("Flag?subject:missing=true", ""),
    ("Flag?subject:missing=false", "by_amy absolute versioned on_ben on_surgery logical external"),
    ("Flag?patient={surgery}", ""),
    ("Flag?subject:Patient={amy}", "by_amy absolute versioned"),
    ("Flag?subject=Patient/{ben}", "on_ben"),
    ("Flag?subject=Organization/{surgery}", "on_surgery"),
    ("Flag?subject={surgery}", "on_surgery"),
    ("Flag?subject:Organization={surgery}", "on_surgery"),
    ("Flag?subject:Patient={surgery}", ""),
    ("Flag?author=Organization/{surgery}", "by_amy"),
    ("Flag?author={surgery}", "by_amy"),
    ("Flag?author:missing=true", "absolute versioned on_ben on_surgery logical external"),
    ("Flag?author:missing=false", "by_amy"),
    (f"Flag?subject:identifier={f.NHS}|{{ben_nhs}}", "logical"),
    ("Flag?subject:identifier={ben_nhs}", "logical"),
    (f"Flag?subject:identifier={f.NHS}|{{amy_nhs}}", ""),
    ("Flag?patient=Patient/{amy}&author:missing=true", "absolute versioned"),
    ("Condition?patient={amy}", "ill_amy"),
    ("Condition?subject:Patient={ben}", "ill_ben"),
    ("RelatedPerson?patient=Patient/{amy}", "father"),
    ("Patient?organization={surgery}", "amy"),
    ("Patient?general-practitioner=Organization/{surgery}", "ben"),
]


async def test_reference_search_matches_the_spec(client: httpx.AsyncClient) -> None:
    ids = await _store(client, surgery=f.organization())
    surgery = f"Organization/{ids['surgery']}"
    ids |= await _store(
        client,
        amy=f.patient(nhs=f.nhs_number(11)) | {"managingOrganization": {"reference": surgery}},
        ben=f.patient(nhs=f.nhs_number(12)) | {"generalPractitioner": [{"reference": surgery}]},
    )
    amy, ben = f"Patient/{ids['amy']}", f"Patient/{ids['ben']}"
    logical = {"identifier": {"system": f.NHS, "value": f.nhs_number(12)}, "display": "Ben"}
    ids |= await _store(
        client,
        by_amy=f.flag(subject=amy, author=surgery),
        absolute=f.flag(subject=f"http://test/fhir/{amy}"),
        versioned=f.flag(subject=f"{amy}/_history/1"),
        external=f.flag(subject=f"https://other.example/fhir/{amy}"),
        on_ben=f.flag(subject=ben),
        on_surgery=f.flag(subject=surgery),
        logical=f.flag(subject=ben) | {"subject": logical},
        ill_amy=f.condition(subject=amy),
        ill_ben=f.condition(subject=ben),
        father=f.related_person(patient=amy),
    )
    ids |= {"amy_nhs": f.nhs_number(11), "ben_nhs": f.nhs_number(12)}
    failures = await _failures(client, REFERENCES, ids)
    assert not failures, "\n".join(failures)


QUANTITIES = [
    ("Condition?onset-age=5", "five four_and_a_half five_05 five_49"),
    ("Condition?onset-age=eq5", "five four_and_a_half five_05 five_49"),
    ("Condition?onset-age=5.05", "five_05"),
    ("Condition?onset-age=5.0", "five"),
    ("Condition?onset-age=5.5", "five_49 five_and_a_half"),
    ("Condition?onset-age=ne5|http://unitsofmeasure.org|a", "five_and_a_half three two_9"),
    ("Condition?onset-age=ge5", "five five_05 five_49 five_and_a_half sixty_months"),
    ("Condition?onset-age=ge5|http://unitsofmeasure.org|a", "five five_05 five_49 five_and_a_half"),
    ("Condition?onset-age=gt5|http://unitsofmeasure.org|a", "five_05 five_49 five_and_a_half"),
    ("Condition?onset-age=gt5.49", "five_and_a_half sixty_months"),
    ("Condition?onset-age=lt3|http://unitsofmeasure.org|a", "two_9"),
    ("Condition?onset-age=le3||a", "three two_9"),
    ("Condition?onset-age=lt4.5", "three two_9"),
    ("Condition?onset-age=60|http://unitsofmeasure.org|mo", "sixty_months"),
    ("Condition?onset-age=60||mo", "sixty_months"),
    ("Condition?onset-age=5|http://unitsofmeasure.org|mo", ""),
    ("Condition?onset-age=3,60", "three two_9 sixty_months"),
    ("Condition?onset-age:missing=true", "no_onset"),
    (
        "Condition?onset-age:missing=false",
        "five four_and_a_half five_05 five_49 five_and_a_half three two_9 sixty_months",
    ),
]


async def test_quantity_search_uses_the_implied_precision(client: httpx.AsyncClient) -> None:
    ids = await _store(client, child=f.patient())
    condition = f.condition(subject=f"Patient/{ids['child']}")

    def onset(value: float, code: str = "a") -> dict[str, Any]:
        unit = "years" if code == "a" else "months"
        age = {"value": value, "unit": unit, "system": UCUM, "code": code}
        return condition | {"onsetAge": age}

    ids |= await _store(
        client,
        five=onset(5),
        four_and_a_half=onset(4.5),
        five_05=onset(5.05),
        five_49=onset(5.49),
        five_and_a_half=onset(5.5),
        three=onset(3),
        two_9=onset(2.9),
        sixty_months=onset(60, "mo"),
        no_onset=condition,
    )
    failures = await _failures(client, QUANTITIES, ids)
    failures += await _refusals(client, ["Condition?onset-age=five", "Condition?onset-age=gt"])
    assert not failures, "\n".join(failures)


UK_CORE = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"
TAGS = "https://example.org/tags"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"

COMMON = [
    ("Patient?_id={tagged}", "tagged"),
    ("Patient?_id={tagged},{plain}", "tagged plain"),
    ("Patient?_id=no-such-id", ""),
    ("Patient?_id={tagged}&_id={plain}", ""),
    ("Patient?_id:not={tagged}", "routine plain"),
    ("Patient?_tag=urgent", "tagged routine"),
    (f"Patient?_tag={TAGS}|urgent", "tagged"),
    ("Patient?_tag=|urgent", "routine"),
    (f"Patient?_tag={TAGS}|", "tagged routine"),
    ("Patient?_tag:not=urgent", "plain"),
    (f"Patient?_tag:not={TAGS}|urgent", "routine plain"),
    ("Patient?_tag:missing=true", "plain"),
    (f"Patient?_security={CONFIDENTIALITY}|R", "tagged"),
    ("Patient?_security=R", "tagged"),
    ("Patient?_security:missing=true", "routine plain"),
    (f"Patient?_profile={UK_CORE}", "tagged"),
    ("Patient?_profile=https://fhir.hl7.org.uk/StructureDefinition/UKCore", ""),
    ("Patient?_profile:missing=true", "plain"),
    ("Patient?_lastUpdated=gt{tagged_at}", "routine plain"),
    ("Patient?_lastUpdated=ge{routine_at}", "routine plain"),
    ("Patient?_lastUpdated=le{routine_at}", "tagged routine"),
    ("Patient?_lastUpdated=lt{routine_at}", "tagged"),
    ("Patient?_lastUpdated={routine_at}", "routine"),
    ("Patient?_lastUpdated={year}", "tagged routine plain"),
    ("Patient?_lastUpdated=lt2000", ""),
    ("Patient?_lastUpdated=gt2000-01-01T00:00:00Z", "tagged routine plain"),
]


async def test_common_parameters_search_id_meta_and_last_updated(
    client: httpx.AsyncClient,
) -> None:
    meta = {
        "tag": [{"system": TAGS, "code": "urgent"}],
        "security": [{"system": CONFIDENTIALITY, "code": "R"}],
        "profile": [UK_CORE],
    }
    routine_meta = {
        "tag": [{"system": TAGS, "code": "routine"}, {"code": "urgent"}],
        "profile": ["https://example.org/StructureDefinition/Other"],
    }
    ids: dict[str, str] = {}
    for label, body in (
        ("tagged", f.patient() | {"meta": meta}),
        ("routine", f.patient() | {"meta": routine_meta}),
        ("plain", f.patient()),
    ):
        stored = await create(client, body)
        ids[label] = stored["id"]
        ids[f"{label}_at"] = stored["meta"]["lastUpdated"].replace("+", "%2B")
    ids["year"] = ids["plain_at"][:4]
    failures = await _failures(client, COMMON, ids)
    assert not failures, "\n".join(failures)


CHAINS = [
    (f"Flag?patient.identifier={f.NHS}|{{amy_nhs}}", "amy_flag"),
    ("Flag?patient.identifier={ben_nhs}", "ben_flag"),
    (f"Flag?patient.identifier={f.NHS}|{{ben_nhs}},{{amy_nhs}}", "amy_flag ben_flag"),
    ("Flag?subject:Patient.family=smi", "amy_flag"),
    ("Flag?subject:Patient.family=jones,smith", "amy_flag ben_flag"),
    ("Flag?subject:Patient.family=nobody", ""),
    ("Flag?patient.family:exact=Smith", "amy_flag"),
    ("Flag?patient.family:exact=smith", ""),
    ("Flag?subject:Organization.name=river", "surgery_flag"),
    ("Flag?patient.gender=male&status=inactive", "ben_flag"),
    ("Flag?patient.gender=male&status=active", ""),
    ("Patient?_has:Flag:patient:code=wheelchair-user", "amy"),
    (f"Patient?_has:Flag:patient:code={f.SNOMED}|{LOOKED_AFTER}", "ben"),
    ("Patient?_has:Flag:patient:status=inactive", "ben"),
    ("Patient?_has:Flag:patient:status=active,inactive", "amy ben"),
    ("Patient?_has:Flag:patient:code=wheelchair-user&family=jones", ""),
    ("Patient?_has:RelatedPerson:patient:relationship=FTH", "amy"),
    (f"Patient?_has:RelatedPerson:patient:relationship={f.ROLE}|MTH", "ben"),
    ("Patient?_has:RelatedPerson:patient:relationship=GRMTH", ""),
    ("Patient?_has:Flag:patient:status=entered-in-error", ""),
    ("Flag?patient.organization.name=river", "amy_flag"),
    ("Flag?patient.organization.name=hill", ""),
    ("Organization?_has:Flag:subject:status=active", "surgery"),
]


async def test_chained_and_reverse_chained_search(client: httpx.AsyncClient) -> None:
    ids = await _store(client, surgery=f.organization(name="Riverside Surgery"))
    managed = {"managingOrganization": {"reference": f"Organization/{ids['surgery']}"}}
    ids |= await _store(
        client,
        amy=f.patient(nhs=f.nhs_number(21), family="Smith") | managed,
        ben=f.patient(nhs=f.nhs_number(22), family="Jones", given="Ben", gender="male"),
        cat=f.patient(nhs=f.nhs_number(23), family="Brown", given="Cat"),
    )
    amy, ben = f"Patient/{ids['amy']}", f"Patient/{ids['ben']}"
    ids |= await _store(
        client,
        amy_flag=f.flag(subject=amy),
        ben_flag=f.safeguarding_flag(
            subject=ben,
            author=f"Organization/{ids['surgery']}",
            status="inactive",
            code=LOOKED_AFTER,
            display="Looked after child",
            end="2026-02-01",
            removal=_removal(client),
        ),
        surgery_flag=f.flag(subject=f"Organization/{ids['surgery']}"),
        father=f.related_person(patient=amy),
        mother=f.related_person(patient=ben, relationship="MTH"),
        withdrawn=f.flag(subject=f"Patient/{ids['cat']}", status="entered-in-error"),
    )
    assert (await client.delete(f"/Flag/{ids['withdrawn']}")).status_code in (200, 204)
    ids |= {"amy_nhs": f.nhs_number(21), "ben_nhs": f.nhs_number(22)}
    failures = await _failures(client, CHAINS, ids)
    assert not failures, "\n".join(failures)


async def test_unknown_parameter_is_reported_and_ignored(client: httpx.AsyncClient) -> None:
    ids = await _store(client, smith=f.patient(), jones=f.patient(family="Jones"))
    response = await client.get("/Patient?family=smith&colour=red")
    assert response.status_code == 200
    entries = response.json().get("entry", [])
    assert {e["resource"]["id"] for e in entries if e["search"]["mode"] == "match"} == {
        ids["smith"]
    }
    outcomes = [e["resource"] for e in entries if e["search"]["mode"] == "outcome"]
    assert [o["resourceType"] for o in outcomes] == ["OperationOutcome"]
    assert outcomes[0]["issue"][0]["expression"] == ["colour"]


REFUSED = [
    "Patient?family:below=x",
    "Patient?family:text=x",
    "Patient?gender:exact=male",
    "Patient?gender:contains=mal",
    "Patient?birthdate:exact=2015",
    "Patient?birthdate:contains=2015",
    "Patient?family:missing=maybe",
    "Flag?patient:Organization=x",
    "Flag?date=about2026",
]


async def test_strict_handling_and_unsupported_modifiers_are_400(
    client: httpx.AsyncClient,
) -> None:
    strict = await client.get("/Patient?colour=red", headers={"prefer": "handling=strict"})
    failures = [] if strict.status_code == 400 else [f"strict: got {strict.status_code}"]
    failures += await _refusals(client, REFUSED)
    assert not failures, "\n".join(failures)
