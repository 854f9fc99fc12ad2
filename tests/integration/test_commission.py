"""Commission pools in the engine, on SQLite and PostgreSQL: a run lists rang 1..k per free
unit (rang 1 proposed through the door, the others told nothing), the commission's decisions
go through the door, a refusal passes the unit to the next rank still waiting — never
skipping one —, an exhausted list frees the unit, held units and people stay out of later
runs, and two coordinators deciding at once cannot both win."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from engine.allocation import commission
from engine.allocation.commission import AlreadyDecided, decide, free_unit_numbers
from engine.allocation.run import expire_proposals, run_allocation
from engine.domain.clock import Clock
from engine.domain.errors import NotFound, Refused
from engine.intake.run import run_intake
from engine.network.demo import simulate_activity
from engine.network.seed import seed_network
from engine.referrals.actions import Actor, StaleEdit, transition
from engine.store import models as m
from engine.store.db import unit_of_work
from engine.store.settings import Settings
from matching.eligibility import evaluate
from partners.eligibility_rules import Rule

TODAY = date(2026, 11, 26)
CLOCK = Clock.on_day(TODAY, running=False)
UNITS = 3  # the CDC Habitat contingent of the catalogue: 3 flats a year


def _network(db, *, units: int = UNITS):
    """The scale-0.3 network with its waitlist; the commission pool (CDC Habitat, Paris and
    Seine-Saint-Denis) gets ``units`` flats."""
    settings = Settings(database_url=db.url)
    seed_network(db, scale=0.3, seed=5, clock=CLOCK)
    run_intake(db, settings, clock=CLOCK)
    simulate_activity(db, settings, seed=5, refer_share=0, clock=CLOCK)
    with unit_of_work(db) as s:
        pool = _pool(s)
        last = s.scalar(select(func.max(m.SlotUnit.unit_no)).where(m.SlotUnit.pool_id == pool.id))
        s.add_all(m.SlotUnit(pool_id=pool.id, unit_no=last + i) for i in range(1, units - last + 1))
        pool.capacity = units
    return settings


def _pool(s) -> m.SlotPool:
    return s.scalar(select(m.SlotPool).where(m.SlotPool.commission.is_(True)))


def _units(s, run_id: int) -> dict[int, list[m.AllocationProposal]]:
    """unit number -> the run's rows of the commission pool, rang 1 first."""
    P = m.AllocationProposal
    out: dict[int, list[m.AllocationProposal]] = {}
    for p in s.scalars(
        select(P).where(P.run_id == run_id, P.rank.is_not(None)).order_by(P.unit_no, P.rank)
    ).all():
        out.setdefault(p.unit_no, []).append(p)
    return out


def _user(s, email_local: str) -> m.StaffUser:
    return s.scalar(select(m.StaffUser).where(m.StaffUser.email.like(f"{email_local}@%")))


def _paris(s) -> Actor:
    return Actor.of(_user(s, "coordination.paris.1"))


def _state(s, rid: int) -> str:
    s.expire_all()
    return s.get(m.Referral, rid).state


