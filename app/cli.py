"""The `safeguard` command: migrate the database, seed the demo population, serve the API."""

import asyncio
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import orjson
import typer
import uvicorn
from rich.console import Console

from app.audit import commands as audit_commands
from app.auth import commands
from app.bulk_client import command as bulk
from app.bulk_client.credentials import DEFAULT_SCOPE, ClientError
from app.bulk_client.export import ExportRequest
from app.demo import seeding as demo_seed
from app.demo.families import MAX_FAMILIES
from app.demo.population import MAX_SEED
from app.logs import logging_config
from app.main import create_app
from app.metrics import workers_sharing_metrics
from app.openapi.document import render
from app.progress import Bars
from app.reconcile import command as reconciling
from app.server import http_protocol
from app.settings import Settings, get_settings, settings_rows, settings_table, with_settings_table
from app.storage import migrate as migrations

cli = typer.Typer(help="safeguard-fhir: FHIR R4 service for child-safeguarding information.")
SERVE_DEMO_FAMILIES, SERVE_DEMO_SEED = 20, 1
T = TypeVar("T")


@cli.command()
def migrate() -> None:
    """Apply the database migrations (SAFEGUARD_DATABASE_URL)."""
    migrations.upgrade(get_settings().database_url)
    typer.echo("database is at the latest schema")


@cli.command("seed-demo")
def seed_demo(
    families: int = typer.Option(50, min=1, max=MAX_FAMILIES, help="Families to write."),
    seed: int = typer.Option(1, min=0, max=MAX_SEED, help="The same seed, the same data."),
) -> None:
    """Write a synthetic demo population into SAFEGUARD_DATABASE_URL (migrating it first)."""
    settings = get_settings()
    migrations.upgrade(settings.database_url)
    _seed(settings, families, seed, only_if_empty=False)


def _seed(settings: Settings, families: int, seed: int, only_if_empty: bool) -> None:
    """Seed through an in-process app (a progress bar on stderr) and print what was written,
    for which server, and three calls to try."""
    started = time.perf_counter()
    with Bars() as bars, bars.task("writing the demo families", families + 1) as advance:
        seeded = asyncio.run(
            demo_seed.seed_database(settings, families, seed, date.today(), only_if_empty, advance)
        )
    if seeded is None:
        typer.echo("the database holds data already: no demo population written")
        return
    typer.echo(_summary(seeded, families, seed, time.perf_counter() - started))
    base = settings.base_url.rstrip("/")
    typer.echo(f"seeded for the server at {base} (SAFEGUARD_BASE_URL)")
    typer.echo("try (a token lasts 5 minutes; demo-gp is a GP practice of the demo):")
    typer.echo("  TOKEN=$(.venv/bin/safeguard token --client demo-gp | tail -1)")
    for path in seeded.examples:
        typer.echo(f"  curl -s -H \"Authorization: Bearer $TOKEN\" '{base}/{path}'")


def _summary(seeded: demo_seed.Seeded, families: int, seed: int, took: float) -> str:
    """One line: what a seeding wrote (only counts of synthetic data)."""
    written = seeded.written
    if not written:
        return f"demo population, seed {seed}: all {families} families are there already"
    line = (
        f"demo population, seed {seed}: wrote {written['Organization']} organisations and "
        f"{seeded.families} families ({written['Patient']} patients, {written['Flag']} flags, "
        f"{written['Condition']} conditions, {written['RelatedPerson']} related persons) "
        f"in {took:.1f} s"
    )
    return line + (f"; {seeded.skipped} were there already" if seeded.skipped else "")


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="The address to listen on (0.0.0.0: all)."),
    port: int = typer.Option(8000, help="The port to listen on."),
    workers: int = typer.Option(
        1, min=1, help="Worker processes (PostgreSQL only); they share their /metrics."
    ),
    apply_migrations: bool = typer.Option(True, help="Migrate before serving."),
    seed_demo: bool = typer.Option(
        True,
        "--seed-demo/--no-seed-demo",
        envvar="SAFEGUARD_SEED_DEMO",
        help=f"On a database that has never held a resource, first write the demo population "
        f"({SERVE_DEMO_FAMILIES} families, seed {SERVE_DEMO_SEED}).",
    ),
) -> None:
    """Serve the FHIR API at http://HOST:PORT/fhir."""
    settings = get_settings()
    if apply_migrations:
        migrations.upgrade(settings.database_url)
    if workers > 1 and settings.database_url.startswith("sqlite"):
        raise typer.BadParameter("SQLite serves from one worker; use PostgreSQL for more")
    if seed_demo:
        _seed(settings, SERVE_DEMO_FAMILIES, SERVE_DEMO_SEED, only_if_empty=True)
    run_server(settings, host, port, workers)


