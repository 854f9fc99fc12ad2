"""Prefect flows: thin compositions of engine use cases.

Why thin: business logic lives in the engine and in pure packages; a flow gathers inputs,
calls them and returns counts. Tasks sit at I/O boundaries and work on whole batches (a task
costs milliseconds, and thousands of them lock the embedded API's SQLite). Parameters and
results are IDs, dates and counts — never personal data, because Prefect stores both.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task

from engine.domain.clock import Clock
from engine.store.db import Database
from engine.store.settings import load_settings


def _context() -> tuple[Any, Database]:
    settings = load_settings()
    return settings, Database(settings.database_url)


def _clock(now: str | None) -> Clock:
    """The flow's clock: the instant it was given (a replay), else the system clock."""
    return Clock.starting_at(datetime.fromisoformat(now)) if now else Clock.system()


@task(name="route-new-freins", retries=1, retry_delay_seconds=2)
def route_new_freins(chunk_size: int, now: str | None) -> dict[str, Any]:
    """Route every frein that never had a referral (one task for the whole batch)."""
    from engine.intake.run import run_intake

    settings, db = _context()
    try:
        report = run_intake(db, settings, chunk_size=chunk_size, clock=_clock(now))
    finally:
        db.dispose()
    return report.as_dict()


@flow(name="intake", log_prints=False)
def intake_flow(chunk_size: int = 100_000, now: str | None = None) -> dict[str, Any]:
    """New freins → referrals assigned to chargé·es, with reasons and partner suggestions."""
    return route_new_freins(chunk_size, now)


@task(name="solve-and-propose", retries=0)
def solve_and_propose(
    territory: str | None, dry_run: bool, alpha: float, now: str | None
) -> dict[str, Any]:
    """One solve over the whole waitlist (one run at a time, enforced by the database)."""
    from engine.allocation.run import run_allocation

    settings, db = _context()
    try:
        return run_allocation(
            db, settings, territory=territory, dry_run=dry_run, alpha=alpha, clock=_clock(now)
        ).as_dict()
    finally:
        db.dispose()


@flow(name="allocation", log_prints=False)
def allocation_flow(
    territory: str | None = None,
    dry_run: bool = False,
    alpha: float = 0.8,
    now: str | None = None,
) -> dict[str, Any]:
    """Waitlisted referrals × open slot pools → proposals for the coordinators."""
    return solve_and_propose(territory, dry_run, alpha, now)


@task(name="write-due-reminders", retries=1, retry_delay_seconds=2)
def write_reminders_task(now: str | None) -> dict[str, int]:
    """Reminders, escalations, expiries and digests that fell due (idempotent)."""
    from engine.deadlines import write_due_reminders
    from engine.outbox.digest import write_due_digests

    settings, db = _context()
    try:
        clock = _clock(now)
        counts = dict(write_due_reminders(db, settings, clock=clock))
        counts["daily_digest"] = write_due_digests(db, settings, clock=clock)
        return counts
    finally:
        db.dispose()


@task(name="drain-outbox", retries=0)
def drain_outbox_task(chunk: int, now: str | None) -> dict[str, int]:
    """Send due messages in chunks over one SMTP connection per chunk."""
    from engine.outbox.relay import drain

    settings, db = _context()
    try:
        return drain(db, settings, chunk=chunk, clock=_clock(now)).as_dict()
    finally:
        db.dispose()


@flow(name="notifications", log_prints=False)
def notifications_flow(chunk: int = 200, now: str | None = None) -> dict[str, Any]:
    """Write what fell due to the outbox, then drain the outbox to SMTP."""
    written = write_reminders_task(now)
    sent = drain_outbox_task(chunk, now)
    return {"written": written, "relay": sent}


@task(name="write-indicator-snapshots", retries=1, retry_delay_seconds=5)
def write_snapshots_task(year: int | None, now: str | None) -> dict[str, int]:
    """Every indicator of the year and its months, network and territories (counts only)."""
    from engine.reporting.report import write_snapshots

    settings, db = _context()
    try:
        clock = _clock(now)
        return write_snapshots(db, year=year or clock.today().year, clock=clock)
    finally:
        db.dispose()


@flow(name="reporting", log_prints=False)
def reporting_flow(year: int | None = None, now: str | None = None) -> dict[str, int]:
    """Indicator snapshots of the year (the current one by default): closed months are kept."""
    return write_snapshots_task(year, now)


@task(name="retention-cycle", retries=0)
def retention_task(dry_run: bool, now: str | None) -> dict[str, Any]:
    """Notices, snapshots, anonymisation in batches and purge, for every file at once (the
    batches are transactions inside the task, never a task per person)."""
    from engine.retention.run import run_retention

    settings, db = _context()
    try:
        return run_retention(db, settings, clock=_clock(now), dry_run=dry_run).as_dict()
    finally:
        db.dispose()


@flow(name="retention", log_prints=False)
def retention_flow(dry_run: bool = False, now: str | None = None) -> dict[str, Any]:
    """Data lifetime: notices to the CIP/ESP, then anonymisation of the files past their
    retention, then the logs' purge. Returns counts only."""
    return retention_task(dry_run, now)
