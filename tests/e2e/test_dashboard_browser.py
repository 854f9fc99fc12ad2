"""The home page of each role in Chromium: log in, land on "Tableau de bord", follow one figure
to the queue filtered on exactly those orientations (screenshots in tests/artifacts/)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.store import models as m
from engine.store.db import unit_of_work
from tests.e2e.conftest import shot
from tests.web.world import PASSWORD, fresh_referral

pytestmark = pytest.mark.browser


def _land(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}/tableau-de-bord")
    nav = page.get_by_role("navigation", name="Navigation principale")
    assert nav.get_by_role("link").first.inner_text() == "Tableau de bord"
    assert nav.get_by_role("link", name="Tableau de bord").get_attribute("aria-current") == "page"


def _queue_count(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator("table caption").first.inner_text().strip()


@pytest.fixture(scope="module")
def late(served) -> int:  # type: ignore[no-untyped-def]
    """A Paris logement orientation of the chargée, past its triage deadline."""
    _, world = served
    rid = fresh_referral(world)
    with unit_of_work(world.db) as s:
        referral = s.get(m.Referral, rid)
        referral.owner_user_id = world.user_ids["officer"]
        referral.due_at = world.clock.now() - timedelta(hours=5)
    return rid


def test_officer_lands_on_their_load_and_opens_what_is_late(page, served, late):
    base, world = served
    _land(page, base, world.emails["officer"])
    assert page.get_by_role("heading", level=1).inner_text() == "Tableau de bord"
    assert page.locator("#charge .tile-value").inner_text().count("/") == 1
    figure = page.locator("#en-retard .tile-value a")
    n = int(figure.inner_text())
    assert n >= 1
    assert page.locator(f'#liste-retard a[href="/orientations/{late}"]').is_visible()
    chart = page.locator("figure.chart svg[role=img]")
    assert chart.count() == 1 and "par état" in chart.get_attribute("aria-label")
    shot(page, "dashboard_officer")
    figure.click()
    page.wait_for_url("**/file?**retard=1**")
    assert "moi=1" in page.url
    assert _queue_count(page) == (f"{n} orientation" if n == 1 else f"{n} orientations")
    assert page.locator(f'a[href="/orientations/{late}"]').is_visible()


def test_coordinator_lands_on_the_territory_and_opens_a_domain_queue(page, served, late):
    base, world = served
    _land(page, base, world.emails["coordinator"])
    assert page.locator("#perimetre").inner_text() == "Convergence Paris"
    for chart in ("titre-charge", "titre-places"):
        section = page.locator(f"section[aria-labelledby={chart}]")
        assert section.locator("svg[role=img]").count() == 1
        assert section.locator("table tbody tr").count() >= 1  # each chart has its table
    cell = page.locator("#file-logement td:nth-of-type(1) a")  # logement, "Nouvelles"
    n = int(cell.inner_text())
    shot(page, "dashboard_coordinator")
    cell.click()
    page.wait_for_url("**/file?**domaine=logement**")
    assert page.get_by_label("Domaine").input_value() == "logement"
    assert page.get_by_label("Territoire").input_value() == "paris"
    assert page.get_by_label("État", exact=True).input_value() == "new"
    assert f"{n}" in _queue_count(page).replace("\u202f", "")


def test_national_team_compares_territories_and_opens_one(page, served, late):
    base, world = served
    _land(page, base, world.emails["admin"])
    assert page.get_by_role("heading", level=1).inner_text() == "Tableau de bord national"
    assert page.get_by_role("link", name="Impact des programmes").is_visible()
    assert page.get_by_role("link", name="Pilotage du réseau").is_visible()
    row = page.locator("#territoire-paris")
    late_link = row.locator("td a.overdue")
    n = int(late_link.inner_text())
    assert n >= 1
    shot(page, "dashboard_national")
    late_link.click()
    page.wait_for_url("**/file?**territoire=paris**")
    assert page.get_by_label("Territoire").input_value() == "paris"
    assert page.locator(f'a[href="/orientations/{late}"]').is_visible()
    page.go_back()
    page.locator("#territoire-paris th a").click()
    page.wait_for_url("**/tableau-de-bord?territoire=paris")
    assert page.locator("#perimetre").inner_text() == "Convergence Paris"


def test_cip_lands_on_the_chantier_people(page, served, late):
    base, world = served
    _land(page, base, world.emails["cip"])
    people = page.locator("#tableau-salaries tbody tr")
    assert people.count() >= 1
    assert page.locator(f"text={world.reference}").first.is_visible()
    shot(page, "dashboard_cip")
    page.get_by_role("link", name="Voir les orientations du chantier").click()
    page.wait_for_url("**/file?**")
    assert page.get_by_role("heading", level=1).inner_text() == "Ma file"
    assert page.locator(f'a[href="/orientations/{world.target_id}"]').is_visible()


def test_partner_lands_on_what_waits_for_its_answer(page, served, late):
    base, world = served
    _land(page, base, world.emails["partner"])
    figure = page.locator("#attente-reponse .tile-value a")
    n = int(figure.inner_text())
    assert n >= 1
    assert page.locator(f'#liste-attente a[href="/orientations/{world.target_id}"]').is_visible()
    shot(page, "dashboard_partner")
    figure.click()
    page.wait_for_url("**/file?**etat=referred**")
    assert _queue_count(page) == (f"{n} orientation" if n == 1 else f"{n} orientations")
