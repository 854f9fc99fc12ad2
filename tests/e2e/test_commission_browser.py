"""A commission in Chromium: the coordination simulates the run (the commission pool's units
would go to a commission), the run lists rang 1..3 per flat, the coordinator opens the
commission from the Attributions page, records the candidate's refusal at rang 1 and sees
rang 2 become the rank under examination, then records the attribution."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.allocation.run import run_allocation
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.e2e.conftest import shot
from tests.support.situations import NoSituation, waitlisted_for
from tests.web.world import PASSWORD

pytestmark = pytest.mark.browser


def _login(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}/tableau-de-bord")


def _flats_and_candidates(world) -> int:  # type: ignore[no-untyped-def]
    """Two flats in the commission pool, and the people of Paris and Seine-Saint-Denis who
    wait for one; returns the pool id."""
    with unit_of_work(world.db) as s:
        pool = s.scalar(select(m.SlotPool).where(m.SlotPool.commission.is_(True)))
        have = s.scalar(select(func.count()).where(m.SlotUnit.pool_id == pool.id))
        s.add_all(m.SlotUnit(pool_id=pool.id, unit_no=have + i) for i in range(1, 3 - have))
        pool.capacity, pool_id = 2, pool.id
    for territory in ("paris", "seine-saint-denis"):
        while True:
            try:
                waitlisted_for(world, pool_id, territory=territory)
            except NoSituation:
                break
    return pool_id


def _unit_one(world, run_id: int, pool_id: int) -> list[tuple[int, str, str]]:  # type: ignore[no-untyped-def]
    """(rank, status, reference) of the first flat's list."""
    P = m.AllocationProposal
    with world.db.sessions() as s:
        return [
            (p.rank, p.status, ref)
            for p, ref in s.execute(
                select(P, m.Salarie.reference)
                .join(m.Referral, m.Referral.id == P.referral_id)
                .join(m.Salarie, m.Salarie.id == m.Referral.salarie_id)
                .where(P.run_id == run_id, P.pool_id == pool_id, P.unit_no == 1)
                .order_by(P.rank)
            ).all()
        ]


def test_coordinator_runs_a_commission_refusal_then_attribution(page, served):  # type: ignore[no-untyped-def]
    base, world = served
    pool_id = _flats_and_candidates(world)
    _login(page, base, world.emails["coordinator"])
    page.goto(f"{base}/attributions")
    page.get_by_role("button", name="Simuler une attribution (rien n'est enregistré)").click()
    simulation = page.locator("section.notice", has_text="Résultat de la simulation")
    simulation.get_by_text("iraient en commission").wait_for()
    # The weekly run (the same use case the schedule and `aiguillage allocate` call).
    run_id = run_allocation(world.db, world.settings, clock=world.clock).run_id
    listed = _unit_one(world, run_id, pool_id)
    assert [(r, st) for r, st, _ in listed][:2] == [(1, "proposed"), (2, "shortlisted")]
    page.goto(f"{base}/attributions")
    page.locator("#commissions").get_by_role("link", name="Ouvrir la commission").first.click()
    page.wait_for_url(f"{base}/attributions/commissions/{run_id}/{pool_id}")
    current = page.locator("#rang-en-cours-1")
    assert current.get_by_role("heading").inner_text().startswith("Rang 1 en cours d'examen")
    assert listed[0][2] in current.inner_text()
    current.get_by_text("Refus du candidat…").click()
    current.get_by_label("Motif du refus du candidat").select_option("declined_by_person")
    current.get_by_role("button", name="Enregistrer le refus du candidat").click()
    page.get_by_text("Passage automatique au rang 2").wait_for()
    current = page.locator("#rang-en-cours-1")
    heading = current.get_by_role("heading").inner_text()
    assert heading == f"Rang 2 en cours d'examen : {listed[1][2]}"
    assert page.locator("#rang-1-2").get_attribute("aria-current") == "true"
    shot(page, "commission")
    current.get_by_role("button", name="Attribué au rang 2").click()
    page.get_by_text("Attribué enregistré au rang 2").wait_for()
    assert page.locator("#compte-attribues").inner_text().strip() == "1"
    assert page.locator("#rang-en-cours-1").count() == 0
    shot(page, "commission-attribuee")
    after = _unit_one(world, run_id, pool_id)
    assert [st for _, st, _ in after][:2] == ["declined", "validated"]
    assert all(st == "withdrawn" for _, st, _ in after[2:])
