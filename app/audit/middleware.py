"""ASGI middleware: one AuditEvent per request to /fhir (save `GET /fhir/metadata`) and to
/auth/token, stored before the answer goes out.

It opens the request's `Trail` (kept in the ASGI scope, where each layer adds what it learns)
and holds back the response's start until the request's AuditEvent is committed: a write's
was stored in the write's own transaction (`Trail.record_in`); any other is handed to the
`AuditWriter`, which commits many requests' records together. If that commit fails the
client gets 503 and none of the answer. Plain ASGI, like `app.fhir.middleware`.
"""

import logging
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access import Caller
from app.access.trail import TRAIL, Trail
from app.audit.events import Server, audit_row
from app.audit.writer import AuditWriter
from app.clock import now_micros
from app.errors import ClientClosedRequest, Unavailable, WriteConflict
from app.fhir.auditing import named_patients
from app.fhir.context import CALLER
from app.fhir.middleware import REQUEST_ID
from app.fhir.outcomes import error_response
from app.storage import audit as audit_storage

log = logging.getLogger("safeguard.audit")

UNAUDITED = {("GET", "/fhir/metadata"), ("HEAD", "/fhir/metadata")}
ACTIONS = {"GET": "R", "HEAD": "R", "POST": "C", "PUT": "U", "PATCH": "U", "DELETE": "D"}
WRITES = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def audited(method: str, path: str) -> bool:
    """Whether a request leaves an AuditEvent: all of /fhir but its metadata, and /auth/token."""
    if path == "/auth/token":
        return True
    fhir = path == "/fhir" or path.startswith("/fhir/")
    return fhir and (method, path.rstrip("/")) not in UNAUDITED


def interaction_of(method: str, path: str) -> tuple[str, str]:
    """(subtype, action) of a request, from its method and path: a restful-interaction code
    (http://hl7.org/fhir/R4/codesystem-restful-interaction.html), or `login` for a token."""
    if path == "/auth/token":
        return "login", "E"
    parts = [part for part in path[len("/fhir") :].split("/") if part]
    if any(part.startswith("$") for part in parts):  # an operation, its status or files
        return "operation", "E"
    if method in ("GET", "HEAD"):
        return _read_interaction(parts), "R"
    if method == "POST":
        if not parts:
            return "transaction", "E"
        if parts[-1] == "_search":
            return ("search-type" if len(parts) > 1 else "search-system"), "R"
    if method in WRITES:
        return WRITES[method], ACTIONS[method]
    return "operation", "E"


def _read_interaction(parts: list[str]) -> str:
    if not parts:
        return "search-system"
    if parts[0] == ".well-known":
        return "capabilities"
    if "_history" in parts:
        return "vread" if parts[-2:-1] == ["_history"] and len(parts) == 4 else "history"
    return "read" if len(parts) == 2 else "search-type"


