"""The triage queue in Chromium: a chargée searches a person by reference, ticks the whole
page with the "select all" checkbox and takes the orientations found, the filters kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.access.permissions import referral_scope
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.e2e.conftest import shot
from tests.web.world import PASSWORD, fresh_referral

pytestmark = pytest.mark.browser


def test_officer_searches_selects_all_and_takes(page, served):
    base, world = served
    rid = fresh_referral(world)
    with unit_of_work(world.db) as s:
        referral = s.get(m.Referral, rid)
        referral.due_at = world.clock.now() + timedelta(days=2)
        reference = s.scalar(select(m.Salarie.reference).where(m.Salarie.id == referral.salarie_id))
        theirs = set(
            s.scalars(
                select(m.Referral.id).where(
                    m.Referral.salarie_id == referral.salarie_id,
                    m.Referral.state == "new",
                    referral_scope(s.get(m.StaffUser, world.user_ids["officer"])),
                )
            )
        )
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse électronique").fill(world.emails["officer"])
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}/tableau-de-bord")  # every role lands on its home page
    page.get_by_role("link", name="Ma file").click()
    page.wait_for_url(f"{base}/file")
    assert page.locator("nav.summary").get_by_text("Nouvelles").is_visible()
    # JavaScript on: the checkbox replaces the "Tout cocher" link
    assert page.get_by_role("link", name="Tout cocher sur cette page").is_hidden()

    page.get_by_label("Référence (SAL-… ou référence du chantier)").fill(reference.lower())
    page.get_by_role("button", name="Rechercher").click()
    page.wait_for_url(f"**reference={reference.lower()}**")
    rows = page.locator("table tbody tr")
    rows.first.get_by_role("link", name=reference).wait_for()
    assert page.locator(f'a[href="/orientations/{rid}"]').is_visible()
    assert (
        page.locator(f'a[href="/orientations/{rid}"] >> xpath=../..')
        .get_by_text("J-2")
        .is_visible()
    )

    page.get_by_label("Tout cocher sur cette page").check()
    boxes = page.locator('input[name="selection"]')
    assert boxes.count() >= 1
    assert all(boxes.nth(i).is_checked() for i in range(boxes.count()))
    page.locator("fieldset.bulk-actions").get_by_role("button", name="Prendre en charge").click()
    page.wait_for_url("**/file?**reference=**")
    notice = page.locator(".notice.success")
    notice.wait_for()
    n = len(theirs)
    expected = "1 orientation prise en charge." if n == 1 else f"{n} orientations prises en charge."
    assert notice.inner_text().strip() == expected
    assert page.get_by_label("Référence (SAL-… ou référence du chantier)").input_value() == (
        reference.lower()
    )
    assert (
        page.locator(f'a[href="/orientations/{rid}"] >> xpath=../..')
        .get_by_text("En qualification")
        .is_visible()
    )
    shot(page, "file-chargee")
    with unit_of_work(world.db) as s:
        states = {s.get(m.Referral, r).state for r in theirs}
    assert states == {"triaging"}
