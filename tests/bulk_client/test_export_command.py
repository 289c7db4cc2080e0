"""`safeguard export` against the real server over HTTP: kick-off, polls, every file
downloaded to the folder, the summary and the exit status (both databases)."""

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from app.bulk_client.command import DONE, DONE_WITH_ERRORS, FAILED, status_of
from app.bulk_client.credentials import Credentials, read_key
from app.bulk_client.export import Result as Exported
from app.cli import cli
from app.settings import Settings
from tests import factories
from tests.bulk_client.served import client_with_key, served
from tests.http import create


async def _invoke(*args: str, progress: bool = False) -> Result:
    """The command in a thread of its own (it runs its own event loop), as a shell runs it."""
    shown = [] if progress else ["--no-progress"]
    return await asyncio.to_thread(CliRunner().invoke, cli, ["export", *args, *shown])


def _login(client_id: str, key_file: Path) -> list[str]:
    return ["--client-id", client_id, "--key", str(key_file)]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


async def _family(client: httpx.AsyncClient) -> tuple[str, list[str]]:
    """A child with two Flags, one active and one inactive: the child's id and the Flags' ids."""
    child = await create(client, factories.patient(nhs=factories.nhs_number(41)))
    subject = f"Patient/{child['id']}"
    active = await create(client, factories.flag(subject=subject))
    ended = await create(client, factories.flag(subject=subject, status="inactive"))
    return child["id"], [active["id"], ended["id"]]


async def test_export_downloads_every_output_file_and_prints_a_summary(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    child, flags = await _family(client)
    client_id, key_file = await client_with_key(app, tmp_path)
    out = tmp_path / "out"
    async with served(settings) as base:
        done = await _invoke(
            "--server", base, *_login(client_id, key_file),
            "--out", str(out), "--type", "Patient,Flag",
        )  # fmt: skip
    assert done.exit_code == DONE, done.output
    assert [p["id"] for p in _lines(out / "Patient.ndjson")] == [child]
    assert sorted(f["id"] for f in _lines(out / "Flag.ndjson")) == sorted(flags)
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["requiresAccessToken"] is True
    assert "3 resources in 2 files" in done.stdout


async def test_off_a_terminal_the_progress_display_writes_nothing(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await _family(client)
    client_id, key_file = await client_with_key(app, tmp_path)
    async with served(settings) as base:
        done = await _invoke(
            "--server", base, *_login(client_id, key_file),
            "--out", str(tmp_path / "out"), "--type", "Patient", progress=True,
        )  # fmt: skip
    assert done.exit_code == DONE, done.output
    assert "1 resources in 1 files" in done.stdout
    # stderr holds the served app's request lines (it runs in this process), and no bars
    assert "exporting" not in done.stderr and "━" not in done.stderr


async def test_a_type_filter_and_elements_reach_the_server(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    _, flags = await _family(client)
    client_id, key_file = await client_with_key(app, tmp_path)
    out = tmp_path / "out"
    async with served(settings) as base:
        done = await _invoke(
            "--server", base, *_login(client_id, key_file),
            "--out", str(out), "--type", "Flag", "--type-filter", "Flag?status=active",
            "--elements", "status",
        )  # fmt: skip
    assert done.exit_code == DONE, done.output
    (exported,) = _lines(out / "Flag.ndjson")
    assert exported["id"] == flags[0] and exported["status"] == "active"
    assert "period" not in exported and "category" not in exported  # only status, mandatory ones


async def test_since_brings_only_what_changed_after_the_last_export(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await _family(client)
    client_id, key_file = await client_with_key(app, tmp_path)
    login = _login(client_id, key_file)
    async with served(settings) as base:
        first = await _invoke("--server", base, *login, "--out", str(tmp_path / "a"))
        assert first.exit_code == DONE, first.output
        since = orjson.loads((tmp_path / "a" / "manifest.json").read_bytes())["transactionTime"]
        later = await create(client, factories.patient(nhs=factories.nhs_number(42)))
        second = await _invoke(
            "--server", base, *login, "--out", str(tmp_path / "b"), "--since", since
        )
    assert second.exit_code == DONE, second.output
    assert [p["id"] for p in _lines(tmp_path / "b" / "Patient.ndjson")] == [later["id"]]
    assert not (tmp_path / "b" / "Flag.ndjson").exists()


async def test_a_refused_kick_off_exits_2_saying_why(
    app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    client_id, key_file = await client_with_key(app, tmp_path)
    async with served(settings) as base:
        done = await _invoke(
            "--server", base, *_login(client_id, key_file), "--out", str(tmp_path / "out"),
            "--type", "Flag", "--type-filter", "Patient?gender=male",
        )  # fmt: skip
    assert done.exit_code == FAILED
    assert "kick-off refused: 400" in done.output


async def test_a_token_given_as_it_is_is_used(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    child, _ = await _family(client)
    client_id, key_file = await client_with_key(app, tmp_path)
    async with served(settings) as base:
        async with httpx.AsyncClient() as http:
            credentials = Credentials(client_id=client_id, key=read_key(key_file))
            header = await credentials.header(http, base)
        token = header["Authorization"].removeprefix("Bearer ")
        done = await _invoke(
            "--server", base, "--token", token, "--out", str(tmp_path / "out"), "--type", "Patient"
        )
    assert done.exit_code == DONE, done.output
    assert [p["id"] for p in _lines(tmp_path / "out" / "Patient.ndjson")] == [child]


async def test_without_credentials_it_exits_2(settings: Settings, tmp_path: Path) -> None:
    async with served(settings) as base:
        done = await _invoke("--server", base, "--out", str(tmp_path / "out"))
    assert done.exit_code == FAILED
    assert "give --token, or --client-id with --key" in done.output


async def test_an_export_that_fails_on_the_server_exits_2_saying_why(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await _family(client)
    client_id, key_file = await client_with_key(app, tmp_path)
    blocked = tmp_path / "not-a-directory"
    blocked.write_bytes(b"")  # the server cannot make a job's directory under it
    async with served(settings, export_dir=str(blocked)) as base:
        done = await _invoke(
            "--server", base, *_login(client_id, key_file), "--out", str(tmp_path / "out")
        )
    assert done.exit_code == FAILED, done.output
    assert "export failed: 500" in done.output
    assert "the export could not be completed" in done.output


def test_a_manifest_listing_errors_exits_1() -> None:
    assert status_of(Exported({"error": [{"type": "OperationOutcome", "url": "u"}]})) == (
        DONE_WITH_ERRORS
    )
    assert status_of(Exported({"output": [], "error": []})) == DONE
