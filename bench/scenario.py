"""What is measured (a scenario) and what one measurement found."""

from dataclasses import dataclass, field

from bench.server import CONSTANT_PATH, FHIR_JSON

ACCEPT = f"Accept: {FHIR_JSON}"


@dataclass(frozen=True, slots=True)
class Scenario:
    """One kind of request, sent round-robin over `paths`."""

    name: str
    label: str
    method: str
    paths: tuple[str, ...]
    status: int = 200
    body: bytes = b""
    target: float | None = None
    authenticated: bool = True  # sends the bench client's bearer token (all but the ceiling)

    def requests(self, host: str, authorization: str | None = None) -> list[bytes]:
        """The raw HTTP/1.1 requests, one per path (with this Authorization header, if any)."""
        lines = [f"Host: {host}", ACCEPT]
        if authorization is not None:
            lines.append(f"Authorization: {authorization}")
        if self.body:
            lines += [f"Content-Type: {FHIR_JSON}", f"Content-Length: {len(self.body)}"]
        head = "\r\n".join(lines)
        return [
            f"{self.method} {path} HTTP/1.1\r\n{head}\r\n\r\n".encode() + self.body
            for path in self.paths
        ]


@dataclass(slots=True)
class Measurement:
    """Counts and timings of one measured interval."""

    requests: int
    seconds: float
    errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    server_cpu: float | None = None
    loadgen_cpu: float | None = None
    machine_cpu: float | None = None
    server_us: float | None = None
    extra: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def scenarios(
    flag_paths: list[str], flag_body: bytes, notified_body: bytes | None = None
) -> list[Scenario]:
    """The ceiling (no token: the framework alone), read and create (each with a bearer token
    the server verifies); targets are ratios to the ceiling. With `notified_body`, also the
    create of a Flag that notifies a subscribed authority (its target: a ratio to create's)."""
    notified = (
        [
            Scenario(
                "notified",
                "POST /fhir/Flag, notifying",
                "POST",
                ("/fhir/Flag",),
                201,
                notified_body,
            )
        ]
        if notified_body
        else []
    )
    return [
        Scenario("ceiling", f"GET {CONSTANT_PATH}", "GET", (CONSTANT_PATH,), authenticated=False),
        Scenario("read", "GET /fhir/Flag/{id}", "GET", tuple(flag_paths), target=0.35),
        Scenario("create", "POST /fhir/Flag", "POST", ("/fhir/Flag",), 201, flag_body, target=0.22),
        *notified,
    ]
