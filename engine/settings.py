"""Runtime configuration, read from the environment (prefix ``AIGUILLAGE_``).

Why: one typed object built once at start-up (CLI, web app factory, test fixture) and passed
down, never read at import time, so tests can build their own without monkeypatching globals.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIGUILLAGE_", extra="ignore")

    database_url: str = "sqlite:///var/aiguillage.db"
    base_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr = SecretStr("dev-only-secret-change-me-in-production")

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_timeout_s: float = 10.0
    mail_from: str = "Aiguillage <aiguillage@convergence-france.example.org>"

    rules_file: Path | None = None
    mail_dir: Path = Path("var/mail")

    # Deadlines (business days / days), see notifications.
    triage_deadline_business_days: int = 2
    escalation_after_business_days: int = 2
    partner_answer_days: int = 10
    partner_reminder_every_days: int = 10
    partner_expiry_days: int = 30
    proposal_expiry_days: int = 7
    digest_hour: int = 7


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]
