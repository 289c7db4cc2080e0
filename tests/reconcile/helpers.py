"""What the reconcile command's tests share: the real server on the test settings' canonical
base (so Flags written in-process code their type in the system the server publishes), and a
council's client with its key on file, as the command's `--client`/`--key`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from app.settings import Settings
from tests.bulk_client.served import client_with_key, served

SCOPE = "system/Flag.cruds system/Patient.rs system/Organization.rs"


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[str]:
    """A real server of the app whose canonical base is the test settings'; its base URL."""
    async with served(settings, canonical_base_url=settings.canonical_base) as base:
        yield base


async def council_login(app: FastAPI, folder: Path, council: str) -> tuple[str, Path]:
    """A local-authority client of Organization `council`: its id and its key file."""
    return await client_with_key(
        app, folder, role="local-authority", scope=SCOPE, organisation=f"Organization/{council}"
    )
