"""`safeguard export`'s credentials: a client's key file exchanged at the real token endpoint."""

from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey

from app.bulk_client.credentials import ClientError, Credentials, read_key
from app.settings import Settings
from tests.bulk_client.served import client_with_key, served


async def _patients_status(base: str, credentials: Credentials) -> int:
    async with httpx.AsyncClient() as client:
        headers = await credentials.header(client, base)
        response = await client.get(f"{base}/Patient?_count=1", headers=headers)
    return response.status_code


async def test_a_jwk_key_file_gets_a_token_the_server_accepts(
    app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    client_id, key_file = await client_with_key(app, tmp_path)
    async with served(settings) as base:
        credentials = Credentials(client_id=client_id, key=read_key(key_file))
        assert await _patients_status(base, credentials) == 200


async def test_a_pem_key_without_kid_is_named_by_its_thumbprint(
    app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    client_id, key_file = await client_with_key(app, tmp_path)
    pem_file = tmp_path / "key.pem"
    pem_file.write_bytes(ECKey.import_key(orjson.loads(key_file.read_bytes())).as_pem(private=True))
    async with served(settings) as base:
        credentials = Credentials(client_id=client_id, key=read_key(pem_file))
        assert await _patients_status(base, credentials) == 200


async def test_an_unknown_client_is_refused_with_the_oauth_error(
    app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    _, key_file = await client_with_key(app, tmp_path)
    async with served(settings) as base:
        credentials = Credentials(client_id="nobody-registered-this", key=read_key(key_file))
        with pytest.raises(ClientError, match="401 invalid_client"):
            await _patients_status(base, credentials)


def test_a_public_key_file_is_refused(tmp_path: Path) -> None:
    public = ECKey.generate_key("P-384", auto_kid=True).as_dict(private=False)
    key_file = tmp_path / "public.jwk.json"
    key_file.write_bytes(orjson.dumps(public))
    with pytest.raises(ClientError, match="no private EC or RSA key"):
        read_key(key_file)


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="cannot read the key file"):
        read_key(tmp_path / "absent.pem")
