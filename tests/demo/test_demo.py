"""The demo population: reproducible, valid by the write rules, showing every feature; seeded
through the real app (and the `safeguard` command) once, and never twice."""

import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from app import cli
from app.demo.population import Family, population
from app.demo.seeding import SeedFailed, seed, transaction
from app.flags import codes
from app.flags.codes import SNOMED, vocabulary
from app.nhs import ODS_SYSTEM, nhs_number_is_valid
from app.settings import Settings, get_settings
from tests.conftest import BASE

TODAY = date(2026, 6, 1)
VOCABULARY = vocabulary(BASE)
NHS = "https://fhir.nhs.uk/Id/nhs-number"
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
GSS = re.compile(r"E(06|08|09|10)\d{6}")
FATHERS, MOTHERS = {"FTH", "NFTH"}, {"MTH", "NMTH"}
HALF_SIBLINGS = {"HSIB", "HBRO", "HSIS"}
SIBLINGS = {"SIB", "NSIB", "STPSIB"} | HALF_SIBLINGS
ROLE_CODES = FATHERS | MOTHERS | SIBLINGS | {"STPFTH", "STPMTH"}


@cache
def groups(families: int = 40, seed_number: int = 1, today: date = TODAY) -> tuple[Family, ...]:
    """The Organizations, then each family's resources."""
    return tuple(population(families, seed_number, VOCABULARY, today))


def every(kind: str, families: int = 40) -> list[dict[str, Any]]:
    """Every generated resource of a type."""
    return [r for group in groups(families) for r in group if r["resourceType"] == kind]


def by_reference(families: int = 40) -> dict[str, dict[str, Any]]:
    """Every generated resource by `Type/id`."""
    return {f"{r['resourceType']}/{r['id']}": r for group in groups(families) for r in group}


def code_of(relative: dict[str, Any]) -> str:
    code: str = relative["relationship"][0]["coding"][0]["code"]
    return code


def kind_of(organisation: dict[str, Any]) -> str:
    text: str = organisation["type"][0]["text"]
    return text


def flag_type(flag: dict[str, Any]) -> str | None:
    return VOCABULARY.flag_type(flag["code"])


def references(value: Any) -> list[str]:
    """Every Reference.reference anywhere in a resource."""
    if isinstance(value, list):
        return [found for item in value for found in references(item)]
    if not isinstance(value, dict):
        return []
    here = [value["reference"]] if isinstance(value.get("reference"), str) else []
    return here + [found for item in value.values() for found in references(item)]


def test_the_same_seed_gives_the_same_resources_and_another_seed_others() -> None:
    first = list(population(12, 1, VOCABULARY, TODAY))
    assert first == list(population(12, 1, VOCABULARY, TODAY))
    other = list(population(12, 2, VOCABULARY, TODAY))
    assert other[0] == first[0]  # the organisations are shared by every seed
    assert all(mine != theirs for mine, theirs in zip(first[1:], other[1:], strict=True))


def test_ids_and_nhs_numbers_do_not_depend_on_today() -> None:
    later = groups(40, 1, TODAY + timedelta(days=400))
    assert [[r["id"] for r in g] for g in later] == [[r["id"] for r in g] for g in groups()]
    assert [[r.get("identifier") for r in g] for g in later] == [
        [r.get("identifier") for r in g] for g in groups()
    ]


