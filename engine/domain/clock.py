"""One clock for the whole process: UTC, timezone-aware datetimes only (Zulip's rule).

Why a ``Clock`` object instead of calling ``datetime.now``: it is built once at start-up (CLI,
web app factory, flow, test fixture), like ``Settings``, and passed to every use case, so that
a whole scenario — seed, intake, reminders, digests, allocation — replays on any date. A test
written today must pass next year: nothing below a use case's signature reads the wall clock.

- ``Clock.system()`` is the wall clock (production);
- ``Clock.fixed(at)`` never moves (unit and integration tests);
- ``Clock.starting_at(at)`` starts at ``at`` and then runs at the wall clock's pace
  (``--today`` on the command line: a replayed day whose leases and timeouts still elapse).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def _wall() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Clock:
    """What time it is for the use cases; see the module docstring for the three kinds."""

    anchor: datetime | None = None  # None: the wall clock
    frozen: bool = True
    started: float = 0.0  # monotonic time at which ``anchor`` was true (running clocks)

    @classmethod
    def system(cls) -> Clock:
        return cls(None)

    @classmethod
    def fixed(cls, at: datetime) -> Clock:
        return cls(as_utc(at), frozen=True)

    @classmethod
    def starting_at(cls, at: datetime) -> Clock:
        return cls(as_utc(at), frozen=False, started=time.monotonic())

    @classmethod
    def on_day(cls, day: date, *, hour: int = 9, running: bool = True) -> Clock:
        """A clock at ``hour`` (Paris time) of ``day``: what ``--today`` means."""
        at = datetime.combine(day, dtime(hour), tzinfo=PARIS)
        return cls.starting_at(at) if running else cls.fixed(at)

    def now(self) -> datetime:
        if self.anchor is None:
            return _wall()
        if self.frozen:
            return self.anchor
        return self.anchor + timedelta(seconds=time.monotonic() - self.started)

    def today(self) -> date:
        """The calendar day in France (deadlines and reports are French days)."""
        return self.now().astimezone(PARIS).date()

    def describe(self) -> str:
        if self.anchor is None:
            return "horloge système"
        return f"horloge {'figée' if self.frozen else 'décalée'} au {self.now():%Y-%m-%d %H:%M} UTC"


def parse_clock(today: str | None = None, now: str | None = None) -> Clock:
    """The clock of a command line: ``--now`` (ISO datetime), ``--today`` (ISO date) or the
    system clock. Raises ValueError with a French message on a malformed value."""
    if now:
        try:
            at = datetime.fromisoformat(now)
        except ValueError:
            raise ValueError(
                f"--now : date et heure invalides « {now} » (attendu AAAA-MM-JJTHH:MM)"
            ) from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=PARIS)
        return Clock.starting_at(at)
    if today:
        try:
            day = date.fromisoformat(today)
        except ValueError:
            raise ValueError(f"--today : date invalide « {today} » (attendu AAAA-MM-JJ)") from None
        return Clock.on_day(day)
    return Clock.system()


def utcnow() -> datetime:
    """The wall clock. Only for start-up and infrastructure (leases, sessions' expiry checks
    happen through a Clock too); a use case takes a ``Clock`` instead."""
    return _wall()


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
