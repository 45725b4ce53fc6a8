"""Typed settings, read from environment variables and an optional ``.env`` file.

Every setting has an embedded default so the product runs with no configuration at all.
"""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = PROJECT_ROOT / "var"


def mask_token(token: str | None) -> str:
    """``r8_abcdef…`` → ``r8_a…``: enough to tell tokens apart, never enough to use one."""
    if not token:
        return "(not set)"
    return f"{token[:4]}…"


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1: addresses no other machine can reach. An
    empty or wildcard address (``""``, ``*``, ``0.0.0.0``, ``::``) means every interface."""
    host = host.strip()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{VAR_DIR / 'tuner.db'}",
        description="SQLAlchemy URL of the database (SQLite file or PostgreSQL).",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis for the RQ queue, in-flight caps and cancel flags.",
    )
    media_url: str = Field(
        default=f"file://{VAR_DIR / 'media'}",
        description="Where images are stored: file:///path or s3://bucket/prefix.",
    )
    replicate_api_token: SecretStr | None = Field(
        default=None,
        description="Replicate API token; when unset the local emulator is used.",
    )
    replicate_base_url: str | None = Field(
        default=None,
        description="Replicate API base URL (no /v1); points the client at the emulator.",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, moto); AWS when unset."
    )
    presigned_url_ttl_s: int = Field(default=900, ge=30, le=7 * 24 * 3600)

    daily_budget_usd: float = Field(default=20.0, ge=0)
    monthly_budget_usd: float = Field(default=300.0, ge=0)
    sweep_budget_usd: float = Field(default=5.0, ge=0, description="Default per-sweep cap.")
    max_cells_per_sweep: int = Field(default=2000, ge=1)

    inflight_cap: int = Field(default=32, ge=1, description="Predictions in flight per model.")
    create_rate_per_minute: int = Field(default=600, ge=1)
    chunk_size: int = Field(default=16, ge=1, description="Cells per RQ job.")
    poll_interval_s: float = Field(default=1.0, gt=0)
    cell_lease_s: int = Field(default=30, ge=5, description="A cell unseen this long is resumed.")

    upload_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    upload_max_pixels: int = Field(default=40_000_000, ge=1)
    thumbnail_max_px: int = Field(default=400, ge=32, le=1024)

    dashboard_address: str = Field(default="127.0.0.1")
    dashboard_port: int = Field(default=8501)
    auth_users_file: str | None = Field(
        default=None, description="TOML file of users and bcrypt password hashes."
    )

    @property
    def uses_emulator(self) -> bool:
        return self.replicate_api_token is None

    @property
    def masked_token(self) -> str:
        token = self.replicate_api_token
        return mask_token(token.get_secret_value() if token else None)


@functools.cache
def get_settings() -> Settings:
    return Settings()
