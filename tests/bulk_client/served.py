"""The real app over HTTP for the export client's tests: served on a free port whose URL is
the server's own base URL (so discovery and assertions name a reachable token endpoint), and
clients registered with a private key written to a file, as a client keeps it."""

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from app.auth.clients import local_key_pair, register
from app.settings import Settings
from tests.conftest import database
from tests.serving import serving


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def served(settings: Settings, **changes: Any) -> AsyncIterator[str]:
    """A real uvicorn server of the app (with `changes`); its FHIR base URL."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    async with serving(settings, port=port, base_url=base, **changes):
        yield base


async def client_with_key(
    app: FastAPI,
    folder: Path,
    *,
    role: str = "system",
    scope: str = "system/*.rs",
    organisation: str = "Organization/test-org",
) -> tuple[str, Path]:
    """A newly registered client (id unique to the run) and the file of its private JWK."""
    client_id = f"export-{uuid.uuid4().hex[:12]}"
    private, public = local_key_pair()
    await register(database(app), client_id, organisation, role, scope, public)
    key_file = folder / f"{client_id}.jwk.json"
    key_file.write_text(private)
    return client_id, key_file
