"""Intake on a real database: every frein lands once, in the right queue, with its reasons."""

from __future__ import annotations

import threading
from datetime import date

from sqlalchemy import func, select

from engine.domain.clock import Clock
from engine.domain.lifecycle import OPEN_STATES
from engine.intake.run import run_intake
from engine.network.seed import seed_network
from engine.store import models as m
from engine.store.settings import Settings

TODAY = date(2026, 11, 26)


def _settings(db) -> Settings:
    return Settings(database_url=db.url)


def _open_per_frein(session) -> dict[int, int]:
    return dict(
        session.execute(
            select(m.Referral.frein_id, func.count())
            .where(m.Referral.state.in_(OPEN_STATES))
            .group_by(m.Referral.frein_id)
        ).all()
    )


def test_every_open_frein_gets_exactly_one_referral_and_rerun_creates_nothing(db):
    seed_network(db, scale=0.05, seed=7, clock=Clock.on_day(TODAY, running=False))
    report = run_intake(db, _settings(db), clock=Clock.on_day(TODAY, running=False), chunk_size=300)
    with db.sessions() as s:
        freins = s.scalar(select(func.count()).select_from(m.Frein).where(m.Frein.status == "open"))
        per_frein = _open_per_frein(s)
        events = s.scalar(select(func.count()).select_from(m.ReferralEvent))
        assert report.routed == freins == len(per_frein)
        assert set(per_frein.values()) == {1}
        assert events == freins
        # Every referral explains itself and carries its points breakdown.
        empty = s.scalar(
            select(func.count())
            .select_from(m.Referral)
            .where((m.Referral.explanation == "") | (m.Referral.reasons.is_(None)))
        )
        assert empty == 0
        ref = s.scalars(select(m.Referral).where(m.Referral.owner_kind == "officer").limit(1)).one()
        assert sum(line[2] for line in ref.priority_breakdown) == ref.priority
        assert ref.due_at is not None
        # Owners hear about their new items through the outbox (delivery is another job).
        owners = set(
            s.scalars(select(m.Referral.owner_user_id).where(m.Referral.state == "new")).all()
        )
        notes = s.scalars(
            select(m.OutboxMessage).where(m.OutboxMessage.kind == "new_referrals")
        ).all()
        assert {n.recipient_user_id for n in notes} == owners
        new_count = s.scalar(
            select(func.count()).select_from(m.Referral).where(m.Referral.state == "new")
        )
        assert sum(n.context["count"] for n in notes) == new_count
    again = run_intake(db, _settings(db), clock=Clock.on_day(TODAY, running=False))
    assert again.routed == 0
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.Referral)) == freins


def test_routing_follows_the_network(db):
    seed_network(db, scale=0.1, seed=3, clock=Clock.on_day(TODAY, running=False))
    run_intake(db, _settings(db), clock=Clock.on_day(TODAY, running=False))
    with db.sessions() as s:
        isere = s.scalar(select(m.Territory.id).where(m.Territory.code == "isere"))
        kinds = set(
            s.scalars(
                select(m.Referral.owner_kind).where(
                    m.Referral.territory_id == isere, m.Referral.domain == "emploi"
                )
            ).all()
        )
        assert kinds and kinds <= {"coordinator", "partner"}  # Isère has no emploi officer
        outside = set(
            s.scalars(select(m.Referral.owner_kind).where(m.Referral.territory_id.is_(None))).all()
        )
        assert outside <= {"national", "partner"} and "national" in outside
        national_user = s.scalar(select(m.StaffUser.id).where(m.StaffUser.national_queue))
        owners = set(
            s.scalars(
                select(m.Referral.owner_user_id).where(
                    m.Referral.territory_id.is_(None), m.Referral.owner_kind == "national"
                )
            ).all()
        )
        assert owners == {national_user}
        # Officers only ever own referrals of their own territory and domain.
        bad = s.scalar(
            select(func.count())
            .select_from(m.Referral)
            .join(m.StaffUser, m.StaffUser.id == m.Referral.owner_user_id)
            .where(
                m.Referral.owner_kind == "officer",
                (m.StaffUser.territory_id != m.Referral.territory_id)
                | (m.StaffUser.domain != m.Referral.domain),
            )
        )
        assert bad == 0
        # Stickiness: one officer per person and domain.
        sticky = s.execute(
            select(
                m.Referral.salarie_id,
                m.Referral.domain,
                func.count(func.distinct(m.Referral.owner_user_id)),
            )
            .where(m.Referral.owner_kind == "officer")
            .group_by(m.Referral.salarie_id, m.Referral.domain)
        ).all()
        assert all(n == 1 for _, _, n in sticky)
        # Direct partner referrals are sent (state referred) and the partner is told.
        direct = s.scalar(
            select(func.count()).select_from(m.Referral).where(m.Referral.owner_kind == "partner")
        )
        if direct:
            assert (
                s.scalar(
                    select(func.count())
                    .select_from(m.OutboxMessage)
                    .where(m.OutboxMessage.kind == "partner_orientation")
                )
                >= direct
            )


