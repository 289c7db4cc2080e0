"""The `safeguard clients`, `keys` and `token` commands, run as the CLI runs them (another
event loop, connections of their own) against the database the app under test serves."""

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner, Result

from app import cli
from app.auth.clients import local_key_pair, register
from app.settings import Settings, get_settings
from tests.auth.helpers import ask_token, claims, client_with_key, form, new_key, refused, signed
from tests.tokens import authority


async def run(*args: str) -> Result:
    """The command's result, run in a thread (the CLI starts an event loop of its own)."""
    return await asyncio.to_thread(CliRunner().invoke, cli.cli, list(args))


def jwks_file(tmp_path: Path, **changes: object) -> Path:
    key = new_key("RSA")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [key.as_dict(private=False) | changes]}))
    return path


async def test_clients_add_list_remove(
    client: httpx.AsyncClient, same_settings: Settings, tmp_path: Path
) -> None:
    client_id = f"cli-{uuid.uuid4().hex[:8]}"
    added = await run(
        "clients", "add", "--id", client_id, "--org", "Organization/org-9", "--role",
        "local-authority", "--scope", "system/Flag.rs system/Patient.rs", "--jwks",
        str(jwks_file(tmp_path)),
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = (await run("clients", "list")).output
    line = next(line for line in listed.splitlines() if line.startswith(client_id))
    assert line.split("\t") == [
        client_id, "Organization/org-9", "local-authority", "system/Flag.rs system/Patient.rs",
        "live",
    ]  # fmt: skip
    assert (await run("clients", "remove", client_id)).exit_code == 0
    listed = (await run("clients", "list")).output
    assert f"{client_id}\tOrganization/org-9" in listed and "\trevoked" in listed
    assert (await run("clients", "remove", client_id)).exit_code == 1


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--role", "admin"], "role"),
        (["--scope", "system/Flag.zz"], "scope"),
        (["--scope", "patient/Flag.rs"], "grants nothing"),
        (["--org", "Patient/1"], "Organization/<id>"),
    ],
)
async def test_clients_add_refuses_bad_registrations(
    client: httpx.AsyncClient, same_settings: Settings, tmp_path: Path, args: list[str], why: str
) -> None:
    given = {"--org": "Organization/o", "--role": "health", "--scope": "system/Flag.rs"}
    given |= dict(zip(args[::2], args[1::2], strict=True))
    flat = [item for pair in given.items() for item in pair]
    result = await run("clients", "add", "--id", "bad", *flat, "--jwks", str(jwks_file(tmp_path)))
    assert result.exit_code != 0 and why in result.output


@pytest.mark.parametrize(
    ("changes", "why"),
    [({"kid": None}, "kid"), ({"kty": "oct"}, "RSA or EC"), ({"d": "AAAA"}, "private")],
)
async def test_clients_add_refuses_bad_jwks(
    client: httpx.AsyncClient, same_settings: Settings, tmp_path: Path, changes: dict[str, str],
    why: str,
) -> None:  # fmt: skip
    path = jwks_file(tmp_path, **changes)
    result = await run(
        "clients", "add", "--id", "bad-keys", "--org", "Organization/o", "--role", "health",
        "--scope", "system/Flag.rs", "--jwks", str(path),
    )  # fmt: skip
    assert result.exit_code == 1 and why in result.output


async def test_token_prints_a_token_the_server_accepts(
    client: httpx.AsyncClient, same_settings: Settings
) -> None:
    private, public = local_key_pair()
    client_id = f"local-{uuid.uuid4().hex[:8]}"
    db = authority(client._transport.app).db  # type: ignore[attr-defined]
    await register(db, client_id, "Organization/o", "health", "system/Patient.rs", public, private)
    result = await run("token", "--client", client_id)
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    response = await client.get("/Patient", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_token_is_refused_without_a_local_key_or_when_turned_off(
    client: httpx.AsyncClient, same_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    client_id = f"remote-{uuid.uuid4().hex[:8]}"
    public = json.dumps({"keys": [new_key().as_dict(private=False)]})
    db = authority(client._transport.app).db  # type: ignore[attr-defined]
    await register(db, client_id, "Organization/o", "health", "system/Patient.rs", public)
    result = await run("token", "--client", client_id)
    assert result.exit_code == 1 and "no local key" in result.output
    monkeypatch.setenv("SAFEGUARD_LOCAL_TOKENS", "false")
    get_settings.cache_clear()
    result = await run("token", "--client", "test-system")
    assert result.exit_code == 1 and "turned off" in result.output


async def test_keys_rotate_prints_the_new_kid(
    client: httpx.AsyncClient, same_settings: Settings
) -> None:
    result = await run("keys", "rotate")
    assert result.exit_code == 0, result.output
    kid = result.output.split()[-1]
    published = (await client.get("http://test/auth/jwks")).json()["keys"]
    assert kid in {key["kid"] for key in published} and len(published) >= 2


async def test_clients_keys_replaces_a_live_clients_keys(
    client: httpx.AsyncClient, app: FastAPI, same_settings: Settings, tmp_path: Path
) -> None:
    client_id, old_key = await client_with_key(app)
    new = new_key("EC")
    path = tmp_path / "new.jwks.json"
    path.write_text(json.dumps({"keys": [new.as_dict(private=False)]}))
    replaced = await run("clients", "keys", client_id, "--jwks", str(path))
    assert replaced.exit_code == 0 and f"replaced the keys of {client_id}" in replaced.output
    refused(await ask_token(client, form(signed(old_key, claims(client_id)))))
    answered = await ask_token(client, form(signed(new, claims(client_id))))
    assert answered.status_code == 200, answered.text
    unknown = await run("clients", "keys", "nobody-at-all", "--jwks", str(path))
    assert unknown.exit_code == 1 and "no live client nobody-at-all" in unknown.output
    path.write_text("{}")
    malformed = await run("clients", "keys", client_id, "--jwks", str(path))
    assert malformed.exit_code == 1