def test_nhs_numbers_are_valid_unique_and_in_the_test_range() -> None:
    numbers = [i["value"] for p in every("Patient") for i in p["identifier"] if i["system"] == NHS]
    assert len(numbers) == len(every("Patient"))
    assert all(n.startswith("999") and nhs_number_is_valid(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)
    relatives = {i["value"] for r in every("RelatedPerson") for i in r.get("identifier", [])}
    assert relatives and relatives <= set(numbers)


def test_ids_are_unique_fhir_ids_and_every_reference_resolves() -> None:
    ids = [f"{r['resourceType']}/{r['id']}" for group in groups() for r in group]
    assert len(ids) == len(set(ids))
    assert all(FHIR_ID.fullmatch(i.split("/")[1]) for i in ids)
    known = set(ids)
    found = [ref for group in groups() for r in group for ref in references(r)]
    assert found and all(ref in known for ref in found)


def test_each_family_references_only_itself_and_the_organisations() -> None:
    organisations = {f"Organization/{r['id']}" for r in groups()[0]}
    for family in groups()[1:]:
        own = {f"{r['resourceType']}/{r['id']}" for r in family}
        assert family[0]["resourceType"] == "Patient"  # the seeder's already-there probe
        assert all(ref in own | organisations for r in family for ref in references(r))


def test_every_flag_obeys_the_write_rules() -> None:
    removal_codes = {c.code for c in VOCABULARY.removal_reasons}
    organisations, patients = by_reference(), {f"Patient/{p['id']}": p for p in every("Patient")}
    assert {f["status"] for f in every("Flag")} == {"active", "inactive"}
    for flag in every("Flag"):
        assert flag["category"] == [
            {"coding": [{"system": codes.FLAG_CATEGORY, "code": "safety", "display": "Safety"}]}
        ]
        assert flag_type(flag) is not None
        assert all(
            c["system"] == VOCABULARY.flag_type_system
            or (c["system"] == SNOMED and VOCABULARY.flag_type({"coding": [c]}) is not None)
            for c in flag["code"]["coding"]
        )
        assert flag["subject"]["reference"] in patients
        assert flag["author"]["reference"].startswith("Organization/")
        assert flag["author"]["reference"] in organisations
        start = flag["period"]["start"]
        assert patients[flag["subject"]["reference"]]["birthDate"] <= start <= TODAY.isoformat()
        if flag["status"] == "active":
            assert "end" not in flag["period"] and "extension" not in flag
            continue
        assert start < flag["period"]["end"] <= TODAY.isoformat()
        [extension] = flag["extension"]
        assert extension["url"] == VOCABULARY.removal_reason_extension
        assert VOCABULARY.removal_reason(extension["valueCodeableConcept"]) in removal_codes


def test_no_child_has_two_active_flags_of_a_one_per_child_type() -> None:
    active = Counter(
        (f["subject"]["reference"], flag_type(f))
        for f in every("Flag")
        if f["status"] == "active" and flag_type(f) in codes.ONE_ACTIVE_PER_CHILD
    )
    assert active and max(active.values()) == 1


def test_every_condition_has_its_statuses_and_recording_service() -> None:
    organisations = {f"Organization/{r['id']}" for r in groups()[0]}
    for condition in every("Condition"):
        assert condition["clinicalStatus"]["coding"][0]["system"].endswith("condition-clinical")
        assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
        [recorded_by] = condition["extension"]
        assert recorded_by["url"] == VOCABULARY.recording_organization_extension
        assert recorded_by["valueReference"]["reference"] in organisations


def test_patients_have_a_practice_and_an_address_in_their_local_authority() -> None:
    organisations = by_reference()
    councils = {o["address"][0]["district"] for o in groups()[0] if kind_of(o) == "Local authority"}
    for patient in every("Patient"):
        assert patient["gender"] in ("female", "male") and patient["birthDate"]
        [practice] = [organisations[g["reference"]] for g in patient["generalPractitioner"]]
        assert practice["type"][0]["text"] == "GP practice"
        [address] = patient["address"]
        assert address["district"] in councils
        assert address["district"] == practice["address"][0]["district"]


def test_organisations_have_ods_codes_and_councils_gss_codes() -> None:
    for organisation in groups()[0]:
        systems = {i["system"]: i["value"] for i in organisation["identifier"]}
        assert re.fullmatch(r"[A-Z0-9]{3,6}", systems[ODS_SYSTEM])
        if organisation["type"][0]["coding"][0]["code"] == "govt":
            assert GSS.fullmatch(systems[VOCABULARY.gss_system])
        else:
            assert VOCABULARY.gss_system not in systems
    kinds = Counter(o["type"][0]["text"] for o in groups()[0])
    assert kinds["Local authority"] >= 4 and kinds["GP practice"] > kinds["NHS trust"] >= 4


def patient_by_nhs_number() -> dict[str, str]:
    return {i["value"]: f"Patient/{p['id']}" for p in every("Patient") for i in p["identifier"]}


def test_siblings_are_recorded_on_both_sides() -> None:
    patient_of = patient_by_nhs_number()
    pairs = {
        (r["patient"]["reference"], patient_of[r["identifier"][0]["value"]])
        for r in every("RelatedPerson")
        if code_of(r) in SIBLINGS
    }
    assert pairs and all((second, first) in pairs for first, second in pairs)


def _relatives_by_child() -> dict[str, list[dict[str, Any]]]:
    found = defaultdict(list)
    for relative in every("RelatedPerson"):
        found[relative["patient"]["reference"]].append(relative)
    return found


def test_the_population_has_every_kind_of_family() -> None:
    relatives = _relatives_by_child()
    codes_seen = {code_of(r) for r in every("RelatedPerson")}
    assert codes_seen == ROLE_CODES and len(ROLE_CODES) == 12
    fathers = [r for r in every("RelatedPerson") if code_of(r) in FATHERS]
    assert any("identifier" in f for f in fathers)  # a father with his own Patient record
    assert any("identifier" not in f for f in fathers)  # a father without an NHS number
    assert any(not {code_of(r) for r in found} & FATHERS for found in relatives.values())
    district = {f"Patient/{p['id']}": p["address"][0]["district"] for p in every("Patient")}
    across = [
        r
        for r in every("RelatedPerson")
        if code_of(r) in HALF_SIBLINGS
        and r["address"][0]["district"] != district[r["patient"]["reference"]]
    ]
    assert across  # half-siblings in two households, in two local authorities


def test_the_population_has_every_safeguarding_feature() -> None:
    organisations = by_reference()
    flags = defaultdict(list)
    for flag in every("Flag"):
        flags[(flag_type(flag), flag["status"])].append(flag)
    council = {"Local authority"}
    services = {"NHS trust", "Community health service", "GP practice"}
    for kind, status, authors in (
        (codes.ELECTIVE_HOME_EDUCATION, "active", council),
        (codes.ELECTIVE_HOME_EDUCATION, "inactive", council),
        (codes.CHILD_PROTECTION_PLAN, "active", council),
        (codes.CHILD_PROTECTION_PLAN, "inactive", council),
        (codes.LOOKED_AFTER_CHILD, "active", council),
        (codes.WAS_NOT_BROUGHT, "active", services),
        (codes.WAS_NOT_BROUGHT, "inactive", services),
    ):
        assert flags[(kind, status)], (kind, status)
        assert all(
            organisations[f["author"]["reference"]]["type"][0]["text"] in authors
            for f in flags[(kind, status)]
        )
    recent = [
        f
        for f in flags[(codes.WAS_NOT_BROUGHT, "active")]
        if f["period"]["start"] >= (TODAY - timedelta(days=90)).isoformat()
    ]
    assert len({f["subject"]["reference"] for f in recent}) >= 5
    patient_of = patient_by_nhs_number()
    parents = {
        patient_of[r["identifier"][0]["value"]]
        for r in every("RelatedPerson")
        if code_of(r) in MOTHERS | FATHERS and "identifier" in r
    }
    risks = [f for f in every("Flag") if flag_type(f) in codes.HOUSEHOLD_RISKS]
    assert {flag_type(f) for f in risks} == set(codes.HOUSEHOLD_RISKS)
    assert all(f["subject"]["reference"] in parents for f in risks)


def _services_of(child: str) -> set[str]:
    """The Organizations that raised the child's active flags or recorded its conditions."""
    flags = {
        f["author"]["reference"]
        for f in every("Flag")
        if f["status"] == "active" and f["subject"]["reference"] == child
    }
    conditions = {
        e["valueReference"]["reference"]
        for c in every("Condition")
        if c["subject"]["reference"] == child
        for e in c.get("extension", [])
        if e["url"] == VOCABULARY.recording_organization_extension
    }
    return flags | conditions


def test_some_children_seen_by_several_services_have_a_lead_professional_and_some_not() -> None:
    led = {team["subject"]["reference"]: team for team in every("CareTeam")}
    children = {f["subject"]["reference"] for f in every("Flag")} | {
        c["subject"]["reference"] for c in every("Condition")
    }
    several = {child for child in children if len(_services_of(child)) >= 2}
    assert led and several - set(led)  # both kinds, so both summaries can be seen
    for child, team in led.items():
        [participant] = team["participant"]
        assert participant["role"][0]["coding"][0] == {
            "system": VOCABULARY.care_team_role_system,
            "code": codes.LEAD_PROFESSIONAL,
            "display": "Lead professional",
        }
        assert participant["member"]["reference"] in _services_of(child)
        assert team["managingOrganization"] == [participant["member"]]


def test_some_children_have_one_condition_recorded_by_several_services() -> None:
    recorders = defaultdict(set)
    for condition in every("Condition"):
        key = (condition["subject"]["reference"], condition["code"]["coding"][0]["code"])
        recorders[key].add(condition["extension"][0]["valueReference"]["reference"])
    several = Counter(len(found) for (_, code), found in recorders.items() if code == "14760008")
    assert several[2] and several[3]


def test_a_family_bundle_fits_the_test_apps_body_limit() -> None:
    assert max(len(orjson.dumps(transaction(family))) for family in groups()) < 64 * 1024


async def test_seeding_writes_every_resource_once_and_a_second_run_nothing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    written = list(population(6, 3, vocabulary(settings.canonical_base), TODAY))
    seeded = await seed(client, written)
    expected = Counter(r["resourceType"] for group in written for r in group)
    assert seeded.written == expected and seeded.families == 6 and seeded.skipped == 0
    for kind, count in expected.items():
        found = await client.get(f"/{kind}", params={"_summary": "count"})
        assert found.json()["total"] == count, kind
    newest = (await client.get("/_history", params={"_count": "1"})).json().get("entry", [])
    again = await seed(client, population(6, 3, vocabulary(settings.canonical_base), TODAY))
    assert not again.written and again.skipped == 7
    assert (await client.get("/_history", params={"_count": "1"})).json().get("entry", []) == newest
    child = next(r for r in written[1] if r["resourceType"] == "Flag")["subject"]["reference"]
    stored = (await client.get(f"/Flag?patient={child}")).json().get("entry", [])
    assert stored and all(e["resource"]["subject"]["reference"] == child for e in stored)


async def test_a_refused_family_fails_loudly_with_the_outcome(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    families = list(population(1, 3, vocabulary(settings.canonical_base), TODAY))[1:]
    with pytest.raises(SeedFailed, match=r"422 .*Organization/demo-org-.* does not exist"):
        await seed(client, families)  # the organisations were never written
    assert (await client.get("/_history")).json().get("entry", []) == []


def run(*args: str) -> str:
    """The `safeguard` command's output; it must succeed."""
    result = CliRunner().invoke(cli.cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """SAFEGUARD_DATABASE_URL aimed at a new SQLite file (not yet migrated)."""
    path = tmp_path / "demo.db"
    monkeypatch.setenv("SAFEGUARD_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("SAFEGUARD_BASE_URL", "http://demo.test/fhir")
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def test_seed_demo_command_migrates_seeds_and_prints_calls(sqlite_file: Path) -> None:
    output = run("seed-demo", "--families", "3", "--seed", "7")
    assert "wrote 31 organisations and 3 families (" in output and "already" not in output
    assert (
        output.count("""curl -s -H "Authorization: Bearer $TOKEN" 'http://demo.test/fhir/""") == 3
    )
    assert "TOKEN=$(.venv/bin/safeguard token --client demo-gp | tail -1)" in output
    assert "$safeguarding-summary?identifier=https://fhir.nhs.uk/Id/nhs-number|999" in output
    assert "seeded for the server at http://demo.test/fhir (SAFEGUARD_BASE_URL)" in output
    assert "writing the demo families" not in output  # no progress bar off a terminal
    again = run("seed-demo", "--families", "3", "--seed", "7")
    assert "all 3 families are there already" in again and "wrote" not in again
    more = run("seed-demo", "--families", "4", "--seed", "7")
    assert "wrote 0 organisations and 1 families (" in more and "; 4 were there already" in more


def test_serve_seeds_an_empty_database_only(
    sqlite_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[str] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda target, **_: served.append(target))
    assert "20 families" in run("serve")
    assert "holds data already" in run("serve")
    assert served == ["app.main:create_app"] * 2
    monkeypatch.setenv("SAFEGUARD_DATABASE_URL", f"sqlite:///{sqlite_file.with_name('b.db')}")
    get_settings.cache_clear()
    assert "demo population" not in run("serve", "--no-seed-demo")
    assert "20 families" in run("serve")  # --no-seed-demo left it empty
