"""Allocation in the engine: proposals from the waitlist, validation that never over-consumes."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from engine.allocation.run import (
    AllocationBusy,
    decline_proposal,
    expire_proposals,
    run_allocation,
    validate_proposal,
)
from engine.domain.clock import Clock
from engine.domain.lifecycle import TransitionError
from engine.intake.run import run_intake
from engine.network.demo import simulate_activity
from engine.network.seed import seed_network
from engine.referrals.actions import Actor
from engine.store import models as m
from engine.store.db import unit_of_work
from engine.store.settings import Settings

TODAY = date(2026, 11, 26)
CLOCK = Clock.on_day(TODAY, running=False)


def _network(db, scale=0.3):
    settings = Settings(database_url=db.url)
    seed_network(db, scale=scale, seed=5, clock=CLOCK)
    run_intake(db, settings, clock=CLOCK)
    simulate_activity(db, settings, seed=5, refer_share=0, clock=CLOCK)
    return settings


def _used(session, pool_id):
    return session.scalar(
        select(func.count())
        .select_from(m.SlotAssignment)
        .join(m.SlotUnit, m.SlotUnit.id == m.SlotAssignment.unit_id)
        .where(m.SlotAssignment.active, m.SlotUnit.pool_id == pool_id)
    )


def _coordinator_for(session, referral):
    return session.scalars(
        select(m.StaffUser).where(
            m.StaffUser.role == "coordinator", m.StaffUser.territory_id == referral.territory_id
        )
    ).first()


def test_a_run_proposes_within_capacity_and_stores_its_inputs(db):
    settings = _network(db)
    dry = run_allocation(db, settings, dry_run=True, clock=CLOCK)
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.AllocationProposal)) == 0
    report = run_allocation(db, settings, clock=CLOCK)
    assert report.status == "optimal" and report.solver in ("min_cost_flow", "cp_sat")
    assert sum(report.proposals_by_pool.values()) == sum(dry.proposals_by_pool.values()) > 0
    with db.sessions() as s:
        run = s.get(m.AllocationRun, report.run_id)
        assert run.inputs_digest and run.objective is not None and run.bound >= run.objective
        assert run.parameters["alpha"] == 0.8 and run.status == "optimal"
        for pool in s.scalars(select(m.SlotPool)).all():
            units = s.scalar(
                select(func.coalesce(func.sum(m.AllocationProposal.units), 0)).where(
                    m.AllocationProposal.pool_id == pool.id,
                    m.AllocationProposal.status == "proposed",
                )
            )
            assert units <= pool.capacity
        # Ranks 2..k of a commission's lists wait "shortlisted": their people stay waitlisted.
        props = s.scalars(
            select(m.AllocationProposal).where(m.AllocationProposal.status == "proposed")
        ).all()
        for p in props:
            ref = s.get(m.Referral, p.referral_id)
            assert ref.state == "proposed" and ref.pool_id == p.pool_id
            assert "points" in p.explanation
        # Every waitlisted person has an explanation in the run.
        waiting = s.scalars(select(m.Referral.id).where(m.Referral.state == "waitlisted")).all()
        assert all(str(r) in run.explanations for r in waiting)
        # Coordinators hear that proposals wait for them.
        assert (
            s.scalar(
                select(func.count())
                .select_from(m.OutboxMessage)
                .where(m.OutboxMessage.kind == "allocation_ready")
            )
            > 0
        )
    # Same waitlist, same pending proposals as pins: a second run proposes nothing new.
    again = run_allocation(db, settings, clock=CLOCK)
    assert sum(again.proposals_by_pool.values()) == 0


def test_validate_consumes_units_and_decline_returns_to_waitlist(db):
    settings = _network(db)
    run_allocation(db, settings, clock=CLOCK)
    with unit_of_work(db) as s:
        props = s.scalars(select(m.AllocationProposal).order_by(m.AllocationProposal.id)).all()
        first, second = props[0], props[1]
        coord = _coordinator_for(s, s.get(m.Referral, first.referral_id))
        actor = Actor.of(coord) if coord else Actor.system("test")
        validate_proposal(s, settings, first.id, actor=actor, clock=CLOCK)
        assert _used(s, first.pool_id) == first.units
        assert s.get(m.Referral, first.referral_id).state == "accepted"
        with pytest.raises(TransitionError):
            validate_proposal(s, settings, first.id, actor=actor, clock=CLOCK)
        decline_proposal(
            s,
            settings,
            second.id,
            actor=Actor.system("test"),
            reason="other",
            note="la personne a déménagé",
            clock=CLOCK,
        )
        assert s.get(m.Referral, second.referral_id).state == "waitlisted"
        assert (
            s.scalar(
                select(func.count())
                .select_from(m.OutboxMessage)
                .where(m.OutboxMessage.kind == "slot_validated")
            )
            >= 1
        )


def test_unanswered_proposals_expire_back_to_the_waitlist(db):
    settings = _network(db, scale=0.2)
    run_allocation(db, settings, clock=CLOCK)
    with unit_of_work(db) as s:
        # Commission ranks never expire: only the commission's decision moves a unit on.
        P = m.AllocationProposal
        n = s.scalar(select(func.count()).select_from(P).where(P.rank.is_(None)))
        held = s.scalar(
            select(func.count()).select_from(P).where(P.rank.is_not(None), P.status == "proposed")
        )
        from datetime import timedelta

        assert (
            expire_proposals(
                s,
                settings,
                clock=Clock.fixed(CLOCK.now() + timedelta(days=settings.proposal_expiry_days + 1)),
            )
            == n
        )
        assert (
            s.scalar(
                select(func.count()).select_from(m.Referral).where(m.Referral.state == "proposed")
            )
            == held
        )


def test_only_one_run_at_a_time(db):
    settings = _network(db, scale=0.1)
    with unit_of_work(db) as s:
        s.add(m.AllocationRun(status="running", started_at=CLOCK.now()))
    with pytest.raises(AllocationBusy):
        run_allocation(db, settings, clock=CLOCK)


def test_concurrent_validations_never_over_consume_a_pool(pg_db):
    settings = _network(pg_db, scale=0.3)
    with unit_of_work(pg_db) as s:
        pool = s.scalars(
            select(m.SlotPool).where(m.SlotPool.capacity >= 3).order_by(m.SlotPool.id)
        ).first()
        refs = s.scalars(select(m.Referral).where(m.Referral.state == "waitlisted").limit(8)).all()
        assert len(refs) == 8
        run = m.AllocationRun(status="optimal", running_lock=0, started_at=CLOCK.now())
        s.add(run)
        s.flush()
        ids = []
        for r in refs:
            r.state = "proposed"
            p = m.AllocationProposal(run_id=run.id, referral_id=r.id, pool_id=pool.id, units=1, weight=1,
                                     priority=r.priority, explanation="test", status="proposed")  # fmt: skip
            s.add(p)
            s.flush()
            ids.append(p.id)
        capacity = pool.capacity
    outcomes: list[str] = []

    def validate(pid: int) -> None:
        try:
            with unit_of_work(pg_db) as s:
                validate_proposal(s, settings, pid, actor=Actor.system("test"), clock=CLOCK)
            outcomes.append("ok")
        except TransitionError:
            outcomes.append("full")

    threads = [threading.Thread(target=validate, args=(pid,)) for pid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pg_db.sessions() as s:
        assert _used(s, pool.id) == min(capacity, len(ids)) == outcomes.count("ok")
