"""Reminders, escalations, expiries and digests fall due at the right time, once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from engine.deadlines import write_due_reminders
from engine.domain.calendar import add_business_days, end_of_day_utc
from engine.domain.clock import Clock, as_utc
from engine.intake.run import run_intake
from engine.network.seed import seed_network
from engine.outbox.digest import write_due_digests
from engine.outbox.enqueue import enqueue, preference_mode
from engine.store import models as m
from engine.store.db import unit_of_work
from engine.store.settings import Settings

TODAY = date(2026, 11, 26)
BASE = "http://aiguillage.test"
# The same scenarios replayed in the past, on the day they were written, and in the future:
# nothing may depend on the day the suite runs.
DAYS = [date(2024, 3, 12), TODAY, date(2031, 6, 2)]


def at(when: datetime) -> Clock:
    return Clock.fixed(when)


def _morning(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC)


def _setup(db, day: date = TODAY) -> Settings:
    settings = Settings(database_url=db.url, base_url=BASE)
    seed_network(db, scale=0.05, seed=4, clock=at(_morning(day)))
    run_intake(db, settings, clock=at(_morning(day)))
    return settings


def _kinds(db) -> Counter[str]:
    with db.sessions() as s:
        return Counter(
            dict(
                s.execute(
                    select(m.OutboxMessage.kind, func.count()).group_by(m.OutboxMessage.kind)
                ).all()
            )
        )


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_triage_deadlines_remind_then_escalate_once(db, day):
    settings = _setup(db, day)
    with db.sessions() as s:
        due = as_utc(s.scalar(select(m.Referral.due_at).where(m.Referral.state == "new").limit(1)))
        new_with_owner = s.scalar(
            select(func.count())
            .select_from(m.Referral)
            .where(m.Referral.state == "new", m.Referral.owner_user_id.is_not(None))
        )
    assert due == end_of_day_utc(add_business_days(day, 2))
    soon = write_due_reminders(db, settings, clock=at(due - timedelta(hours=12)))
    assert soon["triage_due_soon"] == new_with_owner and soon["triage_overdue"] == 0
    assert (
        write_due_reminders(db, settings, clock=at(due - timedelta(hours=11)))["written"] == 0
    )  # idempotent
    late = write_due_reminders(db, settings, clock=at(due + timedelta(hours=1)))
    assert late["triage_overdue"] == new_with_owner and late["triage_escalation"] == 0
    escalate_at = end_of_day_utc(
        add_business_days(due.date(), settings.escalation_after_business_days)
    )
    esc = write_due_reminders(db, settings, clock=at(escalate_at + timedelta(minutes=1)))
    assert esc["triage_escalation"] > 0
    again = write_due_reminders(db, settings, clock=at(escalate_at + timedelta(minutes=2)))
    assert again["written"] == 0
    kinds = _kinds(db)
    assert kinds["triage_overdue"] == new_with_owner


def test_partner_reminders_every_ten_days_then_expiry(db):
    settings = _setup(db)
    with db.sessions() as s:
        referred = s.scalars(select(m.Referral).where(m.Referral.state == "referred")).all()
        assert referred, "intake sends transverse freins directly to partners"
        sent = as_utc(referred[0].state_changed_at)
    r1 = write_due_reminders(db, settings, clock=at(sent + timedelta(days=10, hours=1)))
    assert r1["partner_reminder"] > 0
    assert (
        write_due_reminders(db, settings, clock=at(sent + timedelta(days=11)))["partner_reminder"]
        == 0
    )
    r2 = write_due_reminders(db, settings, clock=at(sent + timedelta(days=20, hours=1)))
    assert r2["partner_reminder"] == r1["partner_reminder"]
    r3 = write_due_reminders(db, settings, clock=at(sent + timedelta(days=30, hours=1)))
    assert r3["expired"] == len(referred)
    with db.sessions() as s:
        assert (
            s.scalar(
                select(func.count()).select_from(m.Referral).where(m.Referral.state == "referred")
            )
            == 0
        )
        events = s.scalars(select(m.ReferralEvent).where(m.ReferralEvent.action == "expire")).all()
        assert len(events) == len(referred) and all(
            e.actor_label.startswith("système") for e in events
        )


@pytest.mark.parametrize("day", DAYS, ids=str)
def test_digest_first_at_next_run_then_once_a_day_at_the_configured_hour(db, day):
    settings = _setup(db, day)
    now = _morning(day) + timedelta(hours=2)
    with db.sessions() as s:
        owners = set(
            s.scalars(
                select(m.OutboxMessage.recipient_user_id).where(
                    m.OutboxMessage.delivery == "digest"
                )
            ).all()
        )
    assert owners, "new referrals go to the daily digest by default"
    assert write_due_digests(db, settings, clock=at(now)) == len(owners)
    with db.sessions() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(m.OutboxMessage)
                .where(m.OutboxMessage.status == "pending", m.OutboxMessage.delivery == "digest")
            )
            == 0
        )
    # A new digest item the same afternoon waits for tomorrow's digest hour.
    uid = next(iter(sorted(owners)))
    with unit_of_work(db) as s:
        user = s.get(m.StaffUser, uid)
        enqueue(s, kind="new_referrals", key="later", to_address=user.email, recipient_user_id=uid, base_url=BASE,
                context={"recipient_name": user.display_name, "preferences_url": f"{BASE}/preferences", "count": 2,
                         "url": f"{BASE}/file"}, due_at=now, now=now)  # fmt: skip
    assert write_due_digests(db, settings, clock=at(now + timedelta(hours=3))) == 0
    nxt = day + timedelta(days=1)
    tomorrow = datetime(nxt.year, nxt.month, nxt.day, settings.digest_hour, 0, tzinfo=UTC)
    assert write_due_digests(db, settings, clock=at(tomorrow - timedelta(minutes=5))) == 0
    assert write_due_digests(db, settings, clock=at(tomorrow + timedelta(minutes=5))) == 1
    assert write_due_digests(db, settings, clock=at(tomorrow + timedelta(hours=2))) == 0


def test_critical_kinds_cannot_be_switched_off(db):
    _setup(db)
    with unit_of_work(db) as s:
        uid = s.scalar(select(m.StaffUser.id).where(m.StaffUser.role == "officer").limit(1))
        s.add(m.NotificationPreference(user_id=uid, kind="triage_overdue", mode="off"))
        s.add(m.NotificationPreference(user_id=uid, kind="new_referrals", mode="off"))
        s.add(m.NotificationPreference(user_id=uid, kind="slot_validated", mode="digest"))
        s.flush()
        assert preference_mode(s, uid, "triage_overdue") == "immediate"
        assert preference_mode(s, uid, "new_referrals") == "off"
        assert preference_mode(s, uid, "slot_validated") == "digest"
        assert preference_mode(s, uid, "allocation_ready") == "immediate"
        assert preference_mode(s, None, "new_referrals") == "digest"
