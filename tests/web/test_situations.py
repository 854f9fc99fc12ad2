"""The situation factories reach their state through the door, with the door's effects."""

from __future__ import annotations

from sqlalchemy import func, select

from engine.store import models as m
from tests.support.situations import proposed, referred_to, waitlisted_for


def test_referred_to_writes_the_partner_mail_and_waitlisted_holds_no_unit(world_db):
    rid, offer_id = referred_to(world_db)
    with world_db.db.sessions() as s:
        ref = s.get(m.Referral, rid)
        assert (ref.state, ref.offer_id) == ("referred", offer_id)
        actions = s.scalars(
            select(m.ReferralEvent.action).where(m.ReferralEvent.referral_id == rid)
            .order_by(m.ReferralEvent.id)
        ).all()  # fmt: skip
        assert actions == ["route", "take", "refer"]
        mails = s.scalar(select(func.count()).select_from(m.OutboxMessage).where(
            m.OutboxMessage.idempotency_key.like(f"partner_orientation:{rid}:%")))  # fmt: skip
        assert mails >= 1
    rid, pool_id = waitlisted_for(world_db)
    with world_db.db.sessions() as s:
        ref = s.get(m.Referral, rid)
        assert (ref.state, ref.pool_id) == ("waitlisted", pool_id)


def test_proposed_comes_from_a_real_allocation_run(world_db):
    pid, rid, version = proposed(world_db)
    with world_db.db.sessions() as s:
        prop = s.get(m.AllocationProposal, pid)
        assert (prop.referral_id, prop.status, prop.version) == (rid, "proposed", version)
        assert s.get(m.Referral, rid).state == "proposed"
        assert s.get(m.AllocationRun, prop.run_id).status in ("optimal", "feasible")
