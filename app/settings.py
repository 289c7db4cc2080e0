"""Service settings, read from the environment with the SAFEGUARD_ prefix."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable; validated once when the app is built."""

    model_config = SettingsConfigDict(env_prefix="SAFEGUARD_", extra="ignore")

    database_url: str = "sqlite:///./data/safeguard.db"
    base_url: str = Field(
        default="http://127.0.0.1:8000/fhir",
        description="Public FHIR base URL, used in Location headers and Bundle fullUrls.",
    )
    pg_pool_min: int = Field(default=8, ge=1)
    pg_pool_max: int = Field(default=16, ge=1)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    default_page_size: int = Field(default=20, ge=1)
    max_page_size: int = Field(default=500, ge=1)
    write_retries: int = Field(default=5, ge=1)
    log_level: str = "INFO"


@lru_cache
def get_settings() -> Settings:
    """Settings built from the current environment (cached)."""
    return Settings()
