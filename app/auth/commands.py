"""What the `safeguard clients`, `keys` and `token` commands do, each against the database of
the settings given (the server's, when run with the same environment)."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from app.auth import clients, keys
from app.auth.assertions import OAuthError
from app.auth.tokens import Authority
from app.settings import Settings
from app.storage.db import Database, make_database

T = TypeVar("T")


class Refused(RuntimeError):
    """The command cannot do what was asked (the message says why)."""


def _run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = make_database(settings.database_url, 1, 2)
        await db.open()
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


def add_client(
    settings: Settings, client_id: str, organisation: str, role: str, scope: str, jwks: Path
) -> clients.Client:
    """Register a client with the public keys in the JWKS file."""
    try:
        text = jwks.read_text()
    except OSError as exc:
        raise Refused(f"cannot read {jwks}: {exc.strerror}") from exc
    try:
        return _run(
            settings, lambda db: clients.register(db, client_id, organisation, role, scope, text)
        )
    except clients.BadClient as exc:
        raise Refused(str(exc)) from exc


def replace_client_keys(settings: Settings, client_id: str, jwks: Path) -> None:
    """Replace a live client's public keys with those in the JWKS file (key rotation)."""
    try:
        text = jwks.read_text()
    except OSError as exc:
        raise Refused(f"cannot read {jwks}: {exc.strerror}") from exc
    try:
        _run(settings, lambda db: clients.replace_keys(db, client_id, text))
    except clients.BadClient as exc:
        raise Refused(str(exc)) from exc


def list_clients(settings: Settings) -> list[clients.Client]:
    """Every registered client."""
    return _run(settings, clients.every_client)


def remove_client(settings: Settings, client_id: str) -> None:
    """Revoke a client: its tokens stop working at the next request."""
    if not _run(settings, lambda db: clients.revoke(db, client_id)):
        raise Refused(f"no live client {client_id}")


def rotate_keys(settings: Settings, revoke: bool = False) -> str:
    """A new signing key; the previous one verifies until its tokens have expired, or, with
    `revoke`, no longer at all (every process drops it within keys.REFRESH_SECONDS)."""
    lifetime = settings.token_lifetime_seconds
    return _run(settings, lambda db: keys.rotate(db, lifetime, revoke))


def local_token(settings: Settings, client_id: str) -> str:
    """An access token for a client registered with a local key (the demo clients)."""
    if not settings.local_tokens:
        raise Refused("local tokens are turned off (SAFEGUARD_LOCAL_TOKENS=false)")

    async def mint(db: Database) -> str:
        authority = Authority(settings, db)
        try:
            return await authority.local_token(client_id)
        finally:
            authority.close()

    try:
        return _run(settings, mint)
    except OAuthError as exc:
        raise Refused(exc.description) from exc