def _address(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _request_id(scope: Scope) -> str:
    given: str | None = scope.get(REQUEST_ID)
    return given or ""


def _failure_text(body: bytes) -> str | None:
    """The first issue's diagnostics of an OperationOutcome answer, if it is one."""
    try:
        parsed: Any = orjson.loads(body)
        return str(parsed["issue"][0]["diagnostics"])
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None


class Auditing:
    """Leaves one AuditEvent per audited request, committed before the answer is sent."""

    def __init__(self, app: ASGIApp, writer: AuditWriter, server: Server) -> None:
        self.app, self.writer, self.server = app, writer, server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not audited(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        subtype, action = interaction_of(scope["method"], scope["path"])
        trail = Trail(_request_id(scope), subtype, action, _address(scope))
        self._name_patients(trail, scope)
        trail.record_in = lambda conn: self._record_in(conn, trail, scope)
        trail.success_row = lambda: self._row(trail, scope, 200, None)
        scope[TRAIL] = trail
        await Exchange(self, trail, scope, send).run(receive)

    def _name_patients(self, trail: Trail, scope: Scope) -> None:
        """The Patients a request names before it runs, refused or not: one in its path
        (`Patient/x`, `Patient/x/Flag`, `Patient/x/$op`), and those a search's parameters
        name; and the query as sent."""
        parts = [part for part in scope["path"][len("/fhir") :].split("/") if part]
        if len(parts) >= 2 and parts[0] == "Patient" and parts[1][:1] not in ("$", "_"):
            trail.named(parts[1])
        raw = scope.get("query_string", b"").decode("latin-1")
        if raw:
            trail.query = f"{'/'.join(parts)}?{raw}"
        if trail.subtype.startswith("search") and parts and raw:
            resource_type = parts[-1] if parts[-1] != "_search" else parts[-2]
            pairs = parse_qsl(raw, keep_blank_values=True)
            for patient_id in named_patients(resource_type, pairs, self.server.base):
                trail.named(patient_id)

    async def _record_in(self, conn: Any, trail: Trail, scope: Scope) -> None:
        """Store a write's AuditEvent in the write's own transaction (success: the write
        commits with it, or neither does)."""
        try:
            await audit_storage.insert(conn, [self._row(trail, scope, 200, None)], last=True)
        except WriteConflict:
            raise
        except Exception as exc:  # the write rolls back with it: nothing was applied
            log.error("audit record of a write not stored: %s", type(exc).__name__)
            raise Unavailable.of("the audit trail cannot be written now; try again") from exc

    async def record(
        self, trail: Trail, scope: Scope, status: int, description: str | None
    ) -> None:
        """Store the request's AuditEvent unless its write stored it."""
        if not trail.recorded:
            await self.writer.write(self._row(trail, scope, status, description))
            trail.recorded = True

    def _row(self, trail: Trail, scope: Scope, status: int, description: str | None) -> Any:
        caller: Caller | None = scope.get(CALLER)
        return audit_row(
            trail,
            caller,
            self.server,
            status=status,
            description=description,
            recorded=now_micros(),
        )


class Exchange:
    """One audited request: the response's start is held until its AuditEvent is stored."""

    __slots__ = ("answered", "auditing", "replaced", "scope", "send", "start", "trail")

    def __init__(self, auditing: Auditing, trail: Trail, scope: Scope, send: Send) -> None:
        self.auditing, self.trail, self.scope, self.send = auditing, trail, scope, send
        self.start: Message | None = None
        self.replaced = False  # the answer was withheld: its audit record could not be stored
        self.answered = False

    async def run(self, receive: Receive) -> None:
        try:
            await self.auditing.app(self.scope, receive, self.forward)
        except ClientDisconnect:  # the client left before its request was read: one log line
            if not self.answered:
                await self._record_failure(ClientClosedRequest.status, "the client disconnected")
        except Exception:
            if not self.answered and not self.trail.recorded:
                await self._record_failure(500, "internal error")
            raise

    async def _record_failure(self, status: int, description: str) -> None:
        try:
            await self.auditing.record(self.trail, self.scope, status, description)
        except Exception as exc:  # the error itself is raised on; this one is only logged
            log.error("audit record of a failed request not stored: %s", type(exc).__name__)

    async def forward(self, message: Message) -> None:
        if self.replaced:
            return
        if message["type"] == "http.response.start":
            self.start = message
            return
        if self.start is not None and message["type"] == "http.response.body":
            start, self.start = self.start, None
            if not await self._audited(start, message):
                return
            await self.send(start)
        await self.send(message)

    async def _audited(self, start: Message, first: Message) -> bool:
        """Store the AuditEvent; on failure answer 503 instead (False: drop the answer), unless
        the answer is a 503 already."""
        status = int(start["status"])
        description = _failure_text(first.get("body", b"")) if status >= 400 else None
        self.answered = True
        try:
            await self.auditing.record(self.trail, self.scope, status, description)
        except Unavailable as error:
            if status == 503:  # already a refusal holding no data, and more precise (the
                return True  # database is out of reach; a write's outcome is unknown)
            self.replaced = True
            await error_response(error)(self.scope, _no_body, self.send)
            return False
        return True


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
