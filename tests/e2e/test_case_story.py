"""In Chromium: the CIP/ESP writes a note on a case, the chargé·e reads the history in words."""

from __future__ import annotations

import pytest

from engine.referrals.actions import Actor, transition
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.e2e.conftest import shot
from tests.web.world import PASSWORD

pytestmark = pytest.mark.browser


def _login(page, base: str, email: str) -> None:
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}/tableau-de-bord")  # every role lands on its home page


def test_cip_writes_a_note_and_the_officer_reads_the_history(page, served):
    base, world = served
    rid = world.target_id
    with unit_of_work(world.db) as s:  # the partner accepted: one more event in the history
        contact = s.get(m.StaffUser, world.user_ids["partner"])
        transition(s, world.settings, rid, "partner_accept", actor=Actor.of(contact),
                   clock=world.clock, note="Premier rendez-vous le 2 décembre")  # fmt: skip
    body = "La personne préfère un rendez-vous le matin ; elle viendra accompagnée."
    _login(page, base, world.emails["cip"])
    page.goto(f"{base}/orientations/{rid}")
    page.get_by_label("Note (4 000 caractères au plus)").fill(body)
    page.get_by_role("button", name="Ajouter la note").click()
    page.get_by_text("Note ajoutée.").wait_for()
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url("**/connexion**")

    _login(page, base, world.emails["officer"])
    page.goto(f"{base}/orientations/{rid}")
    history = page.locator("ol.timeline")
    for words in ("Orientation automatique à l'arrivée du frein", "Prise en charge",
                  "Orientée vers", "Acceptée par le partenaire"):  # fmt: skip
        assert history.get_by_text(words).first.is_visible(), words
    text = history.inner_text()
    assert "@" not in text and "système" not in text and "take" not in text
    assert page.locator("ol.notes").get_by_text(body).is_visible()
    assert "Version" not in page.locator("main").inner_text()
    page.locator("#historique").scroll_into_view_if_needed()
    shot(page, "orientation-historique")
