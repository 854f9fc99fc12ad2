"""Prefect flows: thin compositions of engine use cases.

Why thin: business logic lives in the engine and in pure packages; a flow gathers inputs,
calls them and returns counts. Tasks sit at I/O boundaries and work on whole batches (a task
costs milliseconds, and thousands of them lock the embedded API's SQLite). Parameters and
results are IDs, dates and counts — never personal data, because Prefect stores both.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, task

from engine.db import Database
from engine.settings import load_settings


def _context() -> tuple[Any, Database]:
    settings = load_settings()
    return settings, Database(settings.database_url)


@task(name="route-new-freins", retries=1, retry_delay_seconds=2)
def route_new_freins(chunk_size: int, today: str | None) -> dict[str, Any]:
    """Route every frein that never had a referral (one task for the whole batch)."""
    from engine.intake import run_intake

    settings, db = _context()
    try:
        report = run_intake(
            db, settings, chunk_size=chunk_size, today=date.fromisoformat(today) if today else None
        )
    finally:
        db.dispose()
    return report.as_dict()


@flow(name="intake", log_prints=False)
def intake_flow(chunk_size: int = 100_000, today: str | None = None) -> dict[str, Any]:
    """New freins → referrals assigned to chargé·es, with reasons and partner suggestions."""
    return route_new_freins(chunk_size, today)