def run_server(settings: Settings, host: str, port: int, workers: int) -> None:
    """uvicorn serving the app from `workers` processes, which share their metrics."""
    with workers_sharing_metrics(workers):
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            **uvicorn_options(settings),
        )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn serves: logging, no Server header, idle and connection limits, and its
    HTTP protocol with deadlines for a request's head and body (`app.server`)."""
    return {
        "http": http_protocol(settings),
        "ws": "none",  # no WebSocket routes: upgrades stay HTTP requests, under their deadlines
        "log_level": settings.log_level.lower(),
        "log_config": logging_config(settings.log_level),
        "access_log": False,
        "server_header": False,  # no "Server: uvicorn" telling what to attack
        "timeout_keep_alive": settings.keep_alive_seconds,
        "limit_concurrency": settings.max_connections,
    }


clients_cli = typer.Typer(help="OAuth clients (SMART Backend Services) that may call the API.")
keys_cli = typer.Typer(help="The server's token-signing keys.")
cli.add_typer(clients_cli, name="clients")
cli.add_typer(keys_cli, name="keys")


def _refusing(work: Callable[[], T]) -> T:
    """Run `work`; a refusal is printed and exits with status 1."""
    try:
        return work()
    except commands.Refused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from exc


@clients_cli.command("add")
def add_client(
    client_id: str = typer.Option(..., "--id", help="The client id (its assertions' iss)."),
    org: str = typer.Option(..., "--org", help="Its organisation: Organization/<id>."),
    role: str = typer.Option(..., help="health, local-authority, system or auditor."),
    scope: str = typer.Option(..., help='SMART system scopes, e.g. "system/Flag.rs".'),
    jwks: Path = typer.Option(..., help="A JWKS file of its public keys (RSA or EC, with kid)."),
) -> None:
    """Register a client with its public keys."""
    settings = get_settings()
    added = _refusing(lambda: commands.add_client(settings, client_id, org, role, scope, jwks))
    typer.echo(f"registered {added.client_id} ({added.role}, Organization/{added.organisation})")


@clients_cli.command("keys")
def replace_client_keys(
    client_id: str = typer.Argument(..., help="The live client whose keys change."),
    jwks: Path = typer.Option(..., help="A JWKS file of its new public keys (with kid)."),
) -> None:
    """Replace a client's public keys (its key rotation); tokens it holds stay valid."""
    _refusing(lambda: commands.replace_client_keys(get_settings(), client_id, jwks))
    typer.echo(f"replaced the keys of {client_id}")


@clients_cli.command("list")
def list_clients() -> None:
    """The registered clients: id, organisation, role, scope, and whether revoked."""
    for found in commands.list_clients(get_settings()):
        state = "revoked" if found.revoked_at is not None else "live"
        line = f"{found.client_id}\tOrganization/{found.organisation}\t{found.role}"
        typer.echo(f"{line}\t{found.scope}\t{state}")


@clients_cli.command("remove")
def remove_client(client_id: str = typer.Argument(..., help="The client to revoke.")) -> None:
    """Revoke a client: its tokens stop working at its next request."""
    _refusing(lambda: commands.remove_client(get_settings(), client_id))
    typer.echo(f"revoked {client_id}")


@keys_cli.command("rotate")
def rotate_keys(
    revoke: bool = typer.Option(
        False,
        "--revoke",
        help="Drop every earlier key now (one thought leaked): tokens they signed stop "
        "working within 30 s, and clients get new ones.",
    ),
) -> None:
    """Sign new tokens with a new key; the previous one verifies until its tokens expire."""
    typer.echo(f"new signing key {commands.rotate_keys(get_settings(), revoke)}")


