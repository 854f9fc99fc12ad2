"""The allocation run reads what people stated and each family's mechanism."""

from __future__ import annotations

from sqlalchemy import select

from engine.allocation.preferences import record_preferences, set_mechanism
from engine.allocation.run import run_allocation
from engine.referrals.actions import Actor
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.integration.test_allocation_engine import CLOCK, _network


def _admin(session):
    return session.scalars(select(m.StaffUser).where(m.StaffUser.role == "national_admin")).first()


def test_stated_choices_narrow_the_run_and_a_stable_family_uses_deferred_acceptance(db):
    settings = _network(db)
    first = run_allocation(db, settings, dry_run=True, clock=CLOCK)
    assert first.solver != "deferred_acceptance"
    with unit_of_work(db) as s:
        waiting = s.scalars(
            select(m.Referral).where(m.Referral.state == "waitlisted").order_by(m.Referral.id)
        ).all()
        assert waiting
        # The first waiting referral accepts only its own pool.
        target = next(r for r in waiting if r.pool_id is not None)
        record_preferences(
            s,
            target.id,
            [{"pool": target.pool_id}],
            actor=Actor.system("test"),
            clock=CLOCK,
            expected_version=None,
        )
        target_id, chosen = target.id, target.pool_id
        admin = _admin(s)
        offers = s.scalars(select(m.Offer.id).where(m.Offer.slot_based)).all()
        for oid in offers:
            set_mechanism(s, oid, "stable", actor=Actor.of(admin), clock=CLOCK)
    report = run_allocation(db, settings, clock=CLOCK)
    assert report.status == "optimal"
    with db.sessions() as s:
        run = s.get(m.AllocationRun, report.run_id)
        assert "deferred_acceptance" in (run.solver or "")
        figures = run.stats["mechanisms"]
        assert figures["optimal_weight"] >= figures["stable_weight"] > 0
        assert run.inputs_digest != s.get(m.AllocationRun, first.run_id).inputs_digest
        props = s.scalars(
            select(m.AllocationProposal).where(m.AllocationProposal.referral_id == target_id)
        ).all()
        assert all(p.pool_id == chosen for p in props)
        explanation = run.explanations[str(target_id)]
        assert explanation
