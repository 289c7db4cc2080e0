"""What recording who lost sight of a resource (`app.storage.vanishing`) costs writes.

In-process (the app over httpx's ASGI transport, one request at a time), on a fresh database
of each backend: each kind of write below is timed with the tombstone work on and with it off
(`vanishing.watch` answering "nothing changes"), in interleaved rounds (which goes first
alternating), and the medians are printed side by side. `create` does no tombstone work either
way: its ratio is the noise. A child with `--records` Conditions about it, named to one local
authority, while another (which has a client) raises an active Flag about it:

- create: a new Condition (never any work: nobody saw it before);
- update: a Condition changed in a way that decides nobody's sight (no extra statement);
- flag update: the authority's Flag changed, still active (one probe of its own index rows);
- restrict: a Condition labelled restricted, then the label removed (one tombstone written);
- end flag: the Flag ended, then raised again, while the child's Patient names another
  authority (the authority loses every record about the child: a tombstone each).

    python -m bench.vanishing [--backend sqlite|postgresql|all] [--rounds 5] [--writes 100]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from app.access import SYSTEM
from app.auth.clients import local_key_pair, register
from app.flags.codes import vocabulary
from app.main import create_app
from app.settings import Settings
from app.storage import vanishing
from bench.backends import BACKENDS, UnavailableError, database

BASE = "http://bench/fhir"
JSON = {"content-type": "application/fhir+json"}
RESTRICTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
Write = Callable[[], Awaitable[None]]


async def _nothing_changes(*_: Any) -> None:
    return None


class Writes:
    """The bench's writes, on one client, about one child."""

    def __init__(self, http: httpx.AsyncClient, records: int) -> None:
        self.http, self.records = http, records
        self.ids: dict[str, Any] = {}

    async def post(self, resource: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(f"/{resource['resourceType']}", json=resource, headers=JSON)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        url = f"/{resource['resourceType']}/{resource['id']}"
        response = await self.http.put(url, json=resource, headers=JSON)
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        return body

    async def setup(self) -> None:
        """Two authorities, the child (named to the second), its records, the first's Flag."""
        for org in ("la-x", "la-y"):
            await self.put({"resourceType": "Organization", "id": org, "name": org})
        extension = {
            "url": vocabulary(BASE).responsible_local_authority_extension,
            "valueReference": {"reference": "Organization/la-y"},
        }
        child = await self.post({"resourceType": "Patient", "extension": [extension]})
        self.ids["child"] = child["id"]
        for _ in range(self.records):
            self.ids["record"] = await self.post(self._condition())
        self.ids["flag"] = await self.post(self._flag("active"))

    def _condition(self) -> dict[str, Any]:
        return {
            "resourceType": "Condition",
            "subject": {"reference": f"Patient/{self.ids['child']}"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "14760008"}]},
        }

    def _flag(self, status: str) -> dict[str, Any]:
        return {
            "resourceType": "Flag",
            "status": status,
            "category": [{"coding": [{"system": FLAG_CATEGORY, "code": "clinical"}]}],
            "code": {"coding": [{"system": "https://example.org/flag-codes", "code": "x"}]},
            "subject": {"reference": f"Patient/{self.ids['child']}"},
            "author": {"reference": "Organization/la-x"},
        }

    def kinds(self) -> dict[str, Write]:
        """Each kind of write, as one call."""

        async def create() -> None:
            await self.post(self._condition())

        async def update() -> None:
            self.ids["record"] = await self.put(self.ids["record"] | {"note": [{"text": "x"}]})

        async def flag_update() -> None:
            self.ids["flag"] = await self.put(self.ids["flag"] | {"period": {"start": "2026"}})

        async def restrict() -> None:
            labelled = self.ids["record"] | {"meta": {"security": [RESTRICTED]}}
            self.ids["record"] = await self.put(self.ids["record"] | {"meta": {}})
            self.ids["record"] = await self.put(labelled)
            self.ids["record"] = await self.put(self.ids["record"] | {"meta": {}})

        async def end_flag() -> None:
            self.ids["flag"] = await self.put(self.ids["flag"] | {"status": "inactive"})
            self.ids["flag"] = await self.put(self.ids["flag"] | {"status": "active"})

        return {
            "create": create,
            "update": update,
            "flag update": flag_update,
            "restrict+unrestrict": restrict,
            "end+raise flag": end_flag,
        }


async def _timed(write: Write, count: int) -> float:
    """Microseconds per call of `write`, `count` calls."""
    start = time.perf_counter()
    for _ in range(count):
        await write()
    return (time.perf_counter() - start) / count * 1e6


async def _bench(url: str, rounds: int, writes: int, records: int) -> dict[str, list[float]]:
    settings = Settings(database_url=url, base_url=BASE, audit_seal_interval_seconds=0.0)
    app = create_app(settings, identify=lambda request: SYSTEM)
    watch = vanishing.watch
    times: dict[str, list[float]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            private, public = local_key_pair()  # la-x reads as an authority: cascades run
            await register(
                app.state.context.store.db,
                "la-x",
                "Organization/la-x",
                "local-authority",
                "system/*.rs",
                public,
                private,
            )
            bench = Writes(http, records)
            await bench.setup()
            for round_number in range(rounds):
                for on in (True, False) if round_number % 2 else (False, True):
                    vanishing.watch = watch if on else _nothing_changes  # type: ignore[assignment]
                    for name, write in bench.kinds().items():
                        key = f"{name} {'on' if on else 'off'}"
                        times.setdefault(key, []).append(await _timed(write, writes))
    vanishing.watch = watch  # type: ignore[assignment]
    return times


def _report(backend: str, times: dict[str, list[float]]) -> None:
    print(f"\n{backend}: median us per write (tombstones on / off, ratio)")
    names = [key.removesuffix(" on") for key in times if key.endswith(" on")]
    for name in names:
        on, off = statistics.median(times[f"{name} on"]), statistics.median(times[f"{name} off"])
        print(f"  {name:22} {on:9.0f} {off:9.0f}   {on / off:5.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.vanishing", description=__doc__)
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writes", type=int, default=100, help="writes per kind per round")
    parser.add_argument("--records", type=int, default=50, help="Conditions about the child")
    args = parser.parse_args(argv)
    for backend in BACKENDS if args.backend == "all" else (args.backend,):
        with tempfile.TemporaryDirectory() as workdir:
            try:
                with database(backend, Path(workdir)) as url:
                    times = asyncio.run(_bench(url, args.rounds, args.writes, args.records))
            except UnavailableError as error:
                print(f"{backend}: skipped ({error})")
                continue
        _report(backend, times)


if __name__ == "__main__":
    main()