@cli.command()
def token(client: str = typer.Option(..., "--client", help="A client with a local key.")) -> None:
    """Print an access token (last line) for a client registered with a local key, such as
    the demo clients; run with the server's settings."""
    typer.echo(_refusing(lambda: commands.local_token(get_settings(), client)))


def _listed(values: list[str]) -> tuple[str, ...]:
    """Values given repeatedly or comma-separated, in order."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


@cli.command("export")
def export(
    server: str = typer.Option(..., help="The FHIR base URL, e.g. http://127.0.0.1:8000/fhir."),
    out: Path = typer.Option(..., "--out", help="The folder the files are written to."),
    client_id: str | None = typer.Option(None, "--client-id", help="The client's id (iss)."),
    key: Path | None = typer.Option(None, help="The client's private key: a JWK or PEM file."),
    kid: str | None = typer.Option(None, help="The key's kid (PEM: else its thumbprint)."),
    scope: str = typer.Option(DEFAULT_SCOPE, help="The scopes to ask for."),
    token_url: str | None = typer.Option(None, help="The token endpoint (else discovered)."),
    token: str | None = typer.Option(None, envvar="SAFEGUARD_EXPORT_TOKEN", help="A token."),
    resource_type: list[str] = typer.Option([], "--type", help="_type: types to export."),
    since: str | None = typer.Option(None, help="_since: only what changed from this instant."),
    type_filter: list[str] = typer.Option([], help="_typeFilter, e.g. Flag?status=active."),
    elements: list[str] = typer.Option([], help="_elements: the elements to keep."),
    patient_level: bool = typer.Option(False, help="Patient/$export: Patients' compartments."),
    keep: bool = typer.Option(False, help="Leave the files on the server (else DELETE them)."),
    progress: bool = typer.Option(True, help="Show a progress display on stderr."),
) -> None:
    """Run a Bulk Data export against a server and download its files: exit 0 done, 1 done
    but the manifest lists errors, 2 failed."""
    request = ExportRequest(
        patient_level, _listed(resource_type), since, tuple(type_filter), _listed(elements)
    )
    options = bulk.Options(
        server, out, request, token, client_id, key, kid, scope, token_url, keep, progress
    )
    raise typer.Exit(bulk.export(options, Console(stderr=True)))


def _local_tokens(client_id: str) -> Callable[[], str]:
    """Mints a token for a client with a local key, as `safeguard token` does; a refusal is
    the command's error (exit 2), not a crash."""

    def mint() -> str:
        try:
            return commands.local_token(get_settings(), client_id)
        except commands.Refused as exc:
            message = f"no local token for {client_id} (give --key or --token): {exc}"
            raise ClientError(message) from exc

    return mint


@cli.command("reconcile")
def reconcile(
    source: Path = typer.Argument(..., help="The register: CSV, FHIR NDJSON or a FHIR Bundle."),
    server: str = typer.Option(..., help="The FHIR base URL, e.g. http://127.0.0.1:8000/fhir."),
    client: str = typer.Option(..., "--client", help="The client's id (its assertions' iss)."),
    key: Path | None = typer.Option(None, help="The client's private key: a JWK or PEM file."),
    kid: str | None = typer.Option(None, help="The key's kid (PEM: else its thumbprint)."),
    token: str | None = typer.Option(None, envvar="SAFEGUARD_RECONCILE_TOKEN", help="A token."),
    scope: str = typer.Option(reconciling.DEFAULT_SCOPE, help="The scopes to ask for."),
    token_url: str | None = typer.Option(None, help="The token endpoint (else discovered)."),
    organisation: str | None = typer.Option(None, help="The register's ODS code (else its rows')."),
    canonical_base: str | None = typer.Option(None, help="Where the flag-type code system is."),
    identifier_system: str | None = typer.Option(None, help="System of the CSV's identifiers."),
    removal_reason: str = typer.Option("no-longer-applicable", help="Why a missing flag ends."),
    apply: bool = typer.Option(False, "--apply", help="Write the differences (else a dry run)."),
    batch: int = typer.Option(100, min=1, max=1000, help="Entries per transaction Bundle."),
    as_of: str | None = typer.Option(None, help="The day end dates are judged by (YYYY-MM-DD)."),
    report: Path | None = typer.Option(None, help="Write the report to this file."),
    form: str = typer.Option("json", "--format", help="The report file's format: json or csv."),
    progress: bool = typer.Option(True, help="Show progress bars on stderr."),
) -> None:
    """Compare a register held elsewhere with the server and (--apply) write the differences:
    exit 0 when they agree, 1 when differences or conflicts remain, 2 on error."""
    if form not in ("json", "csv"):
        raise typer.BadParameter("json or csv", param_hint="--format")
    options = reconciling.Options(
        source,
        server,
        client,
        key=key,
        kid=kid,
        token=token,
        token_source=_local_tokens(client),
        scope=scope,
        token_url=token_url,
        organisation=organisation,
        canonical_base=canonical_base,
        identifier_system=identifier_system,
        removal_reason=removal_reason,
        apply=apply,
        batch=batch,
        as_of=as_of,
        report=report,
        form=form,
        show_progress=progress,
    )
    raise typer.Exit(reconciling.reconcile_command(options, Console()))


