"""The `safeguard` command: migrate the database and serve the API."""

import typer
import uvicorn

from app.settings import get_settings
from app.storage import migrate as migrations

cli = typer.Typer(help="safeguard-fhir: FHIR R4 service for child-safeguarding information.")


@cli.command()
def migrate() -> None:
    """Apply the database migrations (SAFEGUARD_DATABASE_URL)."""
    migrations.upgrade(get_settings().database_url)
    typer.echo("database is at the latest schema")


@cli.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    apply_migrations: bool = typer.Option(True, help="Migrate before serving."),
) -> None:
    """Serve the FHIR API at http://HOST:PORT/fhir."""
    settings = get_settings()
    if apply_migrations:
        migrations.upgrade(settings.database_url)
    if workers > 1 and settings.database_url.startswith("sqlite"):
        raise typer.BadParameter("SQLite serves from one worker; use PostgreSQL for more")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


def main() -> None:
    """Entry point of the `safeguard` console script."""
    cli()


if __name__ == "__main__":
    main()
