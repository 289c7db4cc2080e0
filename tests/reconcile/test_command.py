"""`safeguard reconcile` against the real server over HTTP (both databases): each category
found, the report and exit status, `--apply` bringing the server into line, and a second run
changing nothing."""

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from app.cli import cli
from app.flags.codes import vocabulary
from app.nhs import NHS_NUMBER_SYSTEM, ODS_SYSTEM
from app.reconcile.command import AGREED, DIFFERENT, FAILED
from app.settings import Settings
from tests import factories
from tests.http import create
from tests.reconcile.helpers import council_login, serving

AS_OF = "2026-06-01"
COUNCIL_ODS, HOSPITAL_ODS = "9ZZ", "RZZ"


async def _invoke(source: Path, base: str, login: list[str], *more: str) -> Result:
    """The command in a thread of its own (it runs its own event loop), as a shell runs it."""
    args = ["reconcile", str(source), "--server", base, *login, "--as-of", AS_OF, "--no-progress"]
    return await asyncio.to_thread(CliRunner().invoke, cli, [*args, *more])


def _register(path: Path, rows: list[str]) -> Path:
    header = "nhs_number,flag_type,start_date,end_date,author_ods,flag_identifier"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _flag(settings: Settings, subject: str, author: str, code: str, start: str) -> dict[str, Any]:
    system = vocabulary(settings.canonical_base).flag_type_system
    return factories.safeguarding_flag(
        subject=subject, author=author, code=code, display=code, system=system, start=start
    )


class World:
    """A council and a hospital, four children, the council's flags and one of the hospital's."""

    def __init__(self) -> None:
        self.nhs = [factories.nhs_number(7100 + n) for n in range(5)]
        self.children: list[str] = []
        self.flags: dict[str, str] = {}

    async def build(self, client: httpx.AsyncClient, settings: Settings) -> None:
        council = await create(client, factories.organization(ods=COUNCIL_ODS, name="Council"))
        hospital = await create(client, factories.organization(ods=HOSPITAL_ODS, name="Trust"))
        self.council = council["id"]
        for number in self.nhs[:4]:
            self.children.append((await create(client, factories.patient(nhs=number)))["id"])
        a, b, c = (f"Patient/{child}" for child in self.children[:3])
        by_council = f"Organization/{self.council}"
        for name, subject, code, start in (
            ("same", a, "child-protection-plan", "2026-01-05"),
            ("changed", b, "looked-after-child", "2026-02-01"),
            ("missing", c, "child-in-need", "2025-11-01"),
        ):
            made = await create(client, _flag(settings, subject, by_council, code, start))
            self.flags[name] = made["id"]
        made = await create(
            client,
            _flag(settings, a, f"Organization/{hospital['id']}", "child-at-risk", "2026-03-03"),
        )
        self.flags["hospital"] = made["id"]

    def clean_rows(self) -> list[str]:
        """Same, changed and new records (the missing one left out)."""
        a, b, _, d = self.nhs[:4]
        return [
            f"{a},child-protection-plan,2026-01-05,,{COUNCIL_ODS},",
            f"{b},looked-after-child,2026-02-01,2026-03-01,{COUNCIL_ODS},",
            f"{d},elective-home-education,2026-04-01,,{COUNCIL_ODS},EHE-1",
        ]


async def _council_world(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, folder: Path
) -> tuple[World, list[str]]:
    """The world built, and the council client's `--client`/`--key` arguments."""
    world = World()
    await world.build(client, settings)
    client_id, key = await council_login(app, folder, world.council)
    return world, ["--client", client_id, "--key", str(key)]


