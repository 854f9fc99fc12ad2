"""Runtime configuration, read from the environment (prefix ``AIGUILLAGE_``).

Why: one typed object built once at start-up (CLI, web app factory, test fixture) and passed
down, never read at import time, so tests can build their own without monkeypatching globals.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "dev-only-secret-change-me-in-production"
MIN_SECRET_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIGUILLAGE_", extra="ignore")

    database_url: str = "sqlite:///var/aiguillage.db"
    base_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    max_body_bytes: int = 1_000_000  # request bodies larger than this get a French 413

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

    # Schedules of the deployments (workflows.deployments): a cron expression in
    # Europe/Paris, an interval such as "30s", "15m", "2h", or "off".
    schedule_intake: str = "15m"
    schedule_notifications: str = "5m"
    schedule_allocation: str = "0 6 * * 1"
    schedule_reporting: str = "0 5 * * *"
    schedule_retention: str = "30 3 * * *"

    # Data lifetime (engine.retention): the national default of a person's file, counted from
    # the later of their last contact and their exit (each territory may set 1 to 36 months
    # in the database); the notice to the chantier's CIP/ESP before; the logs kept.
    retention_months: int = 24
    retention_notice_days: int = 30
    retention_access_log_months: int = 12  # 6 to 12
    retention_login_attempt_days: int = 30
    retention_outbox_days: int = 90  # sent, parked, digested and skipped messages
    retention_batch_size: int = 200  # people anonymised per transaction
    retention_batch_pause_s: float = 0.0  # pause between batches (spares daytime writers)


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides (tests, CLI flags)."""
    return Settings(**overrides)  # type: ignore[arg-type]


def secret_problem(settings: Settings) -> str | None:
    """Why the secret key must not be used to serve (French), or None when it is fine.

    The key signs partner links and session-bound forms: with the public default, anyone
    could forge a link and answer an orientation in a partner's name."""
    secret = settings.secret_key.get_secret_value()
    if secret == DEFAULT_SECRET:
        return (
            "la clé secrète est celle par défaut, publique. Définissez AIGUILLAGE_SECRET_KEY "
            f"(au moins {MIN_SECRET_LENGTH} caractères aléatoires, par exemple : "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'), "
            "ou lancez « aiguillage serve --demo » pour une démonstration."
        )
    if len(secret) < MIN_SECRET_LENGTH:
        return (
            f"la clé secrète AIGUILLAGE_SECRET_KEY est trop courte ({len(secret)} caractères) : "
            f"il en faut au moins {MIN_SECRET_LENGTH}."
        )
    return None
