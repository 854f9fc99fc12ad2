"""Reminders and escalations that fell due, written to the outbox (idempotently).

Why keys carry the due occasion (referral, deadline, reminder number, months after exit):
running the notifications flow twice, or after a crash, writes nothing new; the next
occasion gets a new key. Deadlines count French business days (``engine.domain.calendar``).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from sqlalchemy import select

from engine.access.tokens import make_partner_token
from engine.allocation.run import expire_proposals
from engine.domain.calendar import add_business_days, end_of_day_utc
from engine.domain.clock import Clock, as_utc
from engine.outbox.enqueue import enqueue_many
from engine.referrals.transitions import Actor, apply_transition
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings

OUTCOME_DUE_AFTER = timedelta(days=60)
FOLLOWUP_MONTHS = (3, 6, 12)


def _add_months(day: date, months: int) -> date:
    y, mth = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, mth + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def write_due_reminders(db: Database, settings: Settings, *, clock: Clock) -> Counter[str]:
    """Every reminder, escalation and expiry due at the clock's now; returns counts by kind."""
    now = clock.now()
    done: Counter[str] = Counter()
    with unit_of_work(db, immediate=True) as session:
        users = {
            u.id: u for u in session.scalars(select(m.StaffUser).where(m.StaffUser.active)).all()
        }
        refs = dict(session.execute(select(m.Salarie.id, m.Salarie.reference)).all())
        terr_names = dict(session.execute(select(m.Territory.id, m.Territory.name)).all())
        coordinators: dict[int, list[m.StaffUser]] = {}
        cips: dict[int, list[m.StaffUser]] = {}
        for u in users.values():
            if u.role == "coordinator" and u.territory_id:
                coordinators.setdefault(u.territory_id, []).append(u)
            if u.role == "cip" and u.chantier_id:
                cips.setdefault(u.chantier_id, []).append(u)
        base = settings.base_url
        prefs = f"{base}/preferences"
        messages: list[dict] = []

        def msg(kind: str, key: str, user: m.StaffUser, **ctx: object) -> None:
            messages.append({"kind": kind, "key": key, "to_address": user.email, "recipient_user_id": user.id,
                             "context": {"recipient_name": user.display_name, "preferences_url": prefs, **ctx}})  # fmt: skip
            done[kind] += 1

        # Triage deadlines: soon (within a day), overdue, then escalation to the coordinator.
        for r in session.scalars(
            select(m.Referral).where(m.Referral.state == "new", m.Referral.due_at.is_not(None))
        ).all():
            owner = users.get(r.owner_user_id) if r.owner_user_id else None
            due = as_utc(r.due_at)
            url = f"{base}/orientations/{r.id}"
            if owner is not None and due > now and due - now <= timedelta(days=1):
                msg(
                    "triage_due_soon",
                    f"triage_due_soon:{r.id}:{due.date()}",
                    owner,
                    reference=refs[r.salarie_id],
                    due_on=due.date(),
                    url=url,
                )
            if owner is not None and due <= now:
                msg(
                    "triage_overdue",
                    f"triage_overdue:{r.id}:{due.date()}",
                    owner,
                    reference=refs[r.salarie_id],
                    due_on=due.date(),
                    url=url,
                )
            escalate_at = end_of_day_utc(
                add_business_days(due.date(), settings.escalation_after_business_days)
            )
            if escalate_at <= now and r.territory_id:
                for c in coordinators.get(r.territory_id, []):
                    if c.id == r.owner_user_id:
                        continue
                    msg("triage_escalation", f"triage_escalation:{r.id}:{due.date()}:{c.id}", c, reference=refs[r.salarie_id],
                        officer_name=owner.display_name if owner else "Non attribuée", territory=terr_names.get(r.territory_id, ""),
                        due_on=due.date(), url=url)  # fmt: skip
        # Partners: reminder every N days without an answer, expiry after M days.
        secret = settings.secret_key.get_secret_value()
        for r in session.scalars(
            select(m.Referral).where(
                m.Referral.state == "referred", m.Referral.offer_id.is_not(None)
            )
        ).all():
            sent = as_utc(r.state_changed_at)
            if now - sent >= timedelta(days=settings.partner_expiry_days):
                apply_transition(session, settings, r, "expire", actor=Actor.system("relances"), clock=clock,
                                 note=f"sans réponse du partenaire après {settings.partner_expiry_days} jours")  # fmt: skip
                done["expired"] += 1
                continue
            n_due = int((now - sent) / timedelta(days=settings.partner_reminder_every_days))
            if n_due > r.reminders_sent:
                offer = session.get(m.Offer, r.offer_id)
                partner = session.get(m.Partner, offer.partner_id) if offer else None
                if partner is None:
                    continue
                token = make_partner_token(secret, referral_id=r.id, partner_id=partner.id, now=now)
                for c in (u for u in users.values() if u.partner_id == partner.id):
                    msg("partner_reminder", f"partner_reminder:{r.id}:{n_due}:{c.id}", c, partner_name=partner.name,
                        reference=refs[r.salarie_id], sent_on=sent.date(),
                        action_url=f"{base}/partenaire/reponse/{token}",
                        expires_on=(sent + timedelta(days=settings.partner_expiry_days)).date())  # fmt: skip
                r.reminders_sent = n_due
        # Outcome due: help started long ago, no outcome recorded.
        for r in session.scalars(
            select(m.Referral).where(m.Referral.state.in_(("accepted", "in_progress")))
        ).all():
            if now - as_utc(r.state_changed_at) >= OUTCOME_DUE_AFTER:
                for c in cips.get(r.chantier_id, []):
                    msg("outcome_due", f"outcome_due:{r.id}:{c.id}", c, reference=refs[r.salarie_id],
                        due_on=(as_utc(r.state_changed_at) + OUTCOME_DUE_AFTER).date(), url=f"{base}/orientations/{r.id}")  # fmt: skip
        # CVG post-exit follow-up at 3, 6 and 12 months.
        today = clock.today()
        for s in session.scalars(
            select(m.Salarie).where(m.Salarie.programme == "cvg", m.Salarie.exit_date.is_not(None))
        ).all():
            for months in FOLLOWUP_MONTHS:
                due = _add_months(s.exit_date, months)
                if due <= today < due + timedelta(days=30):
                    for c in cips.get(s.chantier_id, []):
                        msg("followup_due", f"followup_due:{s.id}:{months}:{c.id}", c, reference=s.reference,
                            months=months, due_on=due, url=f"{base}/salaries/{s.id}")  # fmt: skip
        done["proposals_expired"] = expire_proposals(session, settings, clock=clock)
        written = enqueue_many(session, messages, base_url=base, now=now)
        done["written"] = written
    return done