def test_a_run_lists_ranked_eligible_candidates_per_free_unit(db):
    settings = _network(db)
    dry = run_allocation(db, settings, dry_run=True, clock=CLOCK)
    name = next(iter(dry.commission_units))
    assert dry.commission_units[name] == UNITS and dry.commission_listed[name] == UNITS * 3
    assert any("en commission" in line for line in dry.lines_fr())
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.AllocationProposal)) == 0
    report = run_allocation(db, settings, clock=CLOCK)
    assert report.commission_units == {name: UNITS}
    assert report.commission_listed == {name: UNITS * 3}
    with db.sessions() as s:
        pool = _pool(s)
        units = _units(s, report.run_id)
        assert sorted(units) == [1, 2, 3]
        rules = tuple(Rule.model_validate(r) for r in pool.offer.rules)
        seen: set[int] = set()
        for rows in units.values():
            assert [p.rank for p in rows] == [1, 2, 3]
            assert [p.status for p in rows] == ["proposed", "shortlisted", "shortlisted"]
            assert rows[0].expires_at is None  # only the commission moves a unit on
            for p in rows:
                ref = s.get(m.Referral, p.referral_id)
                assert ref.state == ("proposed" if p.rank == 1 else "waitlisted")
                assert f"Rang {p.rank} sur la liste de la commission" in p.explanation
                assert "points" in p.explanation
                person = s.get(m.Salarie, ref.salarie_id)
                from engine.allocation.run import _facts

                assert evaluate(rules, _facts(person, None, 1)).eligible
                assert p.referral_id not in seen
                seen.add(p.referral_id)
        # Each unit's list is written down, with who made it and when.
        audits = s.scalars(
            select(m.AuditLog).where(m.AuditLog.action == "commission_shortlist")
        ).all()
        assert sorted(a.details["unit_no"] for a in audits) == [1, 2, 3]
        # Ranks 2..k are told nothing: no message names them; the coordinators hear of rang 1.
        later = [p.referral_id for rows in units.values() for p in rows[1:]]
        assert (
            s.scalar(
                select(func.count())
                .select_from(m.OutboxMessage)
                .where(m.OutboxMessage.referral_id.in_(later))
            )
            == 0
        )
        assert not s.scalars(
            select(m.ReferralEvent).where(m.ReferralEvent.referral_id.in_(later))
            .where(m.ReferralEvent.action == "propose")
        ).all()  # fmt: skip
        run = s.get(m.AllocationRun, report.run_id)
        assert run.stats["commissions"][0]["units"] == UNITS


def test_held_units_and_listed_people_stay_out_of_the_next_run(db):
    settings = _network(db)
    first = run_allocation(db, settings, clock=CLOCK)
    second = run_allocation(db, settings, clock=CLOCK)
    assert second.commission_units == {} and sum(second.proposals_by_pool.values()) == 0
    with db.sessions() as s:
        listed = [p.referral_id for rows in _units(s, first.run_id).values() for p in rows[1:]]
        assert s.scalar(
            select(func.count()).select_from(m.AllocationProposal)
            .where(m.AllocationProposal.run_id == second.run_id)
        ) == 0  # fmt: skip
        explanations = s.get(m.AllocationRun, second.run_id).explanations
        for rid in listed:
            assert "En attente de la commission" in explanations[str(rid)]
        assert free_unit_numbers(s, _pool(s)) == []


