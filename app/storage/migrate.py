"""Apply the Alembic migrations: the only way the schema is built, in tests too.

The migration scripts are package data (`app/storage/migrations/`), so an installed
`safeguard` migrates from site-packages as it does from a source tree; the Alembic config is
built here, and no alembic.ini is read at run time.
"""

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config for this project's migrations, aimed at `database_url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database up to `revision`."""
    command.upgrade(alembic_config(database_url), revision)
