"""The retention policy: the national default, each territory's override, the logs' lifetimes.

Why settings plus a column: the national default and the logs' lifetimes are configuration
(``AIGUILLAGE_RETENTION_*``, checked here with French messages naming the variable), while a
territory's override is a decision of the national team, made in the application, audited,
and kept within 1 to 36 months by the database itself (a CHECK constraint).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.clock import Clock
from engine.domain.errors import Forbidden, NotFound, Refused
from engine.store import models as m
from engine.store.settings import Settings
from matching.grid import add_months

MIN_MONTHS, MAX_MONTHS = 1, 36
ACCESS_LOG_MONTHS = (6, 12)


class RetentionError(Refused):
    """A retention setting or value out of its range (French message naming it)."""


# (setting, environment variable, lowest, highest) of every number of the policy.
_BOUNDS: tuple[tuple[str, str, float, float], ...] = (
    ("retention_months", "AIGUILLAGE_RETENTION_MONTHS", MIN_MONTHS, MAX_MONTHS),
    ("retention_notice_days", "AIGUILLAGE_RETENTION_NOTICE_DAYS", 1, 90),
    ("retention_access_log_months", "AIGUILLAGE_RETENTION_ACCESS_LOG_MONTHS", *ACCESS_LOG_MONTHS),
    ("retention_login_attempt_days", "AIGUILLAGE_RETENTION_LOGIN_ATTEMPT_DAYS", 1, 365),
    ("retention_outbox_days", "AIGUILLAGE_RETENTION_OUTBOX_DAYS", 1, 3650),
    ("retention_batch_size", "AIGUILLAGE_RETENTION_BATCH_SIZE", 1, 5_000),
    ("retention_batch_pause_s", "AIGUILLAGE_RETENTION_BATCH_PAUSE_S", 0, 60),
)


def check_settings(settings: Settings) -> None:
    """Raise RetentionError (French, naming the variable) on a value out of its range."""
    for name, variable, low, high in _BOUNDS:
        value = getattr(settings, name)
        if not low <= value <= high:
            raise RetentionError(
                f"{variable} : {value:g} hors de la plage permise ({low:g} à {high:g})"
            )


@dataclass(frozen=True)
class Policy:
    """The numbers one run works with, read once."""

    default_months: int
    notice_days: int
    access_log_months: int
    login_attempt_days: int
    outbox_days: int
    by_territory: dict[int, int] = field(default_factory=dict)  # territory id -> months

    def months(self, territory_id: int | None) -> int:
        """The retention of a file of this territory (chantiers outside: the default)."""
        if territory_id is None:
            return self.default_months
        return self.by_territory.get(territory_id, self.default_months)

    def due_on(self, reference_day: date, territory_id: int | None) -> date:
        """The day a file whose last contact or exit was ``reference_day`` is anonymised."""
        return add_months(reference_day, self.months(territory_id))


def load_policy(session: Session, settings: Settings) -> Policy:
    check_settings(settings)
    overrides: dict[int, int] = {
        tid: int(months or 0)
        for tid, months in session.execute(
            select(m.Territory.id, m.Territory.retention_months).where(
                m.Territory.retention_months.is_not(None)
            )
        ).all()
    }
    return Policy(
        default_months=settings.retention_months,
        notice_days=settings.retention_notice_days,
        access_log_months=settings.retention_access_log_months,
        login_attempt_days=settings.retention_login_attempt_days,
        outbox_days=settings.retention_outbox_days,
        by_territory=overrides,
    )


def parse_months(text: str | int | None) -> int | None:
    """A territory's retention as typed: a number of months, or empty / « défaut » for the
    national default (None). RetentionError in French otherwise."""
    if text is None:
        return None
    raw = str(text).strip().lower()
    if raw in ("", "defaut", "défaut", "default"):
        return None
    if not raw.isdigit() or len(raw) > 3:
        raise RetentionError(
            f"durée de conservation : « {str(text)[:20]} » n'est pas un nombre de mois"
        )
    months = int(raw)
    if not MIN_MONTHS <= months <= MAX_MONTHS:
        raise RetentionError(
            f"durée de conservation : {months} mois hors de la plage permise "
            f"({MIN_MONTHS} à {MAX_MONTHS} mois)"
        )
    return months


@dataclass(frozen=True)
class TerritoryRetention:
    id: int
    code: str
    name: str
    months: int | None  # None: the national default


def territory_retentions(session: Session) -> list[TerritoryRetention]:
    rows = session.execute(
        select(m.Territory.id, m.Territory.code, m.Territory.name, m.Territory.retention_months)
        .order_by(m.Territory.name)
    ).all()  # fmt: skip
    return [TerritoryRetention(*r) for r in rows]


def set_territory_retention(
    session: Session,
    user: m.StaffUser | None,
    territory_code: str,
    months: str | int | None,
    *,
    clock: Clock,
    actor_label: str | None = None,
) -> TerritoryRetention:
    """Set (or clear, with None / empty) a territory's retention; national admin only (or
    the command line, ``user`` None with its label). Audited with the old and new values."""
    if user is not None and (not user.active or user.role != "national_admin"):
        raise Forbidden("réservé à l'administration nationale")
    value = parse_months(months)
    territory = session.scalar(select(m.Territory).where(m.Territory.code == territory_code))
    if territory is None:
        raise NotFound(f"territoire « {territory_code[:40]} » inconnu")
    before = territory.retention_months
    territory.retention_months = value
    session.add(
        m.AuditLog(
            actor_user_id=user.id if user else None,
            actor_label=(user.display_name if user else actor_label or "système")[:80],
            action="set_retention",
            object_type="territory",
            object_id=str(territory.id),
            at=clock.now(),
            details={"before": before, "after": value},
        )
    )
    return TerritoryRetention(territory.id, territory.code, territory.name, value)
