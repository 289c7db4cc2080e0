"""Writers, readers and a /_status poller that keep every answer, for the database-outage
scenario; and the rule an answer must follow during an outage."""

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.reliability.writers import patient, written

IN_PROGRESS = "another operation is in progress"  # asyncpg's message: never for a client


@dataclass(slots=True)
class Answer:
    """What one request got: its status (None: no answer at all) and when."""

    what: str
    sent: float
    at: float
    status: int | None
    retry_after: str | None = None
    text: str = ""


@dataclass(slots=True)
class Write:
    """A create sent with an X-Request-ID, and what it was answered."""

    request_id: str
    resource: dict[str, Any]
    status: int | None = None
    text: str = ""
    created_id: str | None = None

    @property
    def marker(self) -> str:
        """The marker its Patient carries (the family name)."""
        return str(self.resource["name"][0]["family"])


@dataclass
class Load:
    """The requests of a run and their answers."""

    http: httpx.AsyncClient
    answers: list[Answer] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    known_ids: list[str] = field(default_factory=list)

    async def ask(self, what: str, method: str, url: str, **options: Any) -> httpx.Response | None:
        """Send one request and keep its answer; None if there was none."""
        sent = time.monotonic()
        try:
            response = await self.http.request(method, url, **options)
        except httpx.TransportError as exc:
            self.answers.append(Answer(what, sent, time.monotonic(), None, text=repr(exc)))
            return None
        headers = response.headers
        self.answers.append(
            Answer(
                what,
                sent,
                time.monotonic(),
                response.status_code,
                headers.get("retry-after"),
                response.text,
            )
        )
        return response

    async def create(self, write: Write) -> None:
        """POST the write's Patient with its X-Request-ID; record the answer."""
        headers = {"X-Request-ID": write.request_id}
        response = await self.ask(
            "create", "POST", "/Patient", json=write.resource, headers=headers
        )
        write.status = None if response is None else response.status_code
        write.text = "" if response is None else response.text
        if response is not None and response.status_code in (200, 201):
            write.created_id = written(response.headers.get("location"))[1]
            self.known_ids.append(write.created_id)

    async def writer(self, stop: asyncio.Event) -> None:
        """Create Patients, each with a fresh X-Request-ID and marker, until `stop`."""
        while not stop.is_set():
            write = Write(str(uuid.uuid4()), patient(f"out-{uuid.uuid4().hex[:12]}"))
            self.writes.append(write)
            await self.create(write)
            await asyncio.sleep(0.01 if write.created_id else 0.1)  # a client backs off

    async def reader(self, stop: asyncio.Event, seed: int) -> None:
        """Read known Patients by id and search Patients, until `stop`."""
        chooser = random.Random(seed)
        while not stop.is_set():
            if self.known_ids and chooser.random() < 0.5:
                await self.ask("read", "GET", f"/Patient/{chooser.choice(self.known_ids)}")
            else:
                await self.ask("search", "GET", "/Patient", params={"_count": 5})
            await asyncio.sleep(0.01)

    async def status_poller(self, stop: asyncio.Event) -> None:
        """GET /_status every 100 ms until `stop`."""
        while not stop.is_set():
            await self.ask("status", "GET", origin(self.http) + "/_status")
            await asyncio.sleep(0.1)


def fault(answer: Answer) -> str | None:
    """Why an answer breaks the outage contract, or None: a success, or a 503 with
    Retry-After and an OperationOutcome whose issue is `transient`; never asyncpg's text."""
    if answer.status is None:
        return f"no answer: {answer.text}"
    if IN_PROGRESS in answer.text:
        return f"{answer.status} mentions '{IN_PROGRESS}'"
    if answer.what == "status" or 200 <= answer.status < 300:
        return None
    if answer.status != 503:
        return f"{answer.what} {answer.status}: {_issues(answer.text)}"
    if answer.retry_after is None:
        return f"{answer.what} 503 without Retry-After: {_issues(answer.text)}"
    if not any(issue.get("code") == "transient" for issue in _outcome_issues(answer.text) or []):
        return f"{answer.what} 503 not a transient OperationOutcome: {answer.text[:200]}"
    return None


def _outcome_issues(text: str) -> list[dict[str, Any]] | None:
    """The issues of an OperationOutcome body; None if the body is not one."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return None
    issues: list[dict[str, Any]] = body.get("issue", [])
    return issues


def _issues(text: str) -> str:
    """The issue codes and diagnostics of an OperationOutcome body (else the body's start)."""
    issues = _outcome_issues(text)
    if issues is None:
        return text[:200]
    return "; ".join(f"{issue.get('code')}: {issue.get('diagnostics', '')}" for issue in issues)


def origin(http: httpx.AsyncClient) -> str:
    """Scheme, host and port of the client's base URL."""
    return f"{http.base_url.scheme}://{http.base_url.netloc.decode()}"
