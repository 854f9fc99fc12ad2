"""End-to-end scenarios in Chromium: triage, allocation review, partner answer, CSRF."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.access.tokens import make_partner_token
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.e2e.conftest import shot
from tests.web.world import PASSWORD, fresh_referral, waitlist_some

pytestmark = pytest.mark.browser


def _login(page, base: str, email: str) -> None:
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}/tableau-de-bord")  # every role lands on its home page
    page.get_by_role("link", name="Ma file").click()
    page.wait_for_url(f"{base}/file")


def test_officer_filters_takes_and_refers(page, served):
    base, world = served
    rid = fresh_referral(world)
    _login(page, base, world.emails["officer"])
    page.get_by_label("Trier par").select_option("due")
    page.get_by_label("Programme").select_option("")
    page.get_by_role("button", name="Appliquer les filtres").click()
    page.wait_for_url("**tri=due**")
    shot(page, "file-chargee")
    page.goto(f"{base}/orientations/{rid}")
    page.keyboard.press("Tab")  # the skip link is the first stop
    assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
    page.locator("#form-take").get_by_role("button", name="Prendre en charge").click()
    page.get_by_text("Action enregistrée : Prendre en charge").wait_for()
    form = page.locator("#form-refer")
    form.get_by_label("Offre du partenaire").select_option(index=0)
    form.get_by_label("Note (facultative)").fill("Premier contact fait par téléphone")
    form.get_by_role("button", name="Orienter vers un partenaire").click()
    page.get_by_text("Action enregistrée : Orienter vers un partenaire").wait_for()
    shot(page, "orientation-orientee")
    with unit_of_work(world.db) as s:
        ref = s.get(m.Referral, rid)
        assert ref.state == "referred" and ref.offer_id is not None


def test_coordinator_validates_a_proposal(page, served):
    allocation = pytest.importorskip("engine.allocation.run")
    base, world = served
    waitlist_some(world, 10)
    report = allocation.run_allocation(world.db, world.settings, clock=world.clock)
    with unit_of_work(world.db) as s:
        paris = s.scalar(select(m.Territory.id).where(m.Territory.code == "paris"))
        pid = s.scalar(
            select(m.AllocationProposal.id)
            .join(m.Referral, m.Referral.id == m.AllocationProposal.referral_id)
            .where(m.AllocationProposal.run_id == report.run_id, m.Referral.territory_id == paris)
            .order_by(m.AllocationProposal.id)
        )  # fmt: skip
    if pid is None:
        pytest.skip("la simulation n'a proposé aucune place à Paris")
    _login(page, base, world.emails["coordinator"])
    page.goto(f"{base}/attributions")
    shot(page, "attributions")
    page.locator(f"#proposition-{pid}").get_by_role("button", name="Valider la place").click()
    page.get_by_text("Proposition validée").wait_for()
    with unit_of_work(world.db) as s:
        assert s.get(m.AllocationProposal, pid).status == "validated"


def test_partner_answers_from_signed_link(page, served):
    base, world = served
    with unit_of_work(world.db) as s:
        state = s.get(m.Referral, world.target_id).state
    assert state == "referred"
    token = make_partner_token(world.settings.secret_key.get_secret_value(),
                               referral_id=world.target_id, partner_id=world.partner_id,
                               now=world.clock.now())  # fmt: skip
    page.goto(f"{base}/partenaire/reponse/{token}")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Orientation SAL-")
    assert world.identity_last_name not in page.content()
    shot(page, "reponse-partenaire")
    page.get_by_role("button", name="Accepter l'orientation").click()
    page.get_by_text("l'orientation est acceptée").wait_for()
    with unit_of_work(world.db) as s:
        assert s.get(m.Referral, world.target_id).state == "accepted"


def test_cross_origin_form_is_rejected(page, served):
    """A page on another origin posts a form into Aiguillage with the victim's cookie."""
    base, world = served
    rid = fresh_referral(world)
    _login(page, base, world.emails["officer"])
    evil = (
        "<html lang='fr'><body><form id='f' method='post' "
        f"action='{base}/orientations/{rid}/actions'>"
        "<input name='action' value='take'><input name='version' value='1'>"
        "<input name='csrf_token' value='devine'></form>"
        "<script>document.getElementById('f').submit()</script></body></html>"
    )
    page.route("http://evil.localhost/", lambda route: route.fulfill(
        status=200, content_type="text/html", body=evil))  # fmt: skip
    page.goto("http://evil.localhost/")
    page.wait_for_load_state("networkidle")
    shot(page, "csrf-rejete")
    with unit_of_work(world.db) as s:
        ref = s.get(m.Referral, rid)
        assert (ref.state, ref.version) == ("new", 1)