async def _read(client: httpx.AsyncClient, flag_id: str) -> dict[str, Any]:
    response = await client.get(f"/Flag/{flag_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_a_dry_run_reports_each_category_and_writes_nothing(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    world, login = await _council_world(app, settings, client, tmp_path)
    register = _register(tmp_path / "register.csv", world.clean_rows())
    report = tmp_path / "report.json"
    async with serving(settings) as base:
        done = await _invoke(register, base, login, "--report", str(report))
    assert done.exit_code == DIFFERENT, done.output
    found = orjson.loads(report.read_bytes())
    assert found["counts"] == {"new": 1, "changed": 1, "same": 1, "missing": 1, "conflicting": 0}, (
        done.output
    )
    by_category = {row["category"]: row for row in found["differences"]}
    assert (
        by_category["changed"]["changes"] == "status: active -> inactive; end: None -> 2026-03-01"
    )
    assert by_category["missing"]["flag"] == f"Flag/{world.flags['missing']}"
    assert by_category["new"]["where"] == "line 4"
    assert (await _read(client, world.flags["changed"]))["status"] == "active"
    assert (await _read(client, world.flags["missing"]))["status"] == "active"


async def test_apply_brings_the_server_into_line_and_a_second_run_changes_nothing(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    world, login = await _council_world(app, settings, client, tmp_path)
    register = _register(tmp_path / "register.csv", world.clean_rows())
    async with serving(settings) as base:
        applied = await _invoke(register, base, login, "--apply")
        assert applied.exit_code == AGREED, applied.output
        again = await _invoke(
            register, base, login, "--apply", "--report", str(tmp_path / "r.json")
        )
    assert again.exit_code == AGREED, again.output
    second = orjson.loads((tmp_path / "r.json").read_bytes())
    assert second["counts"] == {"new": 0, "changed": 0, "same": 3, "missing": 0, "conflicting": 0}
    assert second["applied"] == {"written": 0, "bundles": 0, "refused": 0}
    changed = await _read(client, world.flags["changed"])
    assert (changed["status"], changed["period"]["end"]) == ("inactive", "2026-03-01")
    missing = await _read(client, world.flags["missing"])
    assert (missing["status"], missing["period"]["end"]) == ("inactive", AS_OF)
    reason = missing["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
    assert reason == "no-longer-applicable"
    assert (await _read(client, world.flags["hospital"]))["status"] == "active"
    new = (await client.get("/Flag", params={"identifier": "EHE-1"})).json()
    made = [e["resource"] for e in new.get("entry", [])]
    assert [f["subject"]["reference"] for f in made] == [f"Patient/{world.children[3]}"]


async def test_conflicts_are_reported_and_never_written(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    world, login = await _council_world(app, settings, client, tmp_path)
    a, b, c, d, unknown = world.nhs
    rows = [
        *world.clean_rows()[:1],
        f"{c},child-in-need,2025-11-01,,{COUNCIL_ODS},",  # keeps the missing one
        f"{d},young-carer,2026-01-01,,{COUNCIL_ODS},",
        f"{d},young-carer,2026-01-01,,{COUNCIL_ODS},",  # the same key twice
        f"{unknown},child-in-need,2026-01-01,,{COUNCIL_ODS},",  # no such child here
        f"{b},not-a-flag-type,2026-01-01,,{COUNCIL_ODS},",  # outside the value set
        f"{a},child-at-risk,2026-03-03,,{HOSPITAL_ODS},",  # another organisation's
    ]
    register = _register(tmp_path / "register.csv", rows)
    report = tmp_path / "report.csv"
    async with serving(settings) as base:
        done = await _invoke(
            register,
            base,
            login,
            "--apply",
            "--organisation",
            COUNCIL_ODS,
            "--report",
            str(report),
            "--format",
            "csv",
        )
    assert done.exit_code == DIFFERENT, done.output
    lines = report.read_text().splitlines()
    assert lines[0] == "category,where,nhs_number,flag_type,start,end,flag,changes,reason"
    conflicts = [line for line in lines[1:] if line.startswith("conflicting")]
    assert len(conflicts) == 5, lines
    text = "\n".join(conflicts)
    assert "listed 2 times (line 4, line 5)" in text
    assert "no child with this NHS number" in text
    assert "not in the safeguarding flag-type value set" in text
    assert f"raised by {HOSPITAL_ODS}" in text
    missing = [line for line in lines[1:] if line.startswith("missing")]
    assert len(missing) == 1 and f"Flag/{world.flags['changed']}" in missing[0]  # B's: ended
    assert (await _read(client, world.flags["changed"]))["status"] == "inactive"
    assert (await _read(client, world.flags["missing"]))["status"] == "active"
    assert (await _read(client, world.flags["hospital"]))["status"] == "active"
    young = (await client.get("/Flag", params={"subject": f"Patient/{world.children[3]}"})).json()
    assert young.get("entry", []) == []


async def test_an_unreachable_server_is_exit_status_2(tmp_path: Path) -> None:
    register = _register(tmp_path / "register.csv", [])
    done = await _invoke(register, "http://127.0.0.1:9/fhir", ["--client", "x", "--token", "t"])
    assert done.exit_code == FAILED
    assert "reconcile failed" in done.output


async def test_a_plan_ended_and_a_new_one_raised_in_one_run_both_apply(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    world, login = await _council_world(app, settings, client, tmp_path)
    a = world.nhs[0]
    rows = [
        f"{a},child-protection-plan,2026-01-05,2026-05-01,{COUNCIL_ODS},",  # the held plan, ended
        f"{a},child-protection-plan,2026-05-20,,{COUNCIL_ODS},",  # and a new one
        f"{world.nhs[1]},looked-after-child,2026-02-01,,{COUNCIL_ODS},",
        f"{world.nhs[2]},child-in-need,2025-11-01,,{COUNCIL_ODS},",
    ]
    register = _register(tmp_path / "register.csv", rows)
    async with serving(settings) as base:
        done = await _invoke(register, base, login, "--apply")
        assert done.exit_code == AGREED, done.output
        again = await _invoke(register, base, login)
    assert again.exit_code == AGREED, again.output
    plans = (await client.get("/Flag", params={"subject": f"Patient/{world.children[0]}"})).json()
    found = sorted(
        (f["resource"]["period"]["start"], f["resource"]["status"]) for f in plans.get("entry", [])
    )
    assert found == [("2026-01-05", "inactive"), ("2026-03-03", "active"), ("2026-05-20", "active")]


def _as_flags(rows: list[str], identifier_system: str, system: str) -> list[dict[str, Any]]:
    """CSV rows as FHIR Flags naming child and author by identifier (NDJSON, Bundle)."""
    flags = []
    for row in rows:
        nhs, code, start, end, ods, named = row.split(",")
        flag: dict[str, Any] = {
            "resourceType": "Flag",
            "status": "active",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"identifier": {"system": NHS_NUMBER_SYSTEM, "value": nhs}},
            "author": {"identifier": {"system": ODS_SYSTEM, "value": ods}},
            "period": {"start": start} | ({"end": end} if end else {}),
        }
        if named:
            flag["identifier"] = [{"system": identifier_system, "value": named}]
        flags.append(flag)
    return flags


@pytest.mark.parametrize("form", ["ndjson", "bundle"])
async def test_a_fhir_register_reconciles_as_the_same_csv_does(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, tmp_path: Path, form: str
) -> None:
    world, login = await _council_world(app, settings, client, tmp_path)
    codes = vocabulary(settings.canonical_base)
    flags = _as_flags(world.clean_rows(), codes.url("Id", "register-flag"), codes.flag_type_system)
    if form == "ndjson":
        register = tmp_path / "register.ndjson"
        register.write_bytes(b"\n".join(orjson.dumps(flag) for flag in flags) + b"\n")
    else:
        register = tmp_path / "register.json"
        bundle = {"resourceType": "Bundle", "type": "collection"}
        register.write_bytes(orjson.dumps(bundle | {"entry": [{"resource": f} for f in flags]}))
    csv = _register(tmp_path / "register.csv", world.clean_rows())
    report = tmp_path / "report.json"
    async with serving(settings) as base:
        dry = await _invoke(register, base, login, "--report", str(report))
        found = orjson.loads(report.read_bytes())
        applied = await _invoke(register, base, login, "--apply")
        as_csv = await _invoke(csv, base, login)
    assert dry.exit_code == DIFFERENT, dry.output
    assert found["counts"] == {"new": 1, "changed": 1, "same": 1, "missing": 1, "conflicting": 0}
    assert applied.exit_code == AGREED, applied.output
    assert as_csv.exit_code == AGREED, as_csv.output
