"""A santé chargé·e signals a health urgency from the case page: the grid criterion is live."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from engine.domain.lifecycle import OPEN_STATES
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.web.world import csrf_of, login
from web.app import create_app


def _client(world, email: str) -> TestClient:
    client = TestClient(create_app(world.settings, world.db, world.clock))
    assert login(client, email).status_code == 303
    return client


def _flag(client: TestClient, rid: int, version: int):  # type: ignore[no-untyped-def]
    page = client.get(f"/orientations/{rid}")
    token = csrf_of(page.text)
    return client.post(
        f"/orientations/{rid}/actions",
        data={"csrf_token": token, "action": "flag_health_urgency", "version": str(version),
              "note": "signalé par le médecin du travail"},
        follow_redirects=False,
    )  # fmt: skip


def test_santé_officer_flags_an_urgency_and_the_persons_open_referrals_gain_the_points(world_db):
    world = world_db
    with unit_of_work(world.db) as s:
        officer = s.scalars(
            select(m.StaffUser).where(m.StaffUser.role == "officer", m.StaffUser.domain == "sante")
            .order_by(m.StaffUser.id)
        ).first()  # fmt: skip
        ref = s.scalars(
            select(m.Referral)
            .join(m.Salarie, m.Salarie.id == m.Referral.salarie_id)
            .where(m.Referral.owner_user_id == officer.id, m.Referral.state == "new")
            .where(~m.Salarie.health_urgency)
            .order_by(m.Referral.id)
        ).first()
        rid, version, person = ref.id, ref.version, ref.salarie_id
        before = dict(
            s.execute(
                select(m.Referral.id, m.Referral.priority).where(
                    m.Referral.salarie_id == person, m.Referral.state.in_(OPEN_STATES)
                )
            ).all()
        )
        email = officer.email
    client = _client(world, email)
    page = client.get(f"/orientations/{rid}")
    assert "Signaler une urgence santé" in page.text
    answer = _flag(client, rid, version)
    assert answer.status_code == 303
    page = client.get(answer.headers["location"])
    assert "Urgence santé signalée" in page.text  # flash, history and breakdown
    assert "Signaler une urgence santé" not in page.text  # once per person
    with unit_of_work(world.db) as s:
        assert s.get(m.Salarie, person).health_urgency
        for other_id, priority in before.items():
            other = s.get(m.Referral, other_id)
            assert other.priority == priority + 15
            assert [
                "health_urgency",
                "Urgence santé signalée : +15",
                15,
            ] in other.priority_breakdown
            assert sum(line[2] for line in other.priority_breakdown) == other.priority
        event = s.scalars(
            select(m.ReferralEvent).where(
                m.ReferralEvent.referral_id == rid, m.ReferralEvent.action == "flag_health_urgency"
            )
        ).one()
        assert event.from_state == event.to_state == "new"
        assert event.note == "signalé par le médecin du travail"
        version = s.get(m.Referral, rid).version
    again = _flag(client, rid, version)
    assert again.status_code == 422 and "déjà signalée" in again.text


def test_only_santé_and_the_coordination_may_flag(world_db):
    world = world_db
    with unit_of_work(world.db) as s:
        ref = s.get(m.Referral, world.target_id)  # a housing referral of the housing officer
        rid, version = ref.id, ref.version
    housing = _client(world, world.emails["officer"])
    assert "Signaler une urgence santé" not in housing.get(f"/orientations/{rid}").text
    refused = _flag(housing, rid, version)
    assert refused.status_code == 403
    with unit_of_work(world.db) as s:
        assert not s.get(m.Salarie, ref.salarie_id).health_urgency
    coordination = _client(world, world.emails["coordinator"])
    assert _flag(coordination, rid, version).status_code == 303
