"""Daily digests: the messages a user chose to receive once a day, gathered in one mail.

Why: chargé·es asked for fewer mails, and partner contacts even more so (one received 673
orientation mails in one run). Rows queued with delivery "digest" wait until the
recipient's digest is due — the first one at the next run, then one a day at the configured
hour — and are then folded into one message (key per recipient and day) and marked
"digested" in the same transaction, so nothing is lost or counted twice:

- a staff member's rows become one ``daily_digest``;
- a partner contact's orientations and reminders become one ``partner_digest`` — to its
  account, or to the partner's directory address when it has no contact account. An
  orientation that no longer awaits the partner (accepted, refused, expired, cancelled…)
  is marked "cancelled" instead: no mail asks for an answer nobody expects any more.

A day longer than one mail can hold is split in parts (keys ``…:2``, ``…:3``), never cut.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from engine.domain.clock import Clock
from engine.domain.lifecycle import STATE_LABELS
from engine.outbox import messages
from engine.outbox.enqueue import enqueue_many
from engine.outbox.messages import OUTSIDE_TERRITORY, Links, Recipient
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings
from notifications.kinds import PARTNER_DIGEST_MAX_ITEMS, PARTNER_DIGESTIBLE_KINDS

MAX_ITEMS = 200  # lines of one staff digest (a longer day is split in parts)
_DIGEST_LOCK = 0x41494755  # PostgreSQL advisory lock key of the digest writers ("AIGU")
AWAITING_PARTNER = "referred"  # the only state in which a partner's answer is expected


def write_due_digests(db: Database, settings: Settings, *, clock: Clock) -> int:
    """Fold pending digest rows into one message per recipient whose digest is due.

    Returns the number of digest messages written (staff and partner digests)."""
    now = clock.now()
    with unit_of_work(db, immediate=True) as session:
        if db.is_postgres:
            # One digest writer at a time (SQLite: BEGIN IMMEDIATE does it): a second run
            # must see the first one's digests, or it would mark rows digested under a key
            # that was already written — rows lost.
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _DIGEST_LOCK})
        O = m.OutboxMessage
        rows = session.scalars(
            select(O)
            .where(O.status == "pending", O.delivery == "digest", O.due_at <= now)
            .order_by(O.id)
        ).all()
        staff: dict[int, list[m.OutboxMessage]] = defaultdict(list)
        partner: dict[tuple[int | None, str], list[m.OutboxMessage]] = defaultdict(list)
        for r in rows:
            if r.kind in PARTNER_DIGESTIBLE_KINDS:
                address = "" if r.recipient_user_id is not None else r.to_address.strip().lower()
                partner[(r.recipient_user_id, address)].append(r)
            elif r.recipient_user_id is not None:
                staff[r.recipient_user_id].append(r)
        links = Links(settings.base_url)
        today_at = datetime.combine(now.date(), time(settings.digest_hour), tzinfo=UTC)
        batch = _staff_digests(session, links, staff, now=now, today_at=today_at)
        batch += _partner_digests(session, links, partner, now=now, today_at=today_at)
        written = enqueue_many(session, batch, base_url=settings.base_url, now=now)
    return written


def _is_due(
    session: Session, kind: str, to: Recipient, key_today: str, *, now: datetime, today_at: datetime
) -> bool:
    """The first digest goes at the next run; then one a day, from the digest hour."""
    O = m.OutboxMessage
    if session.scalar(select(O.id).where(O.idempotency_key == key_today)):
        return False
    whose = (
        O.recipient_user_id == to.id
        if to.id is not None
        else (O.recipient_user_id.is_(None)) & (O.to_address == to.email)
    )
    had_digest = session.scalar(select(O.id).where(O.kind == kind, whose).limit(1))
    return not (had_digest and now < today_at)


def _parts(items: Sequence[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _staff_digests(
    session: Session,
    links: Links,
    by_user: dict[int, list[m.OutboxMessage]],
    *,
    now: datetime,
    today_at: datetime,
) -> list[dict[str, Any]]:
    batch: list[dict[str, Any]] = []
    day = now.date()
    for uid, items in sorted(by_user.items()):
        user = session.get(m.StaffUser, uid)
        if user is None:
            continue
        to = Recipient.of(user)
        key = messages.daily_digest_key(uid, day)
        if not _is_due(session, "daily_digest", to, key, now=now, today_at=today_at):
            continue
        lines = [messages.digest_item(links, r) for r in items]
        for part, chunk in enumerate(_parts(lines, MAX_ITEMS), start=1):
            batch.append(messages.daily_digest(links, to, day=day, items=chunk, part=part))
        for r in items:
            r.status = "digested"
    return batch


def _partner_digests(
    session: Session,
    links: Links,
    by_recipient: dict[tuple[int | None, str], list[m.OutboxMessage]],
    *,
    now: datetime,
    today_at: datetime,
) -> list[dict[str, Any]]:
    batch: list[dict[str, Any]] = []
    if not by_recipient:
        return batch
    day = now.date()
    facts = _referral_facts(session, (r for rows in by_recipient.values() for r in rows))
    for (uid, _), rows in sorted(by_recipient.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1])):
        if uid is not None:
            user = session.get(m.StaffUser, uid)
            if user is None:
                continue
            to = Recipient.of(user)
        else:
            to = Recipient.address(rows[0].to_address)
        key = messages.partner_digest_key(to, day)
        if not _is_due(session, "partner_digest", to, key, now=now, today_at=today_at):
            continue
        by_referral: dict[int, dict[str, Any]] = {}
        for r in rows:
            rid = r.referral_id or messages.referral_of_key(r.kind, r.idempotency_key)
            fact = facts.get(rid) if rid is not None else None
            if fact is None or fact[0] != AWAITING_PARTNER:
                cancel(r, fact[0] if fact else None)
                continue
            assert rid is not None
            # An orientation and its reminder make one line (the reminder, written later).
            by_referral[rid] = messages.partner_digest_item(r, reference=fact[1], territory=fact[2])
            r.status = "digested"
        lines = sorted(by_referral.values(), key=lambda i: (i["expires_on"], i["reference"]))
        for part, chunk in enumerate(_parts(lines, PARTNER_DIGEST_MAX_ITEMS), start=1):
            batch.append(messages.partner_digest(links, to, day=day, items=chunk, part=part))
    return batch


def cancel(row: m.OutboxMessage, state: str | None) -> None:
    """Mark a partner mail whose orientation no longer awaits the partner: never sent."""
    row.status = "cancelled"
    row.last_error = cancel_reason(state)


def cancel_reason(state: str | None) -> str:
    if state is None:
        return "orientation introuvable : message non envoyé"
    return f"orientation terminée avant l'envoi ({STATE_LABELS[state].lower()}) : non envoyé"


def _referral_facts(
    session: Session, rows: Iterable[m.OutboxMessage]
) -> dict[int, tuple[str, str, str]]:
    """referral id -> (state, the person's reference, territory name) for these rows."""
    ids = {
        rid
        for r in rows
        if (rid := r.referral_id or messages.referral_of_key(r.kind, r.idempotency_key))
    }
    R, S, T = m.Referral, m.Salarie, m.Territory
    facts: dict[int, tuple[str, str, str]] = {}
    ordered = sorted(ids)
    for i in range(0, len(ordered), 5000):  # bound the statement's parameters
        for rid, state, ref, terr in session.execute(
            select(R.id, R.state, S.reference, T.name)
            .join(S, S.id == R.salarie_id)
            .outerjoin(T, T.id == R.territory_id)
            .where(R.id.in_(ordered[i : i + 5000]))
        ).all():
            facts[rid] = (state, ref, terr or OUTSIDE_TERRITORY)
    return facts
