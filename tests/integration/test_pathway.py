"""Pathway facts recorded by the CIP/ESP (exit, housing, health, follow-up) and the simulated
year, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from engine.domain.clock import Clock
from engine.domain.errors import NotFound, Refused
from engine.domain.lifecycle import OPEN_STATES
from engine.intake.run import run_intake
from engine.network.seed import seed_network
from engine.network.simulate import SimulationError, simulate_year
from engine.pathway.facts import (
    EXIT_NOTE,
    Recorder,
    record_exit,
    record_follow_up,
    record_health_event,
    record_housing_change,
    set_referred_by,
)
from engine.store import models as m
from engine.store.db import unit_of_work
from engine.store.settings import Settings

CLOCK = Clock.fixed(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def routed(db, tmp_path):
    settings = Settings(database_url=str(db.engine.url.render_as_string(hide_password=False)))
    seed_network(db, scale=0.05, seed=3, clock=CLOCK)
    run_intake(db, settings, clock=CLOCK)
    return db, settings


def _cip_and_person(session, *, with_open_referrals: bool = True):  # type: ignore[no-untyped-def]
    q = select(m.Salarie).where(m.Salarie.programme == "cvg").order_by(m.Salarie.id)
    for person in session.scalars(q):
        cip = session.scalars(
            select(m.StaffUser).where(
                m.StaffUser.role == "cip", m.StaffUser.chantier_id == person.chantier_id
            )
        ).first()
        n_open = session.scalar(
            select(func.count()).where(
                m.Referral.salarie_id == person.id, m.Referral.state.in_(OPEN_STATES)
            )
        )
        if cip is not None and (n_open > 0) == with_open_referrals:
            return cip, person
    raise AssertionError("no such person in the seeded network")


def test_an_exit_recorded_by_the_cip_ends_open_referrals_through_the_door(routed):
    db, settings = routed
    with unit_of_work(db) as s:
        cip, person = _cip_and_person(s)
        pid = person.id
        open_ids = s.scalars(
            select(m.Referral.id).where(
                m.Referral.salarie_id == pid, m.Referral.state.in_(OPEN_STATES)
            )
        ).all()
        cancelled = record_exit(
            s, settings, Recorder.of(cip), pid, on=CLOCK.today(), category="emploi_durable",
            clock=CLOCK,
        )  # fmt: skip
        assert cancelled == len(open_ids) > 0
    with unit_of_work(db) as s:
        person = s.get(m.Salarie, pid)
        assert (person.exit_date, person.exit_category) == (CLOCK.today(), "emploi_durable")
        states = s.scalars(select(m.Referral.state).where(m.Referral.id.in_(open_ids))).all()
        assert set(states) == {"cancelled"}
        events = s.scalars(
            select(m.ReferralEvent).where(
                m.ReferralEvent.referral_id.in_(open_ids), m.ReferralEvent.action == "cancel"
            )
        ).all()
        assert len(events) == len(open_ids)
        assert all(e.note == EXIT_NOTE and e.actor_label.startswith("système") for e in events)
        assert not s.scalar(
            select(func.count()).where(m.Frein.salarie_id == pid, m.Frein.status == "open")
        )
        audit = s.scalars(select(m.AuditLog).where(m.AuditLog.action == "record_exit")).one()
        assert audit.actor_user_id == cip.id and audit.object_id == str(pid)


def test_exit_is_refused_twice_in_the_future_before_entry_or_with_an_unknown_category(routed):
    db, settings = routed
    with unit_of_work(db) as s:
        cip, person = _cip_and_person(s)
        pid, entry = person.id, person.entry_date
    who = Recorder.of(cip)
    cases = [
        (CLOCK.today() + timedelta(days=1), "autre", "futur"),
        (entry - timedelta(days=1), "autre", "précède l'entrée"),
        (CLOCK.today(), "cdi", "valeur inconnue"),
    ]
    for day, category, words in cases:
        with pytest.raises(Refused, match=words), unit_of_work(db) as s:
            record_exit(s, settings, who, pid, on=day, category=category, clock=CLOCK)
    with unit_of_work(db) as s:
        record_exit(s, settings, who, pid, on=CLOCK.today(), category="autre", clock=CLOCK)
    with pytest.raises(Refused, match="déjà enregistrée"), unit_of_work(db) as s:
        record_exit(s, settings, who, pid, on=CLOCK.today(), category="autre", clock=CLOCK)


def test_only_the_chantiers_cip_or_the_coordination_may_record_on_a_person(routed):
    db, settings = routed
    with unit_of_work(db) as s:
        cip, person = _cip_and_person(s)
        pid = person.id
        other_cip = s.scalars(
            select(m.StaffUser).where(
                m.StaffUser.role == "cip", m.StaffUser.chantier_id != person.chantier_id
            )
        ).first()
        officer = s.scalars(select(m.StaffUser).where(m.StaffUser.role == "officer")).first()
        partner = s.scalars(
            select(m.StaffUser).where(m.StaffUser.role == "partner_contact")
        ).first()
        territory = s.scalar(
            select(m.Chantier.territory_id).where(m.Chantier.id == person.chantier_id)
        )
        coordinator = s.scalars(
            select(m.StaffUser).where(
                m.StaffUser.role == "coordinator", m.StaffUser.territory_id == territory
            )
        ).first()
    for intruder in (other_cip, officer, partner):
        with pytest.raises(NotFound), unit_of_work(db) as s:
            record_health_event(
                s, Recorder.of(intruder), pid, on=CLOCK.today(), kind="rights_opened", clock=CLOCK
            )
    with unit_of_work(db) as s:
        record_health_event(
            s, Recorder.of(coordinator), pid, on=CLOCK.today(), kind="rights_opened", clock=CLOCK
        )
        assert s.scalar(select(func.count()).select_from(m.HealthEvent)) == 1


def test_housing_changes_are_dated_and_keep_the_situation_at_entry(routed):
    db, _ = routed
    with unit_of_work(db) as s:
        cip, person = _cip_and_person(s)
        pid, start = person.id, person.housing
    who = Recorder.of(cip)
    target = "housed" if start != "housed" else "emergency_shelter"
    day = CLOCK.today() - timedelta(days=10)
    with unit_of_work(db) as s:
        record_housing_change(s, who, pid, on=day, after=target, clock=CLOCK)
    with pytest.raises(Refused, match="déjà la situation actuelle"), unit_of_work(db) as s:
        record_housing_change(s, who, pid, on=CLOCK.today(), after=target, clock=CLOCK)
    with pytest.raises(Refused, match="plus récent"), unit_of_work(db) as s:
        record_housing_change(s, who, pid, on=day - timedelta(days=1), after=start, clock=CLOCK)
    with unit_of_work(db) as s:
        change = s.scalars(select(m.HousingChange)).one()
        assert (change.before, change.after, change.on) == (start, target, day)
        assert s.get(m.Salarie, pid).housing == target


def test_health_events_once_a_day_follow_ups_only_after_a_cvg_exit(routed):
    db, settings = routed
    with unit_of_work(db) as s:
        cip, person = _cip_and_person(s)
        pid = person.id
    who = Recorder.of(cip)
    with unit_of_work(db) as s:
        record_health_event(s, who, pid, on=CLOCK.today(), kind="care_pathway", clock=CLOCK)
        set_referred_by(s, who, pid, "maraude", clock=CLOCK)
    with pytest.raises(Refused, match="déjà enregistré"), unit_of_work(db) as s:
        record_health_event(s, who, pid, on=CLOCK.today(), kind="care_pathway", clock=CLOCK)
    with pytest.raises(Refused, match="sorti"), unit_of_work(db) as s:
        record_follow_up(s, who, pid, months=3, situation="autre", housed=None, clock=CLOCK)
    with unit_of_work(db) as s:
        record_exit(s, settings, who, pid, on=CLOCK.today(), category="emploi_transition",
                    clock=CLOCK)  # fmt: skip
    later = Clock.fixed(CLOCK.now() + timedelta(days=92))
    with unit_of_work(db) as s:
        record_follow_up(
            s, who, pid, months=3, situation="emploi_durable", housed=True, clock=later
        )
    with pytest.raises(Refused, match="déjà enregistré"), unit_of_work(db) as s:
        record_follow_up(s, who, pid, months=3, situation="autre", housed=None, clock=later)
    with pytest.raises(Refused, match="3, 6 ou 12"), unit_of_work(db) as s:
        record_follow_up(s, who, pid, months=4, situation="autre", housed=None, clock=later)
    with unit_of_work(db) as s:
        assert s.get(m.Salarie, pid).referred_by == "maraude"


def test_the_database_refuses_an_exit_category_without_an_exit_date(routed):
    db, _ = routed
    with pytest.raises(IntegrityError), unit_of_work(db) as s:
        person = s.scalars(select(m.Salarie).where(m.Salarie.exit_date.is_(None))).first()
        person.exit_category = "autre"
        s.flush()


def test_a_simulated_year_records_exits_and_facts_sends_no_mail_and_replays_identically(db):
    settings = Settings(database_url=str(db.engine.url.render_as_string(hide_password=False)))
    start = Clock.on_day(date(2024, 1, 1), running=False)
    seed_network(db, scale=0.05, seed=5, clock=start)
    run_intake(db, settings, clock=start)
    with pytest.raises(SimulationError, match="n'a pas commencé"):
        simulate_year(db, settings, year=2025, clock=start)
    summary = simulate_year(
        db, settings, year=2024, clock=Clock.on_day(date(2024, 12, 31), running=False)
    )
    assert summary.counts["exit"] > 0 and summary.counts["take"] > 0
    with unit_of_work(db) as s:
        exits = s.execute(
            select(m.Salarie.exit_date, m.Salarie.exit_category).where(
                m.Salarie.exit_date.is_not(None)
            )
        ).all()
        assert len(exits) == summary.counts["exit"]
        assert all(date(2024, 1, 1) <= d <= date(2024, 12, 31) and c for d, c in exits)
        assert not s.scalar(select(func.count()).where(m.OutboxMessage.status == "pending")), (
            "a replayed history must not send its mails"
        )
        # Nobody who left keeps an open orientation; every state change is an event.
        assert not s.scalar(
            select(func.count())
            .select_from(m.Referral)
            .join(m.Salarie, m.Salarie.id == m.Referral.salarie_id)
            .where(m.Salarie.exit_date.is_not(None), m.Referral.state.in_(OPEN_STATES))
        )
        after = s.scalar(
            select(func.max(m.ReferralEvent.at)).where(m.ReferralEvent.action != "route")
        )
        assert after.date() <= date(2024, 12, 31)
