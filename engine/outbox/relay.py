"""The outbox relay: due rows → emails, each marked sent right after the server accepts it.

Why this way: rows are *claimed* with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
``BEGIN IMMEDIATE`` on SQLite) so several relays never take the same row; a relay that
dies leaves a lease that expires and the row is taken again (at most one duplicate per
crash, and the duplicate carries the same Message-ID derived from the idempotency key, so
mail clients collapse it). One SMTP connection serves the whole chunk. Transient failures
(4xx, timeouts, refused or dropped connections) go back to the queue with exponential
backoff; permanent ones (5xx) are parked with the server's answer for a person to review.
A partner orientation or reminder whose orientation no longer awaits the partner when its
turn comes is marked "cancelled" and never sent.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message
from typing import Any

from sqlalchemy import Connection, Update, bindparam, select, text, update
from sqlalchemy.orm import Session

from engine.domain.clock import Clock
from engine.outbox.digest import AWAITING_PARTNER, cancel_reason
from engine.outbox.enqueue import directory_names, from_stored_context
from engine.outbox.messages import referral_of_key
from engine.store import dialect
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings
from notifications.fields import ContextError
from notifications.kinds import PARTNER_DIGESTIBLE_KINDS
from notifications.render import build_email, message_id_for, render
from notifications.smtp import SendOutcome, SmtpConfig, SmtpSender

MAX_ATTEMPTS = 12
BACKOFF_BASE_S = 30
BACKOFF_MAX_S = 3600


@dataclass
class RelayReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    parked: int = 0
    cancelled: int = 0  # partner mails of orientations that ended before their turn

    def merge(self, other: RelayReport) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.retried += other.retried
        self.parked += other.parked
        self.cancelled += other.cancelled

    def as_dict(self) -> dict[str, int]:
        return {
            "claimed": self.claimed,
            "sent": self.sent,
            "retried": self.retried,
            "parked": self.parked,
            "cancelled": self.cancelled,
        }


@dataclass(frozen=True)
class Claimed:
    id: int
    key: str
    kind: str
    to_address: str
    context: dict[str, Any]
    attempts: int
    lease_until: datetime  # after this instant another relay may take the row: stop sending it
    referral_id: int | None = None


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at an hour."""
    return timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1)))


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def smtp_config(settings: Settings) -> SmtpConfig:
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
        use_tls=settings.smtp_tls,
        timeout=settings.smtp_timeout_s,
    )


_CLAIM_PG = text(
    """
    UPDATE outbox_message
    SET lease_until = :lease_until, leased_by = :worker, attempts = attempts + 1
    WHERE id IN (
        SELECT id FROM outbox_message
        WHERE status = 'pending' AND delivery = 'immediate' AND due_at <= :now
          AND (lease_until IS NULL OR lease_until < :now)
        ORDER BY due_at, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, idempotency_key, kind, to_address, context, attempts, referral_id
    """
)


def claim(db: Database, *, worker: str, limit: int, lease_s: float, clock: Clock) -> list[Claimed]:
    """Lease up to ``limit`` due rows for this worker (committed before any sending)."""
    now = clock.now()
    lease_until = now + timedelta(seconds=lease_s)
    with unit_of_work(db, immediate=True) as session:
        if db.is_postgres:
            rows = session.execute(
                _CLAIM_PG,
                {"now": now, "lease_until": lease_until, "worker": worker, "limit": limit},
            ).all()
        else:
            O = m.OutboxMessage
            ids = session.scalars(
                select(O.id)
                .where(
                    O.status == "pending",
                    O.delivery == "immediate",
                    O.due_at <= now,
                    (O.lease_until.is_(None)) | (O.lease_until < now),
                )
                .order_by(O.due_at, O.id)
                .limit(limit)
            ).all()
            if not ids:
                return []
            session.execute(
                update(O)
                .where(O.id.in_(ids))
                .values(lease_until=lease_until, leased_by=worker, attempts=O.attempts + 1)
            )
            rows = session.execute(
                select(
                    O.id,
                    O.idempotency_key,
                    O.kind,
                    O.to_address,
                    O.context,
                    O.attempts,
                    O.referral_id,
                )
                .where(O.id.in_(ids))
                .order_by(O.due_at, O.id)
            ).all()
    # psycopg decodes the json column of the raw PostgreSQL query itself.
    return [Claimed(r[0], r[1], r[2], r[3], r[4], r[5], lease_until, r[6]) for r in rows]


def _acknowledge(**values: Any) -> Update:
    """A prepared UPDATE of one row still leased by this worker (compiled once, cached)."""
    O = m.OutboxMessage
    return (
        update(O)
        .where(
            O.id == bindparam("row_id"), O.leased_by == bindparam("worker"), O.status == "pending"
        )
        .values(lease_until=None, **values)
    )


_MARK_SENT = _acknowledge(status="sent", sent_at=bindparam("now"), last_error=None)
_MARK_RETRY = _acknowledge(
    status="pending", due_at=bindparam("due_at"), last_error=bindparam("error")
)
_MARK_PARKED = _acknowledge(status="parked", last_error=bindparam("error"))
_MARK_CANCELLED = _acknowledge(status="cancelled", last_error=bindparam("error"))


_SQLITE_SENT = (
    "UPDATE outbox_message SET status = 'sent', sent_at = ?, lease_until = NULL, last_error = NULL "
    "WHERE id = ? AND leased_by = ? AND status = 'pending'"
)


