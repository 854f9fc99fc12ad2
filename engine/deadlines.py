"""Reminders and escalations that fell due, written to the outbox (idempotently).

Why keys carry the due occasion (referral, deadline, reminder number, months after exit):
running the notifications flow twice, or after a crash, writes nothing new; the next
occasion gets a new key. Deadlines count French business days (``engine.domain.calendar``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.allocation.run import expire_proposals
from engine.domain.calendar import add_business_days, end_of_day_utc
from engine.domain.clock import Clock, as_utc
from engine.domain.vocabulary import FOLLOWUP_MONTHS
from engine.outbox import messages
from engine.outbox.enqueue import enqueue_many
from engine.outbox.messages import Links, Recipient
from engine.referrals.transitions import Actor, apply_transition
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings
from matching.grid import add_months

OUTCOME_DUE_AFTER = timedelta(days=60)


@dataclass
class _Due:
    """What one run of the deadlines reads once and writes to: the staff by role, the
    pseudonymous references, the links, and the messages that fell due."""

    settings: Settings
    clock: Clock
    users: dict[int, m.StaffUser]
    refs: dict[int, str]
    territory_names: dict[int, str]
    coordinators: dict[int, list[m.StaffUser]] = field(default_factory=dict)
    cips: dict[int, list[m.StaffUser]] = field(default_factory=dict)
    batch: list[dict[str, Any]] = field(default_factory=list)
    done: Counter[str] = field(default_factory=Counter)

    @property
    def links(self) -> Links:
        return Links(self.settings.base_url)

    def add(self, msg: dict[str, Any]) -> None:
        self.batch.append(msg)
        self.done[msg["kind"]] += 1


def write_due_reminders(db: Database, settings: Settings, *, clock: Clock) -> Counter[str]:
    """Every reminder, escalation and expiry due at the clock's now; returns counts by kind."""
    with unit_of_work(db, immediate=True) as session:
        users = {
            u.id: u for u in session.scalars(select(m.StaffUser).where(m.StaffUser.active)).all()
        }
        due = _Due(
            settings,
            clock,
            users,
            refs=dict(session.execute(select(m.Salarie.id, m.Salarie.reference)).all()),
            territory_names=dict(session.execute(select(m.Territory.id, m.Territory.name)).all()),
        )
        for u in users.values():
            if u.role == "coordinator" and u.territory_id:
                due.coordinators.setdefault(u.territory_id, []).append(u)
            if u.role == "cip" and u.chantier_id:
                due.cips.setdefault(u.chantier_id, []).append(u)
        _triage(session, due)
        _partners(session, due)
        _outcomes(session, due)
        _followups(session, clock.today(), due.cips, due.links, due.add)
        due.done["proposals_expired"] = expire_proposals(session, settings, clock=clock)
        written = enqueue_many(session, due.batch, base_url=settings.base_url, now=clock.now())
        due.done["written"] = written
    return due.done


def _triage(session: Session, due: _Due) -> None:
    """Triage deadlines: soon (within a day), overdue, then escalation to the coordinator."""
    now, links = due.clock.now(), due.links
    for r in session.scalars(
        select(m.Referral).where(m.Referral.state == "new", m.Referral.due_at.is_not(None))
    ).all():
        owner = due.users.get(r.owner_user_id) if r.owner_user_id else None
        deadline = as_utc(r.due_at)  # type: ignore[arg-type]  # selected non-null
        about: dict[str, Any] = {
            "referral_id": r.id,
            "reference": due.refs[r.salarie_id],
            "due_on": deadline.date(),
        }
        if owner is not None and (deadline <= now or deadline - now <= timedelta(days=1)):
            overdue = deadline <= now
            due.add(messages.triage_due(links, Recipient.of(owner), overdue=overdue, **about))
        escalate_at = end_of_day_utc(
            add_business_days(deadline.date(), due.settings.escalation_after_business_days)
        )
        if escalate_at <= now and r.territory_id:
            officer = owner.display_name if owner else "Non attribuée"
            territory = due.territory_names.get(r.territory_id, "")
            for c in due.coordinators.get(r.territory_id, []):
                if c.id != r.owner_user_id:
                    due.add(
                        messages.triage_escalation(
                            links,
                            Recipient.of(c),
                            officer_name=officer,
                            territory=territory,
                            **about,
                        )
                    )