def test_refusals_pass_the_unit_down_the_ranks_then_an_attribution_withdraws_the_rest(db):
    settings = _network(db)
    run_id = run_allocation(db, settings, clock=CLOCK).run_id
    with unit_of_work(db, immediate=True) as s:
        rows = _units(s, run_id)[1]
        r1, r2, r3 = (p.referral_id for p in rows)
        done = decide(s, settings, rows[0].id, decision="refus_candidat",
                      reason="declined_by_person", actor=_paris(s), clock=CLOCK,
                      expected_version=rows[0].version)  # fmt: skip
        assert done.passed.next_proposal.id == rows[1].id
        assert "Passage automatique au rang 2" in done.sentence()
    with unit_of_work(db, immediate=True) as s:
        rows = _units(s, run_id)[1]
        assert [p.status for p in rows] == ["declined", "proposed", "shortlisted"]
        assert rows[0].decline_reason == "declined_by_person"
        assert _state(s, r1) == "waitlisted" and _state(s, r2) == "proposed"
        assert _state(s, r3) == "waitlisted"
        event = s.scalars(
            select(m.ReferralEvent).where(m.ReferralEvent.referral_id == r2,
                                          m.ReferralEvent.action == "propose")
        ).one()  # fmt: skip
        assert "rang 2" in event.note and event.actor_label == "système : commission"
        # The coordination of rang 2's territory hears a decision awaits (not the decider).
        ref2 = s.get(m.Referral, r2)
        told = s.scalars(
            select(m.OutboxMessage.recipient_user_id).where(
                m.OutboxMessage.kind == "allocation_ready",
                m.OutboxMessage.idempotency_key.like(f"%:rang:{rows[1].id}"),
            )
        ).all()
        coords = s.scalars(
            select(m.StaffUser.id).where(
                m.StaffUser.role == "coordinator",
                m.StaffUser.territory_id == ref2.territory_id,
                m.StaffUser.active,
            )
        ).all()
        assert sorted(told) == sorted(set(coords) - {_paris(s).user.id})
        decide(s, settings, rows[1].id, decision="refus_commission", reason="incomplete_file",
               actor=_paris(s), clock=CLOCK, expected_version=rows[1].version)  # fmt: skip
    with unit_of_work(db, immediate=True) as s:
        rows = _units(s, run_id)[1]
        assert [p.status for p in rows] == ["declined", "declined", "proposed"]
        assert rows[1].decline_reason == "commission:incomplete_file"
        note = s.scalars(
            select(m.ReferralEvent.note).where(m.ReferralEvent.referral_id == r2,
                                               m.ReferralEvent.action == "decline_proposal")
        ).one()  # fmt: skip
        assert note == "Refus de la commission : Dossier incomplet"
        done = decide(s, settings, rows[2].id, decision="attribue", actor=_paris(s),
                      clock=CLOCK, expected_version=rows[2].version)  # fmt: skip
        assert done.passed.attributed
    with db.sessions() as s:
        rows = _units(s, run_id)[1]
        assert rows[2].status == "validated" and _state(s, r3) == "accepted"
        unit = s.scalar(
            select(m.SlotUnit.unit_no)
            .join(m.SlotAssignment, m.SlotAssignment.unit_id == m.SlotUnit.id)
            .where(m.SlotAssignment.referral_id == r3, m.SlotAssignment.active)
        )
        assert unit == 1  # the flat the commission examined, not merely the first free one
        assert s.scalar(select(func.count()).select_from(m.OutboxMessage).where(
            m.OutboxMessage.kind == "slot_validated", m.OutboxMessage.referral_id.is_(None),
            m.OutboxMessage.idempotency_key.like(f"slot_validated:{r3}:%"))) >= 1  # fmt: skip
    # Another unit attributed at rang 1: its ranks 2..k are withdrawn, nothing is sent to them.
    with unit_of_work(db, immediate=True) as s:
        rows = _units(s, run_id)[3]  # unit 2 is free too: unit 3 is taken
        decide(s, settings, rows[0].id, decision="attribue", actor=_paris(s), clock=CLOCK,
               expected_version=rows[0].version)  # fmt: skip
    with db.sessions() as s:
        rows = _units(s, run_id)[3]
        assert [p.status for p in rows] == ["validated", "withdrawn", "withdrawn"]
        assert s.scalar(
            select(m.SlotUnit.unit_no)
            .join(m.SlotAssignment, m.SlotAssignment.unit_id == m.SlotUnit.id)
            .where(m.SlotAssignment.referral_id == rows[0].referral_id, m.SlotAssignment.active)
        ) == 3  # fmt: skip
        assert free_unit_numbers(s, _pool(s)) == []  # unit 2 stays held by its commission
        assert all("Attribué au rang 1" in p.decline_reason for p in rows[1:])
        for p in rows[1:]:
            assert _state(s, p.referral_id) == "waitlisted"
            assert s.scalar(select(func.count()).select_from(m.OutboxMessage).where(
                (m.OutboxMessage.referral_id == p.referral_id)
                | m.OutboxMessage.idempotency_key.like(f"slot_validated:{p.referral_id}:%")
            )) == 0  # fmt: skip
        assert s.scalar(select(func.count()).select_from(m.AuditLog).where(
            m.AuditLog.action == "commission_withdraw")) == 2  # fmt: skip
        assert s.scalar(select(func.count()).select_from(m.AuditLog).where(
            m.AuditLog.action == "commission_decision")) == 4  # fmt: skip