def _mark(
    conn: Connection,
    row: Claimed,
    worker: str,
    outcome: SendOutcome | None,
    error: str | None = None,
    *,
    now: datetime,
) -> str:
    """Record one outcome at once (own transaction); returns sent / retried / parked.

    The connection is held for the whole chunk and the statements are prepared once, so
    acknowledging costs one short transaction (no pool checkout, no pre-ping round trip on
    PostgreSQL, no statement building).
    """
    if outcome is not None and outcome.sent and dialect.is_sqlite(conn):
        # Hot path (one per message sent): straight to the driver. The connection is in
        # autocommit between SQLAlchemy transactions (see engine.store.db), so this single
        # UPDATE is its own committed transaction, like the prepared statement below.
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            _SQLITE_SENT, (dialect.sqlite_stamp(now), row.id, worker)
        )
        return "sent"
    params: dict[str, Any] = {"row_id": row.id, "worker": worker}
    if outcome is not None and outcome.sent:
        stmt, result = _MARK_SENT, "sent"
        params["now"] = now
    elif outcome is not None and outcome.status == "transient" and row.attempts < MAX_ATTEMPTS:
        detail = f"{outcome.code} {outcome.answer}".strip() if outcome.code else outcome.answer
        stmt, result = _MARK_RETRY, "retried"
        params.update(due_at=now + backoff(row.attempts), error=detail[:2000])
    else:
        if outcome is not None:
            detail = f"{outcome.code} {outcome.answer}".strip() if outcome.code else outcome.answer
            if outcome.status == "transient":
                detail = f"abandon après {row.attempts} tentatives : {detail}"
        else:
            detail = error or "erreur inconnue"
        stmt, result = _MARK_PARKED, "parked"
        params["error"] = detail[:2000]
    with conn.begin():
        conn.execute(stmt, params)
    return result


def _ended_orientations(session: Session, rows: list[Claimed]) -> dict[int, str]:
    """Row id -> why it must not go: partner mails whose orientation no longer awaits the
    partner (answered, expired, cancelled… or gone) when their turn to be sent comes."""
    wanted = {
        row.id: rid
        for row in rows
        if row.kind in PARTNER_DIGESTIBLE_KINDS
        and (rid := row.referral_id or referral_of_key(row.kind, row.key)) is not None
    }
    if not wanted:
        return {}
    states = dict(
        session.execute(
            select(m.Referral.id, m.Referral.state).where(m.Referral.id.in_(set(wanted.values())))
        )
        .tuples()
        .all()
    )
    return {
        row_id: cancel_reason(states.get(rid))
        for row_id, rid in wanted.items()
        if states.get(rid) != AWAITING_PARTNER
    }


def _compose(
    row: Claimed, settings: Settings, domain: str, partner_names: frozenset[str]
) -> Message:
    rendered = render(
        row.kind,
        from_stored_context(row.kind, row.context),
        base_url=settings.base_url,
        partner_names=partner_names,
    )
    return build_email(
        rendered,
        to=row.to_address,
        from_=settings.mail_from,
        message_id=message_id_for(row.key, domain),
    )


async def _send_chunk(
    db: Database, settings: Settings, rows: list[Claimed], worker: str, clock: Clock
) -> RelayReport:
    report = RelayReport(claimed=len(rows))
    domain = settings.mail_from.rsplit("@", 1)[-1].rstrip(">") or "aiguillage.local"
    consecutive_connection_failures = 0
    with db.sessions() as session:
        partner_names = directory_names(session, [(r.kind, r.context) for r in rows])
        ended = _ended_orientations(session, rows)
    with db.engine.connect() as conn:
        if ended:
            with conn.begin():
                conn.execute(
                    _MARK_CANCELLED,
                    [{"row_id": i, "worker": worker, "error": why} for i, why in ended.items()],
                )
            report.cancelled += len(ended)
            rows = [r for r in rows if r.id not in ended]
            if not rows:
                return report
        async with SmtpSender(smtp_config(settings)) as sender:
            for row in rows:
                if clock.now() >= row.lease_until:
                    # The lease ran out (slow server): another relay may already have taken
                    # this row and the next ones, so sending them now could duplicate them.
                    break
                try:
                    msg = _compose(row, settings, domain, partner_names)
                except (ContextError, ValueError, KeyError) as exc:
                    _mark(
                        conn,
                        row,
                        worker,
                        None,
                        error=f"message impossible à composer : {exc}",
                        now=clock.now(),
                    )
                    report.parked += 1
                    continue
                if consecutive_connection_failures >= 2:
                    outcome = SendOutcome("transient", None, "non tenté : serveur SMTP injoignable")
                else:
                    outcome = await sender.send(msg)
                    if outcome.status == "transient" and outcome.code is None:
                        consecutive_connection_failures += 1
                    else:
                        consecutive_connection_failures = 0
                result = _mark(conn, row, worker, outcome, now=clock.now())
                setattr(report, result, getattr(report, result) + 1)
    return report


def drain(
    db: Database,
    settings: Settings,
    *,
    clock: Clock,
    worker: str | None = None,
    chunk: int = 200,
    lease_s: float = 300,
    max_chunks: int | None = None,
) -> RelayReport:
    """Send every due message, chunk by chunk, until none is due (or max_chunks)."""
    worker = worker or default_worker_id()
    total = RelayReport()
    n = 0
    while max_chunks is None or n < max_chunks:
        rows = claim(db, worker=worker, limit=chunk, lease_s=lease_s, clock=clock)
        if not rows:
            break
        part = asyncio.run(_send_chunk(db, settings, rows, worker, clock))
        total.merge(part)
        n += 1
        tried = part.claimed - part.cancelled
        if part.sent == 0 and tried > 0 and part.retried == tried:  # server down: retry later
            break
        if part.sent + part.retried + part.parked + part.cancelled == 0:  # lease too short
            break
    return total