def _partners(session: Session, due: _Due) -> None:
    """Partners: a reminder every N days without an answer, the expiry after M days — for
    partners one can mail (the answer link); the others are followed by the chargé·e."""
    settings, now = due.settings, due.clock.now()
    by_partner: dict[int, list[m.StaffUser]] = {}
    for u in due.users.values():
        if u.partner_id is not None:
            by_partner.setdefault(u.partner_id, []).append(u)
    reachable: dict[int, list[Recipient]] = {}
    for r in session.scalars(
        select(m.Referral).where(m.Referral.state == "referred", m.Referral.offer_id.is_not(None))
    ).all():
        offer = session.get(m.Offer, r.offer_id)
        partner = session.get(m.Partner, offer.partner_id) if offer else None
        if partner is None:
            continue
        if partner.id not in reachable:  # messages.partner_recipients' rule, once a partner
            found = [Recipient.of(u) for u in by_partner.get(partner.id, [])]
            if not found and partner.contact_email:
                found = [Recipient.address(partner.contact_email)]
            reachable[partner.id] = found
        contacts = reachable[partner.id]
        if not contacts:
            # Nobody can be mailed (a service of the national referential without a public
            # address, oriented by phone or walk-in): no link to answer, so no reminder and
            # no "sans réponse" expiry — the chargé·e records what the service said.
            continue
        sent = as_utc(r.state_changed_at)
        if now - sent >= timedelta(days=settings.partner_expiry_days):
            note = f"sans réponse du partenaire après {settings.partner_expiry_days} jours"
            actor = Actor.system("relances")
            apply_transition(
                session, settings, r, "expire", actor=actor, clock=due.clock, note=note
            )
            due.done["expired"] += 1
            continue
        n_due = int((now - sent) / timedelta(days=settings.partner_reminder_every_days))
        if n_due <= r.reminders_sent:
            continue
        token = messages.partner_token(settings, referral_id=r.id, partner_id=partner.id, now=now)
        expires = (sent + timedelta(days=settings.partner_expiry_days)).date()
        for recipient in contacts:
            due.add(
                messages.partner_reminder(
                    due.links,
                    recipient,
                    referral_id=r.id,
                    number=n_due,
                    partner_name=partner.name,
                    reference=due.refs[r.salarie_id],
                    sent_on=sent.date(),
                    token=token,
                    expires_on=expires,
                )
            )
        r.reminders_sent = n_due


def _outcomes(session: Session, due: _Due) -> None:
    """Outcome due: the help started long ago and no outcome is recorded."""
    now = due.clock.now()
    for r in session.scalars(
        select(m.Referral).where(m.Referral.state.in_(("accepted", "in_progress")))
    ).all():
        started = as_utc(r.state_changed_at)
        if now - started >= OUTCOME_DUE_AFTER:
            for c in due.cips.get(r.chantier_id, []):
                due.add(
                    messages.outcome_due(
                        due.links,
                        Recipient.of(c),
                        referral_id=r.id,
                        reference=due.refs[r.salarie_id],
                        due_on=(started + OUTCOME_DUE_AFTER).date(),
                    )
                )


def _followups(
    session: Session,
    today: date,
    cips: dict[int, list[m.StaffUser]],
    links: Links,
    add: Callable[[dict], None],
) -> None:
    """CVG post-exit follow-up at 3, 6 and 12 months, linking to its short form."""
    exited = session.scalars(
        select(m.Salarie).where(m.Salarie.programme == "cvg", m.Salarie.exit_date.is_not(None))
    ).all()
    for s in exited:
        for months in FOLLOWUP_MONTHS:
            due = add_months(s.exit_date, months)  # type: ignore[arg-type]  # selected non-null
            if due <= today < due + timedelta(days=30):
                for c in cips.get(s.chantier_id, []):
                    add(
                        messages.followup_due(
                            links,
                            Recipient.of(c),
                            salarie_id=s.id,
                            reference=s.reference,
                            months=months,
                            due_on=due,
                        )
                    )
