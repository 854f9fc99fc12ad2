"""The person's pathway page: who reads it (logged), who records on it, bad input refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.store import models as m
from engine.store.db import unit_of_work
from tests.web.world import csrf_of, login
from web.app import create_app


def _person(world) -> int:  # type: ignore[no-untyped-def]
    with unit_of_work(world.db) as s:
        return s.get(m.Referral, world.target_id).salarie_id


def _client(world, key: str) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(create_app(world.settings, world.db, world.clock))
    assert login(client, world.emails[key]).status_code == 303
    return client


def test_the_cip_reads_the_pathway_and_the_read_is_logged(world_db):
    world, pid = world_db, _person(world_db)
    client = _client(world, "cip")
    with unit_of_work(world.db) as s:
        before = s.scalar(select(func.count()).select_from(m.AccessLog))
    page = client.get(f"/salaries/{pid}")
    assert page.status_code == 200
    assert world.reference in page.text and "Sortie du programme" in page.text
    with unit_of_work(world.db) as s:
        rows = s.scalars(select(m.AccessLog).order_by(m.AccessLog.id.desc())).all()
        assert len(rows) == before + 1 and rows[0].purpose == "parcours"
        assert rows[0].salarie_id == pid


@pytest.mark.parametrize("key", ["cip_other", "partner", "officer_other_territory"])
def test_out_of_scope_readers_get_a_404(world_db, key):
    world, pid = world_db, _person(world_db)
    assert _client(world, key).get(f"/salaries/{pid}").status_code == 404


def test_an_officer_in_scope_reads_without_the_forms(world_db):
    world, pid = world_db, _person(world_db)
    page = _client(world, "officer").get(f"/salaries/{pid}")
    assert page.status_code == 200 and "Sortie du programme" not in page.text
    token = csrf_of(page.text)
    refused = _client(world, "officer").post(
        f"/salaries/{pid}/parcours",
        data={"csrf_token": token, "fait": "health", "kind": "rights_opened",
              "on": world.clock.today().isoformat()},
    )  # fmt: skip
    assert refused.status_code in (403, 404)


def test_the_cip_records_a_housing_change_and_a_bad_date_is_refused_in_french(world_db):
    world, pid = world_db, _person(world_db)
    client = _client(world, "cip")
    page = client.get(f"/salaries/{pid}")
    token = csrf_of(page.text)
    with unit_of_work(world.db) as s:
        current = s.get(m.Salarie, pid).housing
    target = "housed" if current != "housed" else "emergency_shelter"
    future = (world.clock.today() + timedelta(days=3)).isoformat()
    for bad in (
        {"on": future},
        {"on": "31/02/2026"},
        {"on": "2026-01-01\x00"},
        {"after": "chateau"},
    ):
        data = {"csrf_token": token, "fait": "housing", "after": target,
                "on": world.clock.today().isoformat(), **bad}  # fmt: skip
        answer = client.post(f"/salaries/{pid}/parcours", data=data)
        assert 400 <= answer.status_code < 500, bad
        assert "Saisie impossible" in answer.text or "Saisie refusée" in answer.text, bad
    with unit_of_work(world.db) as s:
        assert not s.scalar(select(func.count()).select_from(m.HousingChange))
    done = client.post(
        f"/salaries/{pid}/parcours",
        data={"csrf_token": token, "fait": "housing", "after": target,
              "on": world.clock.today().isoformat()},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303
    page = client.get(f"/salaries/{pid}")
    assert "Changement de logement enregistré" in page.text
    with unit_of_work(world.db) as s:
        assert s.get(m.Salarie, pid).housing == target


def test_the_exit_form_cancels_open_referrals_and_ids_out_of_range_are_404(world_db):
    world, pid = world_db, _person(world_db)
    client = _client(world, "cip")
    token = csrf_of(client.get(f"/salaries/{pid}").text)
    done = client.post(
        f"/salaries/{pid}/parcours",
        data={"csrf_token": token, "fait": "exit", "category": "sortie_positive",
              "on": world.clock.today().isoformat()},
        follow_redirects=False,
    )  # fmt: skip
    assert done.status_code == 303
    with unit_of_work(world.db) as s:
        assert s.get(m.Referral, world.target_id).state == "cancelled"
    for path in (
        "/salaries/0",
        "/salaries/2147483648",
        "/salaries/abc",
        f"/salaries/{pid}/suivi/13",
    ):
        assert client.get(path).status_code in (404, 422), path
    missing_csrf = client.post(f"/salaries/{pid}/parcours", data={"fait": "exit"})
    assert missing_csrf.status_code in (400, 403)
