"""A small HTTP server standing in for an authority's endpoint: it records every POST it gets
and answers with the statuses it is told to (200 once the list runs out)."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


class Receiver:
    """What the endpoint got, and what it will answer."""

    def __init__(self) -> None:
        self.bundles: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answers: list[int] = []
        self.port = 0
        self.lock = threading.Lock()
        self.in_flight = 0  # POSTs received and not answered yet

    @property
    def url(self) -> str:
        """The endpoint's URL."""
        return f"http://127.0.0.1:{self.port}/hook"

    def kinds(self) -> list[str]:
        """The notification type of each Bundle received, in order."""
        return [_status(bundle)["type"] for bundle in self.bundles]

    def numbers(self) -> list[int]:
        """The event numbers received, in order (repeats included)."""
        return [n for bundle in self.bundles for n in event_numbers(bundle)]


def _status(bundle: dict[str, Any]) -> dict[str, Any]:
    parameters = bundle.get("entry", [])[0]["resource"]["parameter"]
    return {p["name"]: p.get("valueCode") for p in parameters}


def event_numbers(bundle: dict[str, Any]) -> list[int]:
    """The event numbers a notification Bundle carries."""
    parameters = bundle.get("entry", [])[0]["resource"]["parameter"]
    return [
        int(part["valueString"])
        for p in parameters
        if p["name"] == "notification-event"
        for part in p["part"]
        if part["name"] == "event-number"
    ]


@contextmanager
def receiving(delay: float = 0.0) -> Iterator[Receiver]:
    """A Receiver listening on a free port of 127.0.0.1 until the block ends, taking `delay`
    seconds over each POST."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with receiver.lock:  # kept as received: the sender may die before the answer
                status = receiver.answers.pop(0) if receiver.answers else 200
                if status == 200:
                    receiver.bundles.append(orjson.loads(body))
                    receiver.headers.append(dict(self.headers))
                receiver.in_flight += 1
            if delay:
                time.sleep(delay)
            with receiver.lock:
                receiver.in_flight -= 1
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", f"http://127.0.0.1:{receiver.port}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
