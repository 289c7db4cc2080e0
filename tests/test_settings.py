"""Settings come from the environment; importing the app reads and connects to nothing."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.main import create_app
from app.settings import (
    TABLE_BEGIN,
    TABLE_END,
    Settings,
    settings_rows,
    settings_table,
    with_settings_table,
)


def test_importing_the_app_reads_no_settings_and_opens_no_connection() -> None:
    env = {
        "SAFEGUARD_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "SAFEGUARD_MAX_BODY_BYTES": "not-a-number",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import app.main, app.cli; app.main.create_app"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_settings_read_the_safeguard_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEGUARD_MAX_PAGE_SIZE", "77")
    monkeypatch.setenv("SAFEGUARD_BASE_URL", "https://fhir.example.org/fhir")
    settings = Settings()
    assert settings.max_page_size == 77
    assert settings.base_url == "https://fhir.example.org/fhir"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subscription_endpoints", "ftp://hooks.example.gov.uk"),
        ("subscription_endpoints", "http://hooks.example.gov.uk"),  # http only to loopback
        ("subscription_private_networks", "10.0.0.1/8"),
    ],
)
def test_a_bad_notification_allow_list_stops_the_app_at_start(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=r"hooks\.example\.gov\.uk|10\.0\.0\.1/8"):
        create_app(Settings(database_url="sqlite:///:memory:", **{field: value}))


README = Path(__file__).parents[1] / "README.md"


def test_the_readmes_settings_table_is_the_one_generated_from_the_settings() -> None:
    readme = README.read_text()
    assert with_settings_table(readme) == readme, (
        "README.md's settings table is not the one generated from app/settings.py: "
        "run `make settings-table` (safeguard settings --readme README.md)"
    )


def test_every_setting_has_a_row_with_its_variable_and_a_description() -> None:
    rows = settings_rows()
    assert [variable for variable, _, _ in rows] == [
        f"SAFEGUARD_{name.upper()}" for name in Settings.model_fields
    ]
    assert all(description.endswith(".") for _, _, description in rows)
    defaults = {variable: default for variable, default, _ in rows}
    assert defaults["SAFEGUARD_RATE_LIMIT_PER_MINUTE"] == "unset"
    assert defaults["SAFEGUARD_CORS_ORIGINS"] == "empty"
    assert defaults["SAFEGUARD_LOCAL_TOKENS"] == "`true`"


def test_the_settings_command_prints_the_table_and_writes_it_between_the_markers(
    tmp_path: Path,
) -> None:
    printed = CliRunner().invoke(cli, ["settings", "--markdown"])
    assert printed.exit_code == 0 and printed.output == settings_table()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{TABLE_BEGIN}\n| stale |\n{TABLE_END}\n\nafter\n")
    written = CliRunner().invoke(cli, ["settings", "--readme", str(readme)])
    assert written.exit_code == 0, written.output
    assert readme.read_text() == f"# x\n\n{TABLE_BEGIN}\n{settings_table()}{TABLE_END}\n\nafter\n"
    assert "| `SAFEGUARD_LOG_LEVEL` | `INFO` | " in settings_table()
