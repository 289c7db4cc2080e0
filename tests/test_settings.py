"""Settings come from the environment; importing the app reads and connects to nothing."""

import subprocess
import sys
from pathlib import Path

import pytest

from app.main import create_app
from app.settings import Settings


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


def test_every_setting_is_in_the_readmes_configuration_table() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]
    table = table[: table.index("\n## ")]
    missing = [name for name in Settings.model_fields if f"`SAFEGUARD_{name.upper()}`" not in table]
    assert missing == []
