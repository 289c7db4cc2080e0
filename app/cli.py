"""The `safeguard` command: migrate the database, seed the demo population, serve the API."""

import asyncio
import time
from datetime import date

import typer
import uvicorn

from app.demo import seeding as demo_seed
from app.demo.families import MAX_FAMILIES
from app.demo.population import MAX_SEED
from app.main import create_app
from app.openapi.document import render
from app.settings import Settings, get_settings
from app.storage import migrate as migrations

cli = typer.Typer(help="safeguard-fhir: FHIR R4 service for child-safeguarding information.")
SERVE_DEMO_FAMILIES, SERVE_DEMO_SEED = 20, 1


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
    """Seed through an in-process app and print what was written and three calls to try."""
    started = time.perf_counter()
    seeded = asyncio.run(
        demo_seed.seed_database(settings, families, seed, date.today(), only_if_empty)
    )
    if seeded is None:
        typer.echo("the database holds data already: no demo population written")
        return
    typer.echo(_summary(seeded, families, seed, time.perf_counter() - started))
    base = settings.base_url.rstrip("/")
    typer.echo("try:")
    for path in seeded.examples:
        typer.echo(f"  curl -s '{base}/{path}'")


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
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
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
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


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
