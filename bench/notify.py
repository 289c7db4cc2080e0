"""`make bench-notify`: how fast the notifier delivers to a local receiver, per backend.

A server (one uvicorn worker, its notifier running every 50 ms) is seeded with a child its
authority is responsible for and the authority's Subscription, holding events for $events;
`--events` Flags a hospital raises about the child (in transactions of 100) give as many
numbered events. The Subscription is then pointed at a receiver in this process (an asyncio
HTTP server answering 200 at once) with a max count per notification; the time from the
handshake to the last event's arrival gives events delivered per second. Run once with the
default max count (100 events per POST) and once with one event per POST.
"""

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import seed
from bench.backends import BACKENDS, UnavailableError, database
from bench.process import ROOT, Server, serve
from bench.report import write_json

OUTPUT = ROOT / "bench" / "results" / "notify.json"
ENVIRONMENT = {
    "SAFEGUARD_SUBSCRIPTION_ENDPOINTS": "http://127.0.0.1:*",
    "SAFEGUARD_SUBSCRIPTION_PRIVATE_NETWORKS": "127.0.0.0/8",
    "SAFEGUARD_NOTIFY_INTERVAL_SECONDS": "0.05",
}
HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


class Receiver:
    """An HTTP/1.1 endpoint that answers every POST 200 and notes the event numbers."""

    def __init__(self) -> None:
        self.numbers: set[int] = set()
        self.posts = 0
        self.first_at: float | None = None
        self.done = asyncio.Event()
        self.after = 0  # numbers up to this one were delivered before
        self.wanted = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One keep-alive connection."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self._note(await reader.readexactly(length))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, StopIteration):
            writer.close()
        except asyncio.CancelledError:  # the receiver is closing
            writer.close()

    def _note(self, body: bytes) -> None:
        bundle = orjson.loads(body)
        self.posts += 1
        if self.first_at is None:
            self.first_at = time.perf_counter()
        for parameter in bundle["entry"][0]["resource"]["parameter"]:
            if parameter["name"] == "notification-event":
                part = next(p for p in parameter["part"] if p["name"] == "event-number")
                number = int(part["valueString"])
                if number > self.after:
                    self.numbers.add(number)
        if self.wanted and len(self.numbers) >= self.wanted:
            self.done.set()


def _raise_flags(server: Server, body: bytes, count: int) -> None:
    """`count` Flags from `body`, in transaction Bundles of 100."""
    flag = orjson.loads(body)
    with httpx.Client(base_url=server.url, headers=HEADERS, auth=server.auth, timeout=60) as http:
        for start in range(0, count, 100):
            entries = [
                {"resource": flag, "request": {"method": "POST", "url": "Flag"}}
                for _ in range(min(100, count - start))
            ]
            bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
            response = http.post("/fhir", content=orjson.dumps(bundle))
            if response.status_code != 200:
                raise RuntimeError(f"raising flags: {response.status_code} {response.text[:300]}")


def _subscription(server: Server) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, headers=HEADERS, auth=server.auth, timeout=10) as http:
        found = http.get("/fhir/Subscription").json()
    return dict(found["entry"][0]["resource"])


async def _deliver(server: Server, after: int, events: int, max_count: int) -> dict[str, float]:
    """Point the Subscription at a fresh receiver, `max_count` events per POST; events/s from
    the first POST (the handshake) until events `after` + 1 to `after` + `events` arrived."""
    receiver = Receiver()
    receiver.after, receiver.wanted = after, events
    listening = await asyncio.start_server(receiver.serve, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    subscription = _subscription(server)
    channel = subscription["channel"] | {"endpoint": f"http://127.0.0.1:{port}/hook"}
    channel["extension"] = [
        {
            "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
            "backport-max-count",
            "valuePositiveInt": max_count,
        }
    ]
    asked = subscription | {"channel": channel, "status": "requested"}
    async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, auth=server.auth) as http:
        response = await http.put(f"/fhir/Subscription/{asked['id']}", json=asked)
        if response.status_code != 200:
            raise RuntimeError(f"re-pointing: {response.status_code} {response.text[:300]}")
    async with listening:
        await asyncio.wait_for(receiver.done.wait(), timeout=600)
    elapsed = time.perf_counter() - (receiver.first_at or time.perf_counter())
    return {
        "events": float(len(receiver.numbers)),
        "posts": float(receiver.posts),
        "seconds": elapsed,
        "events_per_second": len(receiver.numbers) / elapsed if elapsed else 0.0,
    }


def bench_backend(url: str, workdir: Path, events: int) -> dict[str, Any]:
    """Seed; raise `events` Flags and deliver them 100 per POST; hold events again, raise a
    tenth as many and deliver them one per POST."""
    results: dict[str, Any] = {}
    with serve(url, workdir, environment=ENVIRONMENT) as server:
        body = seed.seed_notified(server, url)
        started = time.perf_counter()
        _raise_flags(server, body, events)
        results["raise_seconds"] = time.perf_counter() - started
        results["per_post_100"] = asyncio.run(_deliver(server, 0, events, 100))
        _hold(server)
        singles = max(events // 10, 1)
        _raise_flags(server, body, singles)
        results["per_post_1"] = asyncio.run(_deliver(server, events, singles, 1))
    for name, found in results.items():
        if isinstance(found, dict):
            print(f"  {name}: {found['events_per_second']:,.0f} events/s", flush=True)
    return results


def _hold(server: Server) -> None:
    """The Subscription without an endpoint again: its events wait for $events."""
    subscription = _subscription(server)
    channel = {k: v for k, v in subscription["channel"].items() if k != "endpoint"}
    with httpx.Client(base_url=server.url, headers=HEADERS, auth=server.auth, timeout=10) as http:
        body = orjson.dumps(subscription | {"channel": channel, "status": "requested"})
        response = http.put(f"/fhir/Subscription/{subscription['id']}", content=body)
        if response.status_code != 200:
            raise RuntimeError(f"holding: {response.status_code} {response.text[:300]}")


def main(argv: list[str] | None = None) -> int:
    """Run each backend; print and write the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.notify", description=__doc__)
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="all")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    for backend in BACKENDS if args.backend == "all" else (args.backend,):
        print(f"{backend}:", flush=True)
        with tempfile.TemporaryDirectory(prefix="safeguard-bench-") as tmp:
            try:
                with database(backend, Path(tmp)) as url:
                    results[backend] = bench_backend(url, Path(tmp), args.events)
            except UnavailableError as exc:
                print(f"  skipped: {exc}", flush=True)
    write_json(args.output, {"events": args.events, "backends": results})
    print(f"results written to {args.output}")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
