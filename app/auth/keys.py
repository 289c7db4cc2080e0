"""The server's own token-signing keys (ES256), kept in the `signing_key` table.

The newest key not retired signs; `safeguard keys rotate` retires it and adds another. A
retired key still verifies, and is published at /auth/jwks, until every token it signed has
expired (retired_at + the token lifetime); rotation then deletes it, and `rotate --revoke`
deletes every earlier key at once (a key thought leaked). Keys are parsed once and kept by kid;
a kid not seen before (a key another process added) is looked up in the table, and every
process reads the table again within REFRESH_SECONDS, so a retirement or a deletion made
elsewhere holds everywhere that soon, without a restart.
Spec: https://www.rfc-editor.org/rfc/rfc7517
"""

import time
from dataclasses import dataclass
from typing import Any

import orjson
from joserfc.jwk import ECKey, generate_key

from app.clock import now_micros
from app.storage.db import Connection, Database

ALGORITHM = "ES256"
MISS_SECONDS = 5.0  # an unknown kid is looked up again only after this long
REFRESH_SECONDS = 30.0  # how long a process trusts its view of which keys are retired or gone


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One of the server's keys: its id, the key (private), and when it stopped signing."""

    kid: str
    key: ECKey
    retired_at: int | None  # microseconds since epoch, UTC


def _parsed(kid: str, private_jwk: str, retired_at: int | None) -> SigningKey:
    return SigningKey(kid, ECKey.import_key(orjson.loads(private_jwk)), retired_at)


async def _add_key(conn: Connection) -> str:
    key = generate_key("EC", "P-256", parameters={"alg": ALGORITHM, "use": "sig"}, auto_kid=True)
    kid = str(key.kid)
    private = orjson.dumps(key.as_dict(private=True)).decode()
    await conn.execute(
        "INSERT INTO signing_key (kid, private_jwk, created_at) VALUES ($1, $2, $3)",
        kid,
        private,
        now_micros(),
    )
    return kid


async def ensure_key(db: Database) -> None:
    """Create the first signing key if there is none that signs."""
    async with db.transaction() as conn:
        if await conn.fetchrow("SELECT kid FROM signing_key WHERE retired_at IS NULL") is None:
            await _add_key(conn)


async def rotate(db: Database, token_lifetime: int, revoke: bool = False) -> str:
    """Retire the signing key, add a new one (its kid is returned), drop keys past use; with
    `revoke`, drop every earlier key now, so no token any of them signed is accepted."""
    now = now_micros()
    async with db.transaction() as conn:
        if revoke:
            await conn.execute("DELETE FROM signing_key")
        await conn.execute("UPDATE signing_key SET retired_at = $1 WHERE retired_at IS NULL", now)
        await conn.execute(
            "DELETE FROM signing_key WHERE retired_at < $1", now - token_lifetime * 1_000_000
        )
        return await _add_key(conn)


class KeyRing:
    """The signing keys of one process: the current signer read when a token is issued
    (rare), verifying keys kept by kid (every request)."""

    def __init__(self, db: Database, token_lifetime: int) -> None:
        self.db, self.token_lifetime = db, token_lifetime
        self._by_kid: dict[str, SigningKey] = {}
        self._missed: dict[str, float] = {}
        # time.monotonic() of the last read of the whole table; a process starts knowing no
        # key, and reads one when it first meets its kid, so the first full read can wait.
        self._refreshed = time.monotonic()

    async def signer(self) -> SigningKey:
        """The key that signs now (another process may have rotated keys)."""
        async with self.db.reader() as conn:
            row = await conn.fetchrow(
                "SELECT kid, private_jwk FROM signing_key WHERE retired_at IS NULL "
                "ORDER BY created_at DESC, kid LIMIT 1"
            )
        if row is None:
            await ensure_key(self.db)
            return await self.signer()
        if row[0] not in self._by_kid:
            self._by_kid[row[0]] = _parsed(row[0], row[1], None)
        return self._by_kid[row[0]]

    async def trusts(self, kid: str, issued_at: int) -> bool:
        """Whether a token `kid` signed at `issued_at` (seconds since epoch) may still be used:
        the key is still in the table, and was not retired before the token was issued."""
        await self._refresh_if_stale()
        known = self._by_kid.get(kid)
        if known is None:
            return False
        return known.retired_at is None or issued_at * 1_000_000 <= known.retired_at

    async def _refresh_if_stale(self) -> None:
        """Read which keys are ours (and which retired) again, at most every REFRESH_SECONDS."""
        if time.monotonic() - self._refreshed < REFRESH_SECONDS:
            return
        self._by_kid = {found.kid: found for found in await self._usable()}
        self._refreshed = time.monotonic()

    async def verifier(self, kid: str) -> ECKey | None:
        """The key that verifies tokens of `kid`, if it is (still) one of ours."""
        await self._refresh_if_stale()
        known = self._by_kid.get(kid)
        if known is not None:
            return known.key
        if time.monotonic() - self._missed.get(kid, -MISS_SECONDS) < MISS_SECONDS:
            return None
        for found in await self._usable():
            self._by_kid.setdefault(found.kid, found)
        if kid not in self._by_kid:
            if len(self._missed) > 1000:
                self._missed.clear()
            self._missed[kid] = time.monotonic()
            return None
        return self._by_kid[kid].key

    async def _usable(self) -> list[SigningKey]:
        """Every key that signs, or retired recently enough that its tokens may be valid."""
        since = now_micros() - self.token_lifetime * 1_000_000
        async with self.db.reader() as conn:
            rows = await conn.fetch(
                "SELECT kid, private_jwk, retired_at FROM signing_key "
                "WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at",
                since,
            )
        return [_parsed(kid, private, retired) for kid, private, retired in rows]

    async def published(self) -> dict[str, Any]:
        """The public keys that verify tokens, as a JWKS (what /auth/jwks serves)."""
        keys = []
        for found in await self._usable():
            public = found.key.as_dict(private=False)
            keys.append(public | {"kid": found.kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": keys}
