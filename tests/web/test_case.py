"""The case view: what each role sees, the access log, actions, stale edits and CSRF."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.store import models as m
from engine.store.db import unit_of_work
from tests.web.world import csrf_of, direct_offer_id, fresh_referral, login
from web.app import create_app


def _access_rows(world, user_key):
    with unit_of_work(world.db) as s:
        return s.execute(
            select(m.AccessLog.purpose, m.AccessLog.with_identity)
            .where(m.AccessLog.user_id == world.user_ids[user_key])
            .order_by(m.AccessLog.id)
        ).all()


def test_every_read_is_logged_and_identity_only_for_allowed_roles(clients, world):
    before = len(_access_rows(world, "officer"))
    page = clients["officer"].get(f"/orientations/{world.target_id}")
    clients["officer"].get(f"/orientations/{world.target_id}")
    rows = _access_rows(world, "officer")
    assert len(rows) == before + 2
    assert rows[-1] == ("consultation", True)
    assert world.identity_last_name in page.text
    assert "Calcul des points" in page.text and "Pourquoi cette orientation" in page.text
    for role in ("admin", "partner"):
        other = clients[role].get(f"/orientations/{world.target_id}")
        assert other.status_code == 200
        assert world.identity_last_name not in other.text
        assert _access_rows(world, role)[-1] == ("consultation", False)
    partner_page = clients["partner"].get(f"/orientations/{world.target_id}").text
    assert "Calcul des points" not in partner_page and "Situation" not in partner_page
    assert "Accepter l'orientation" in html.unescape(partner_page)


def test_out_of_scope_read_writes_no_access_log(clients, world):
    before = len(_access_rows(world, "cip_other"))
    assert clients["cip_other"].get(f"/orientations/{world.target_id}").status_code == 404
    assert len(_access_rows(world, "cip_other")) == before


def test_names_never_in_queue_or_api(clients, world):
    assert world.identity_last_name not in clients["officer"].get("/file?etat=all").text
    api = clients["officer"].get(f"/api/v1/referrals/{world.target_id}").text
    assert world.identity_last_name not in api


def test_take_then_refer_to_a_suggested_partner(clients, world):
    rid = fresh_referral(world)
    client = clients["officer"]
    page = client.get(f"/orientations/{rid}")
    token = csrf_of(page.text)
    took = client.post(f"/orientations/{rid}/actions",
                       data={"csrf_token": token, "action": "take", "version": "1"},
                       follow_redirects=False)  # fmt: skip
    assert took.status_code == 303
    page = client.get(took.headers["location"])
    assert "Action enregistrée : Prendre en charge" in page.text
    with unit_of_work(world.db) as s:
        ref = s.get(m.Referral, rid)
        assert ref.state == "triaging" and ref.owner_user_id == world.user_ids["officer"]
        version = ref.version
    offer_id = direct_offer_id(world)
    referred = client.post(
        f"/orientations/{rid}/actions",
        data={"csrf_token": token, "action": "refer", "version": str(version),
              "offer_id": str(offer_id), "note": "rendez-vous pris"},
        follow_redirects=False,
    )  # fmt: skip
    assert referred.status_code == 303
    with unit_of_work(world.db) as s:
        ref = s.get(m.Referral, rid)
        assert ref.state == "referred" and ref.offer_id == offer_id
        events = s.scalars(select(m.ReferralEvent.action).where(m.ReferralEvent.referral_id == rid)
                           .order_by(m.ReferralEvent.id)).all()  # fmt: skip
        assert events == ["route", "take", "refer"]


def test_refuse_other_without_note_keeps_form_and_changes_nothing(clients, world):
    rid = fresh_referral(world)
    client = clients["officer"]
    token = csrf_of(client.get(f"/orientations/{rid}").text)
    response = client.post(f"/orientations/{rid}/actions",
                           data={"csrf_token": token, "action": "refuse", "reason": "other",
                                 "note": "  ", "version": "1", "confirm": "1"})  # fmt: skip
    assert response.status_code == 422
    assert "le motif « Autre » demande une précision" in response.text
    with unit_of_work(world.db) as s:
        assert s.get(m.Referral, rid).state == "new"


def test_post_without_or_with_wrong_csrf_changes_nothing(clients, world):
    rid = fresh_referral(world)
    client = clients["officer"]
    for data in ({"action": "take", "version": "1"},
                 {"action": "take", "version": "1", "csrf_token": "faux"}):  # fmt: skip
        response = client.post(f"/orientations/{rid}/actions", data=data)
        assert response.status_code == 403
        assert "Rien n'a été modifié" in html.unescape(response.text)
    with unit_of_work(world.db) as s:
        assert s.get(m.Referral, rid).version == 1
    api = client.post(f"/api/v1/referrals/{rid}/transitions", json={"action": "take"})
    assert api.status_code == 403


def test_get_never_changes_state(clients, world):
    rid = fresh_referral(world)
    response = clients["officer"].get(f"/orientations/{rid}/actions")
    assert response.status_code == 405
    with unit_of_work(world.db) as s:
        assert s.get(m.Referral, rid).version == 1


def test_api_transition_with_csrf_header(clients, world):
    rid = fresh_referral(world)
    client = clients["officer"]
    token = client.get("/api/v1/me").json()["csrf_token"]
    ok = client.post(f"/api/v1/referrals/{rid}/transitions",
                     json={"action": "take", "expected_version": 1},
                     headers={"X-CSRF-Token": token})  # fmt: skip
    assert ok.status_code == 200 and ok.json()["state"] == "triaging"
    stale = client.post(f"/api/v1/referrals/{rid}/transitions",
                        json={"action": "cancel", "expected_version": 1},
                        headers={"X-CSRF-Token": token})  # fmt: skip
    assert stale.status_code == 409 and stale.json()["current_version"] == 2


def test_stale_edit_keeps_the_typed_note(world_db):
    """Two chargé·es open the same case; the second one's refusal arrives too late."""
    world = world_db
    app = create_app(world.settings, world.db, world.clock)
    first, second = TestClient(app), TestClient(app)
    login(first, world.emails["officer"])
    login(second, world.emails["coordinator"])
    rid = fresh_referral(world)
    page_a = first.get(f"/orientations/{rid}").text
    page_b = second.get(f"/orientations/{rid}").text
    assert first.post(f"/orientations/{rid}/actions",
                      data={"csrf_token": csrf_of(page_a), "action": "take", "version": "1"},
                      follow_redirects=False).status_code == 303  # fmt: skip
    note = "Personne rencontrée le 3 : ne souhaite pas cette orientation"
    late = second.post(f"/orientations/{rid}/actions",
                       data={"csrf_token": csrf_of(page_b), "action": "refuse",
                             "reason": "declined_by_person", "note": note, "version": "1",
                             "confirm": "1"})  # fmt: skip
    assert late.status_code == 409
    assert "modifiée par quelqu'un d'autre" in html.unescape(late.text)
    assert note in html.unescape(late.text)  # nothing the user typed is lost
    with unit_of_work(world.db) as s:
        ref = s.get(m.Referral, rid)
        assert ref.state == "triaging" and ref.refusal_reason is None
        assert s.scalar(select(func.count()).select_from(m.ReferralEvent)
                        .where(m.ReferralEvent.referral_id == rid)) == 2  # fmt: skip


def test_an_officer_sees_only_the_freins_of_their_domain(clients, world):
    """Need to know: the housing officer does not read the person's health freins."""
    from sqlalchemy import select

    from engine.store import models as m
    from partners.taxonomy import label_of

    with world.db.sessions() as s:
        ref = s.get(m.Referral, world.target_id)
        freins = s.scalars(select(m.Frein).where(m.Frein.salarie_id == ref.salarie_id)).all()
        if not any(f.thematique == "sante--sante-mentale" for f in freins):
            s.add(m.Frein(salarie_id=ref.salarie_id, thematique="sante--sante-mentale", domain="sante",
                          status="open", identified_at=ref.created_at.date(), created_at=ref.created_at))  # fmt: skip
            s.commit()
    officer = html.unescape(clients["officer"].get(f"/orientations/{world.target_id}").text)
    coordinator = html.unescape(clients["coordinator"].get(f"/orientations/{world.target_id}").text)
    assert label_of("sante--sante-mentale") in coordinator
    assert label_of("sante--sante-mentale") not in officer
    assert re.search(r"\d+ autres? freins? suivis? par d'autres domaines", officer)