def test_a_person_who_left_is_withdrawn_and_an_exhausted_list_frees_the_unit(db):
    settings = _network(db)
    run_id = run_allocation(db, settings, clock=CLOCK).run_id
    with unit_of_work(db, immediate=True) as s:
        rows = _units(s, run_id)[3]
        r2 = rows[1].referral_id
        admin = _user(s, "admin")
        transition(s, settings, r2, "cancel", actor=Actor.of(admin), clock=CLOCK,
                   note="a trouvé un logement par elle-même")  # fmt: skip
    with unit_of_work(db, immediate=True) as s:
        rows = _units(s, run_id)[3]
        done = decide(s, settings, rows[0].id, decision="refus_candidat", reason="unreachable",
                      actor=_paris(s), clock=CLOCK, expected_version=rows[0].version)  # fmt: skip
        assert done.passed.withdrawn and done.passed.withdrawn[0][0] == 2
        assert done.passed.next_proposal.rank == 3
    with unit_of_work(db, immediate=True) as s:
        rows = _units(s, run_id)[3]
        assert [p.status for p in rows] == ["declined", "withdrawn", "proposed"]
        assert "n'était plus en attente" in rows[1].decline_reason
        assert "Annulée" in rows[1].decline_reason
        assert 3 not in free_unit_numbers(s, _pool(s))
        done = decide(s, settings, rows[2].id, decision="refus_commission", reason="other",
                      note="pièces manquantes au dossier", actor=_paris(s), clock=CLOCK,
                      expected_version=rows[2].version)  # fmt: skip
        assert done.passed.exhausted and "Liste épuisée" in done.sentence()
    with db.sessions() as s:
        assert free_unit_numbers(s, _pool(s)) == [3]
        view = commission.commission_view(s, _user(s, "coordination.paris.1"), run_id, _pool(s).id)
        unit = next(u for u in view.units if u.unit_no == 3)
        assert unit.state == commission.UNIT_RETURNED and unit.current is None
        assert "pièces manquantes au dossier" in unit.ranks[2].status_label
        assert view.count(commission.UNIT_RETURNED) == 1
        assert view.count(commission.UNIT_IN_COMMISSION) == 2
    # The next run lists the freed unit again (with unit number 3), for people still waiting.
    again = run_allocation(db, settings, clock=CLOCK)
    assert sum(again.commission_units.values()) == 1
    with db.sessions() as s:
        units = _units(s, again.run_id)
        assert list(units) == [3]
        listed_before = {p.referral_id for rows in _units(s, run_id).values() for p in rows
                         if p.status in ("shortlisted", "proposed")}  # fmt: skip
        assert not listed_before & {p.referral_id for p in units[3]}


def test_the_current_rank_closed_by_another_way_passes_the_unit_on(db):
    settings = _network(db)
    run_id = run_allocation(db, settings, clock=CLOCK).run_id
    with unit_of_work(db, immediate=True) as s:
        rows = _units(s, run_id)[1]
        transition(s, settings, rows[0].referral_id, "refuse", actor=_paris(s), clock=CLOCK,
                   reason="met_elsewhere")  # fmt: skip
    with db.sessions() as s:
        rows = _units(s, run_id)[1]
        assert [p.status for p in rows] == ["declined", "proposed", "shortlisted"]
        assert _state(s, rows[1].referral_id) == "proposed"
    # The ordinary review's decline (the same door) passes it on too.
    with unit_of_work(db, immediate=True) as s:
        from engine.allocation.run import decline_proposal

        rows = _units(s, run_id)[1]
        decline_proposal(s, settings, rows[1].id, actor=Actor.of(_user(s, "admin")),
                         clock=CLOCK, reason="declined_by_person")  # fmt: skip
    with db.sessions() as s:
        assert [p.status for p in _units(s, run_id)[1]] == ["declined", "declined", "proposed"]
    # A commission rank never expires on its own.
    with unit_of_work(db) as s:
        later = Clock.fixed(CLOCK.now() + timedelta(days=settings.proposal_expiry_days + 30))
        expire_proposals(s, settings, clock=later)
    with db.sessions() as s:
        assert [p.status for p in _units(s, run_id)[1]] == ["declined", "declined", "proposed"]


