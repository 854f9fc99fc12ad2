"""Daily digests: the messages a user chose to receive once a day, gathered in one mail.

Why: chargé·es asked for fewer mails. Rows queued with delivery "digest" wait until the
user's digest is due — the first one at the next run, then one a day at the configured
hour — and are then folded into one ``daily_digest`` message (key per user and day) and
marked "digested" in the same transaction, so nothing is lost or counted twice.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time

from sqlalchemy import select

from engine.domain.clock import Clock
from engine.outbox import messages
from engine.outbox.enqueue import enqueue_many
from engine.outbox.messages import Links, Recipient
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings

MAX_ITEMS = 200


def write_due_digests(db: Database, settings: Settings, *, clock: Clock) -> int:
    """Fold pending digest rows into one daily message per user whose digest is due."""
    now = clock.now()
    written = 0
    with unit_of_work(db, immediate=True) as session:
        O = m.OutboxMessage
        rows = session.scalars(
            select(O)
            .where(O.status == "pending", O.delivery == "digest", O.due_at <= now)
            .order_by(O.id)
        ).all()
        by_user: dict[int, list[m.OutboxMessage]] = defaultdict(list)
        for r in rows:
            if r.recipient_user_id is not None:
                by_user[r.recipient_user_id].append(r)
        today_at = datetime.combine(now.date(), time(settings.digest_hour), tzinfo=UTC)
        batch: list[dict] = []
        links = Links(settings.base_url)
        for uid, items in sorted(by_user.items()):
            had_digest = session.scalar(
                select(O.id).where(O.kind == "daily_digest", O.recipient_user_id == uid).limit(1)
            )
            sent_today = session.scalar(
                select(O.id).where(O.idempotency_key == messages.daily_digest_key(uid, now.date()))
            )
            if sent_today or (had_digest and now < today_at):
                continue
            user = session.get(m.StaffUser, uid)
            if user is None:
                continue
            lines = [messages.digest_item(links, r) for r in items[:MAX_ITEMS]]
            batch.append(
                messages.daily_digest(links, Recipient.of(user), day=now.date(), items=lines)
            )
            for r in items:
                r.status = "digested"
        written = enqueue_many(session, batch, base_url=settings.base_url, now=now)
    return written
