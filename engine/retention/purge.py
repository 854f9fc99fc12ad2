"""The logs' lifetimes: access log, login attempts, expired sessions, mails already handled.

Why mails are emptied rather than deleted: the outbox's idempotency key is what makes a
reminder or an escalation go out once, whatever the flows' timing; deleting a sent row would
let the next run write the same occasion again and mail it twice. After its lifetime a
handled row keeps its key, kind, status and instants, and loses its address, context and
error text — the parts that say to whom and about whom.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from engine.domain.clock import PARIS
from engine.retention.policy import Policy
from engine.store import models as m
from matching.grid import add_months


def handled_statuses() -> tuple[str, ...]:
    """Every outbox status but ``pending`` (read from the model, so a new final status such
    as ``cancelled`` is purged too)."""
    statuses = getattr(m, "OUTBOX_ROW_STATUSES", None) or m.OUTBOX_STATUSES
    return tuple(s for s in statuses if s != "pending")


def cutoffs(policy: Policy, now: datetime) -> dict[str, datetime]:
    """The instant before which each kind of row goes (access log: whole Paris days), in UTC:
    SQLite compares the stored UTC instants as text."""
    now = now.astimezone(UTC)
    today = now.astimezone(PARIS).date()
    first_kept = add_months(today, -policy.access_log_months)
    return {
        "access_log": datetime.combine(first_kept, time(0), tzinfo=PARIS).astimezone(UTC),
        "login_attempts": now - timedelta(days=policy.login_attempt_days),
        "outbox": now - timedelta(days=policy.outbox_days),
        "sessions": now,
    }


def purge(session: Session, policy: Policy, *, now: datetime, dry_run: bool) -> Counter[str]:
    """Delete (or, with ``dry_run``, count) what outlived its lifetime; counts by kind."""
    cut = cutoffs(policy, now)
    A, L, W, O = m.AccessLog, m.LoginAttempt, m.WebSession, m.OutboxMessage
    sent_or_made = func.coalesce(O.sent_at, O.created_at)
    wheres = {
        "access_log": (A, [A.at < cut["access_log"]]),
        "login_attempts": (L, [L.at < cut["login_attempts"]]),
        "sessions": (W, [W.expires_at < cut["sessions"]]),
        "mails": (
            O,
            [O.status.in_(handled_statuses()), sent_or_made < cut["outbox"], O.to_address != ""],
        ),
    }
    counts: Counter[str] = Counter()
    for kind, (model, where) in wheres.items():
        if dry_run:
            counts[kind] = int(
                session.scalar(select(func.count()).select_from(model).where(*where)) or 0
            )
            continue
        stmt: Any = (
            update(O).where(*where).values(context={}, to_address="", last_error=None)
            if kind == "mails"
            else delete(model).where(*where)
        )
        result = session.execute(stmt.execution_options(synchronize_session=False))
        counts[kind] = int(getattr(result, "rowcount", 0) or 0)
    return counts