def test_bad_decisions_change_nothing(db):
    settings = _network(db)
    run_id = run_allocation(db, settings, clock=CLOCK).run_id
    with db.sessions() as s:
        rows = _units(s, run_id)[1]
        ids = [p.id for p in rows]
        version = rows[0].version
    cases = [
        ({"decision": "peut-être"}, Refused),
        ({"decision": "refus_candidat"}, Refused),
        ({"decision": "refus_candidat", "reason": "no_show"}, Refused),  # not a decline code
        ({"decision": "refus_commission", "reason": "declined_by_person"}, Refused),
        ({"decision": "refus_commission", "reason": "other"}, Refused),  # no precision
        ({"decision": "refus_commission", "reason": "other", "note": "a\x00b"}, Refused),
        ({"decision": "attribue", "expected_version": version + 5}, StaleEdit),
    ]
    for kwargs, error in cases:
        kwargs = {"expected_version": version, **kwargs}
        with pytest.raises(error), unit_of_work(db, immediate=True) as s:
            decide(s, settings, ids[0], actor=_paris(s), clock=CLOCK, **kwargs)
    # Rang 2 waits its turn.
    with pytest.raises(Refused, match="pas encore examiné"), unit_of_work(db, immediate=True) as s:
        decide(s, settings, ids[1], decision="attribue", actor=_paris(s), clock=CLOCK)
    # Lyon's coordination does not see this commission; an unknown id is the same.
    with pytest.raises(NotFound), unit_of_work(db, immediate=True) as s:
        lyon = Actor.of(_user(s, "coordination.lyon.1"))
        decide(s, settings, ids[0], decision="attribue", actor=lyon, clock=CLOCK)
    with pytest.raises(NotFound), unit_of_work(db, immediate=True) as s:
        decide(s, settings, 10**9, decision="attribue", actor=_paris(s), clock=CLOCK)
    with db.sessions() as s:
        rows = _units(s, run_id)[1]
        assert [p.status for p in rows] == ["proposed", "shortlisted", "shortlisted"]
        assert rows[0].version == version
        assert s.scalar(select(func.count()).select_from(m.AuditLog).where(
            m.AuditLog.action == "commission_decision")) == 0  # fmt: skip


def test_either_coordination_of_the_pool_decides_on_any_rank(db):
    """The CDC commission serves Paris and Seine-Saint-Denis: Seine-Saint-Denis' coordination
    records a decision on a Paris candidate (the door lets it), Lyon's cannot."""
    settings = _network(db)
    run_id = run_allocation(db, settings, clock=CLOCK).run_id
    with unit_of_work(db, immediate=True) as s:
        pool = _pool(s)
        ssd = _user(s, "coordination.seine-saint-denis.1")
        lyon = _user(s, "coordination.lyon.1")
        for rows in _units(s, run_id).values():
            ref = s.get(m.Referral, rows[0].referral_id)
            assert commission.may_decide(s, ssd, pool, ref)
            assert not commission.may_decide(s, lyon, pool, ref)
        rows = _units(s, run_id)[1]
        decide(s, settings, rows[0].id, decision="attribue", actor=Actor.of(ssd), clock=CLOCK)
    with db.sessions() as s:
        assert _units(s, run_id)[1][0].status == "validated"


def test_two_coordinators_deciding_at_once_one_wins(db):
    settings = _network(db)
    run_id = run_allocation(db, settings, clock=CLOCK).run_id
    with db.sessions() as s:
        rows = _units(s, run_id)[1]
        pid, version = rows[0].id, rows[0].version
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def one(email: str, decision: str, reason: str | None) -> None:
        barrier.wait()
        try:
            with unit_of_work(db, immediate=True) as s:
                decide(s, settings, pid, decision=decision, reason=reason,
                       actor=Actor.of(_user(s, email)), clock=CLOCK, expected_version=version)  # fmt: skip
            outcomes.append("ok")
        except AlreadyDecided as exc:
            assert "déjà été enregistrée" in str(exc)
            outcomes.append("already")

    threads = [
        threading.Thread(target=one, args=("coordination.paris.1", "attribue", None)),
        threading.Thread(
            target=one,
            args=("coordination.seine-saint-denis.1", "refus_candidat", "declined_by_person"),
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["already", "ok"]
    with db.sessions() as s:
        rows = _units(s, run_id)[1]
        statuses = [p.status for p in rows]
        # Exactly one of the two decisions happened, entirely.
        assert statuses in (
            ["validated", "withdrawn", "withdrawn"],
            ["declined", "proposed", "shortlisted"],
        )
        assert s.scalar(select(func.count()).select_from(m.ReferralEvent).where(
            m.ReferralEvent.referral_id == rows[0].referral_id,
            m.ReferralEvent.action.in_(("validate", "decline_proposal")))) == 1  # fmt: skip
