"""`safeguard reconcile`: read the register, read what the server holds over HTTP, classify,
report, and with `--apply` write the differences. Exit status: 0 when nothing is new, changed,
missing or conflicting (after `--apply`: nothing is left to do and nothing conflicts); 1 when
any remain; 2 on error."""

import asyncio
import datetime
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from app.bulk_client.credentials import ClientError, Credentials, read_key
from app.flags.codes import vocabulary as vocabulary_at
from app.progress import Bars
from app.reconcile import remote as server
from app.reconcile.matching import CHANGED, CONFLICTING, MISSING, NEW, Plan, reconcile
from app.reconcile.register import RegisterError, read_register
from app.reconcile.report import document, show, write
from app.reconcile.writing import Applied, Context, apply

AGREED, DIFFERENT, FAILED = 0, 1, 2
TIMEOUT = httpx.Timeout(120.0, connect=10.0)
DEFAULT_SCOPE = "system/Flag.cruds system/Patient.rs system/Organization.rs"


@dataclass(frozen=True, slots=True)
class Options:
    """What the command was asked."""

    source: Path
    server: str
    client_id: str
    key: Path | None = None
    kid: str | None = None
    token: str | None = None
    token_source: Callable[[], str] | None = None  # a local token minted on demand
    scope: str = DEFAULT_SCOPE
    token_url: str | None = None
    organisation: str | None = None  # the register's ODS code (else its rows')
    canonical_base: str | None = None
    identifier_system: str | None = None
    removal_reason: str = "no-longer-applicable"
    apply: bool = False
    batch: int = 100
    as_of: str | None = None
    report: Path | None = None
    form: str = "json"
    show_progress: bool = True


class LocalCredentials:
    """A token minted locally for the client (as `safeguard token`), again before it expires."""

    LIFETIME = 240.0  # seconds a minted token is used (tokens live 300 s by default)

    def __init__(self, mint: Callable[[], str]) -> None:
        self.mint, self._token, self._minted = mint, "", float("-inf")

    async def header(self, client: httpx.AsyncClient, server: str) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        if loop.time() - self._minted > self.LIFETIME:
            self._token = await asyncio.to_thread(self.mint)
            self._minted = loop.time()
        return {"Authorization": f"Bearer {self._token}"}


def credentials(options: Options) -> Credentials | LocalCredentials:
    """`--key` (SMART Backend Services), `--token`, or a token minted locally."""
    if options.key is not None:
        key = read_key(options.key, options.kid)
        return Credentials(
            client_id=options.client_id, key=key, scope=options.scope, token_url=options.token_url
        )
    if options.token is not None:
        return Credentials(token=options.token)
    if options.token_source is not None:
        return LocalCredentials(options.token_source)
    raise ClientError("give --key (the client's private key) or --token")


def organisation_of(options: Options, authors: Counter[str]) -> str:
    """The register's organisation: as given, or the one ODS code its rows name."""
    if options.organisation is not None:
        return options.organisation.upper()
    named = [ods for ods in authors if ods]
    if len(named) != 1:
        raise ClientError("the register names several author ODS codes; give --organisation")
    return named[0]


@dataclass(slots=True)
class Outcome:
    """What a run found and did, and how many requests it sent."""

    plan: Plan
    applied: Applied | None
    requests: int


async def run(options: Options, progress: Bars) -> Outcome:
    """Read, compare and (with --apply) write."""
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as client:
        remote = server.Remote(client, options.server, credentials(options))
        canonical = options.canonical_base or await server.canonical_base(remote)
        vocabulary = vocabulary_at(canonical)
        system = options.identifier_system or vocabulary.url("Id", "register-flag")
        entries = read_register(options.source, vocabulary, system)
        organisation = organisation_of(options, Counter(e.author_ods for e in entries))
        organisation_id = await server.organisation_id(remote, organisation)
        with progress.task("reading the flags held here") as advance:
            held = await server.flags_by(remote, organisation_id, advance)
        numbers = {e.nhs_number for e in entries if e.problem is None}
        with progress.task("finding the children", len(numbers)) as advance:
            children = await server.children(remote, numbers, advance)
        by_patient = {patient: nhs for nhs, patient in children.items()}
        subjects = {server.subject_of(f) for f in held}
        by_patient |= await server.nhs_numbers_of(remote, subjects - by_patient.keys())
        flags = [server.server_flag(f, by_patient, vocabulary) for f in held]
        today = options.as_of or datetime.date.today().isoformat()
        plan = reconcile(entries, organisation, children, flags, today)
        applied = None
        if options.apply:
            context = Context(vocabulary, organisation_id, children, today, options.removal_reason)
            to_do = plan.to_do()
            with progress.task("applying", len(to_do)) as advance:
                applied = await apply(remote, to_do, context, options.batch, advance)
        return Outcome(plan, applied, remote.requests)


def status_of(outcome: Outcome) -> int:
    """0 when the register and the server agree (or now do), else 1."""
    counts = outcome.plan.counts()
    if outcome.applied is None:
        left = counts[NEW] + counts[CHANGED] + counts[MISSING] + counts[CONFLICTING]
    else:
        left = counts[CONFLICTING] + len(outcome.applied.refused)
    return DIFFERENT if left else AGREED


def reconcile_command(options: Options, console: Console) -> int:
    """Run, show and write the report; the exit status."""
    try:
        with Bars(options.show_progress) as bar:
            outcome = asyncio.run(run(options, bar))
    except (ClientError, RegisterError) as exc:
        console.print(f"reconcile failed: {exc}", markup=False)
        return FAILED
    except (httpx.HTTPError, OSError) as exc:
        console.print(f"reconcile failed: {type(exc).__name__}: {exc}", markup=False)
        return FAILED
    found = document(outcome.plan, outcome.applied, outcome.requests)
    show(console, found, options.apply)
    if options.report is not None:
        write(options.report, found, options.form)
    return status_of(outcome)