audit_cli = typer.Typer(help="The audit trail: its hash chain of AuditEvents.")
cli.add_typer(audit_cli, name="audit")


def _anchor(value: str | None) -> tuple[int, str] | None:
    """SEQ:HASH as given to `--anchor`."""
    if value is None:
        return None
    seq, _, digest = value.partition(":")
    if not seq.isdigit() or len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise typer.BadParameter("expected SEQ:HASH, the hash 64 lowercase hex digits")
    return int(seq), digest


def _readable(work: Callable[[], T]) -> T:
    """Run `work`; if the audit trail cannot be read, say why and exit with status 2."""
    try:
        return work()
    except audit_commands.Unreadable as exc:
        typer.echo(f"error: cannot read the audit trail: {exc}", err=True)
        raise typer.Exit(2) from exc


@audit_cli.command("verify")
def verify_audit(
    anchor: str | None = typer.Option(
        None, help="SEQ:HASH, a head an earlier verify reported: fail unless the chain holds it."
    ),
    unsealed_after: int = typer.Option(
        60, min=1, help="Report records left unsealed for longer than this many seconds."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object instead of lines."),
) -> None:
    """Check the audit trail's hash chain, read-only: exit 0 intact, 1 not, 2 unreadable."""
    head = _anchor(anchor)
    verdict = _readable(lambda: audit_commands.verify_trail(get_settings(), head, unsealed_after))
    if as_json:
        typer.echo(orjson.dumps(verdict.as_json(unsealed_after)).decode())
    else:
        for line in verdict.lines(unsealed_after):
            typer.echo(line)
    raise typer.Exit(0 if verdict.intact else 1)


@audit_cli.command("seal")
def seal_audit() -> None:
    """Seal the AuditEvents committed and not yet sealed (a running server does it on its own)."""
    sealed = _readable(lambda: audit_commands.seal_trail(get_settings()))
    typer.echo(f"sealed {sealed} records")


@cli.command("settings")
def settings_command(
    markdown: bool = typer.Option(False, "--markdown", help="As the README's Markdown table."),
    readme: Path | None = typer.Option(
        None, help="Write the table between the settings markers of this file (README.md)."
    ),
) -> None:
    """Every setting: its environment variable, default and meaning."""
    if readme is not None:
        readme.write_text(with_settings_table(readme.read_text()))
        typer.echo(f"settings table written to {readme}")
    elif markdown:
        typer.echo(settings_table(), nl=False)
    else:
        for variable, default, description in settings_rows():
            typer.echo(f"{variable} ({default}): {description}")


@cli.command()
def openapi() -> None:
    """Print the OpenAPI document of the API (what `make openapi` commits)."""
    app = create_app(Settings(database_url="sqlite:///:memory:"))  # never started: no I/O
    typer.echo(render(app), nl=False)


def main() -> None:
    """Entry point of the `safeguard` console script."""
    cli()


if __name__ == "__main__":
    main()
