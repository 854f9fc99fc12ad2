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
from engine.outbox.enqueue import enqueue_many
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings

DIGEST_LABELS = {
    "new_referrals": "Nouvelle orientation",
    "triage_due_soon": "Qualification à faire",
    "triage_overdue": "Qualification en retard",
    "triage_escalation": "Orientation à réattribuer",
    "partner_orientation": "Réponse du partenaire attendue",
    "partner_reminder": "Relance du partenaire",
    "allocation_ready": "Propositions à valider",
    "slot_validated": "Place validée",
    "outcome_due": "Résultat à saisir",
    "followup_due": "Suivi post-sortie à faire",
}
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
        messages = []
        for uid, items in sorted(by_user.items()):
            had_digest = session.scalar(
                select(O.id).where(O.kind == "daily_digest", O.recipient_user_id == uid).limit(1)
            )
            sent_today = session.scalar(
                select(O.id).where(O.idempotency_key == f"daily_digest:{uid}:{now.date()}")
            )
            if sent_today or (had_digest and now < today_at):
                continue
            user = session.get(m.StaffUser, uid)
            if user is None:
                continue
            lines = [_item(settings, r) for r in items[:MAX_ITEMS]]
            messages.append({"kind": "daily_digest", "key": f"daily_digest:{uid}:{now.date()}", "to_address": user.email,
                             "recipient_user_id": uid, "mode": "immediate",
                             "context": {"recipient_name": user.display_name,
                                         "preferences_url": f"{settings.base_url}/preferences", "day": now.date(),
                                         "url": f"{settings.base_url}/file", "items": lines}})  # fmt: skip
            for r in items:
                r.status = "digested"
        written = enqueue_many(session, messages, base_url=settings.base_url, now=now)
    return written


def _item(settings: Settings, row: m.OutboxMessage) -> dict:
    ctx = row.context or {}
    item = {"kind": row.kind, "label": DIGEST_LABELS.get(row.kind, "Nouvelle orientation"),
            "url": ctx.get("url") or ctx.get("action_url") or f"{settings.base_url}/file"}  # fmt: skip
    item["reference"] = ctx.get("reference", "")
    item["count"] = int(ctx.get("count", 1))
    return item
