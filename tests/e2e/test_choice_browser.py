"""The person's choices in Chromium: a CIP/ESP opens a waitlisted person's orientation, follows
"Choix de la personne", records two pools in order and sees them, in that order, on the
orientation's page."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.store import models as m
from tests.e2e.conftest import shot
from tests.integration.test_preferences import _family, _pools, _waiting
from tests.web.world import PASSWORD

pytestmark = pytest.mark.browser


def _login(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}/tableau-de-bord")


def test_a_cip_records_two_pools_in_order_and_sees_them_on_the_case_page(page, served):  # type: ignore[no-untyped-def]
    base, world = served
    _family(world.db)
    rid = _waiting(world)
    pools = _pools(world)
    with world.db.sessions() as s:
        chantier = s.get(m.Referral, rid).chantier_id
        email = s.scalar(select(m.StaffUser.email).where(
            m.StaffUser.role == "cip", m.StaffUser.chantier_id == chantier,
            m.StaffUser.password_hash.is_not(None)).order_by(m.StaffUser.id))  # fmt: skip
    _login(page, base, email)
    page.goto(f"{base}/orientations/{rid}")
    block = page.locator("#bloc-choix")
    block.get_by_text("Toutes les places possibles").wait_for()  # loaded into the case page
    block.get_by_role("link", name="Enregistrer ou modifier les choix de la personne").click()
    page.wait_for_url(f"{base}/orientations/{rid}/choix")
    page.get_by_label("Choix 1", exact=True).select_option(f"pool:{pools['paris'].id}")
    page.get_by_label("Choix 2", exact=True).select_option(f"pool:{pools['shared'].id}")
    page.get_by_role("button", name="Enregistrer ces choix dans cet ordre").click()
    page.wait_for_url(f"{base}/orientations/{rid}#choix")
    page.get_by_text("Choix de la personne enregistrés : 2 choix, dans l'ordre.").wait_for()
    items = page.locator("#bloc-choix #choix-resume li")
    items.nth(1).wait_for()
    assert items.count() == 2
    assert items.nth(0).inner_text() == "Bailleur d'essai (Paris)"
    assert items.nth(1).inner_text() == "Bailleur d'essai (Paris, Seine-Saint-Denis)"
    shot(page, "choix-orientation")
    page.goto(f"{base}/orientations/{rid}/choix")
    listed = page.locator("#choix-actuels li")
    assert [listed.nth(i).inner_text() for i in range(listed.count())] == [
        "Bailleur d'essai (Paris)",
        "Bailleur d'essai (Paris, Seine-Saint-Denis)",
    ]
    assert page.get_by_label("Choix 1", exact=True).input_value() == f"pool:{pools['paris'].id}"
    shot(page, "choix")
    with world.db.sessions() as s:
        row = s.scalar(select(m.AllocationPreference).where(
            m.AllocationPreference.referral_id == rid))  # fmt: skip
        assert row.choices == [{"pool": pools["paris"].id}, {"pool": pools["shared"].id}]
        assert s.get(m.Referral, rid).state == "waitlisted"