def test_two_concurrent_runs_never_open_two_referrals_for_one_frein(pg_db):
    seed_network(pg_db, scale=0.1, seed=11, clock=Clock.on_day(TODAY, running=False))
    errors: list[BaseException] = []
    reports = []

    def run() -> None:
        try:
            reports.append(
                run_intake(
                    pg_db,
                    Settings(database_url=pg_db.url),
                    clock=Clock.on_day(TODAY, running=False),
                    chunk_size=200,
                )
            )
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with pg_db.sessions() as s:
        per_frein = _open_per_frein(s)
        freins = s.scalar(select(func.count()).select_from(m.Frein))
    assert set(per_frein.values()) == {1}
    assert len(per_frein) == freins
    assert sum(r.routed for r in reports) == freins


def test_a_domain_override_is_the_freins_domain_for_scope_stickiness_and_case_page(db):
    """`[routage.domaines]` as the rules file invites: a childcare frein handled by housing.

    The person is already followed in housing; their new childcare frein (stored with the
    taxonomy's "transverse" domain, as any import would) goes to the same housing officer,
    becomes a housing frein, and that officer sees it on the case page."""
    from importlib import resources

    from engine.referrals.case_file import read_case_file
    from matching.rules import parse_rules

    # The packaged rules, plus one override.
    packaged = resources.files("matching").joinpath("data/rules.toml").read_text("utf-8")
    toml = packaged.replace(
        "[routage.domaines]\n", '[routage.domaines]\n"famille--garde-denfants" = "logement"\n'
    )
    rules = parse_rules(toml)
    assert rules.domain_of("famille--garde-denfants") == "logement"
    clock = Clock.on_day(TODAY, running=False)
    seed_network(db, scale=0.05, seed=7, clock=clock)
    run_intake(db, _settings(db), clock=clock, rules=rules)
    with db.sessions() as s:
        # The most loaded housing officer of a territory that has several: without
        # stickiness the new frein would go to a less loaded colleague.
        load = dict(
            s.execute(
                select(m.Referral.owner_user_id, func.count())
                .where(m.Referral.state.in_(OPEN_STATES), m.Referral.domain == "logement")
                .group_by(m.Referral.owner_user_id)
            ).all()
        )
        officers = s.scalars(
            select(m.StaffUser).where(
                m.StaffUser.role == "officer", m.StaffUser.domain == "logement"
            )
        ).all()
        by_territory: dict[int, list[m.StaffUser]] = {}
        for o in officers:
            by_territory.setdefault(o.territory_id, []).append(o)
        busiest = max(
            (max(team, key=lambda o: load.get(o.id, 0)) for team in by_territory.values()
             if len(team) > 1 and len({load.get(o.id, 0) for o in team}) > 1),
            key=lambda o: load.get(o.id, 0),
        )  # fmt: skip
        first = s.scalars(
            select(m.Referral)
            .where(m.Referral.owner_user_id == busiest.id, m.Referral.state == "new")
            .where(
                ~select(m.Frein.id)
                .where(m.Frein.salarie_id == m.Referral.salarie_id)
                .where(m.Frein.thematique == "famille--garde-denfants")
                .exists()
            )
            .order_by(m.Referral.id)
        ).first()
        person, owner = first.salarie_id, first.owner_user_id
        s.add(m.Frein(salarie_id=person, thematique="famille--garde-denfants", domain="transverse",
                      status="open", identified_at=TODAY, created_at=clock.now()))  # fmt: skip
        s.commit()
    report = run_intake(db, _settings(db), clock=clock, rules=rules)
    assert report.routed == 1
    with db.sessions() as s:
        frein = s.scalars(select(m.Frein).where(m.Frein.thematique == "famille--garde-denfants",
                                                m.Frein.salarie_id == person)).one()  # fmt: skip
        ref = s.scalars(select(m.Referral).where(m.Referral.frein_id == frein.id)).one()
        assert (ref.domain, frein.domain) == ("logement", "logement")
        assert ref.owner_user_id == owner, "sticky: the officer already following this person"
        officer = s.get(m.StaffUser, owner)
        case = read_case_file(s, officer, ref.id, now=clock.now())
        assert frein.id in {f.id for f in case.freins}
