"""The allocation review in Chromium: a coordinator ticks proposals and validates the
selection; the solver's details stay folded until asked for."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.allocation.run import run_allocation
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.e2e.conftest import shot
from tests.web.world import PASSWORD, waitlist_some

pytestmark = pytest.mark.browser


def _login(page, base: str, email: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}/tableau-de-bord")  # every role lands on its home page


def test_coordinator_validates_a_selection(page, served):  # type: ignore[no-untyped-def]
    base, world = served
    with unit_of_work(world.db) as s:  # room for several proposals in every pool
        for pool in s.scalars(select(m.SlotPool)).all():
            last = s.scalar(
                select(func.max(m.SlotUnit.unit_no)).where(m.SlotUnit.pool_id == pool.id)
            )
            s.add_all(m.SlotUnit(pool_id=pool.id, unit_no=(last or 0) + i) for i in range(1, 11))
            pool.capacity += 10
    waitlist_some(world, 8)
    run_allocation(world.db, world.settings, clock=world.clock)
    with world.db.sessions() as s:
        paris = s.scalar(select(m.Territory.id).where(m.Territory.code == "paris"))
        pids = s.scalars(
            select(m.AllocationProposal.id)
            .join(m.Referral, m.Referral.id == m.AllocationProposal.referral_id)
            .where(m.AllocationProposal.status == "proposed", m.Referral.territory_id == paris)
            .order_by(m.AllocationProposal.id)
        ).all()
    assert len(pids) >= 2
    _login(page, base, world.emails["coordinator"])
    page.goto(f"{base}/attributions")
    details = page.locator("details.technical").first
    assert not details.get_by_text("Solveur").is_visible()  # folded
    shot(page, "attributions-revue")
    details.locator("summary").click()
    assert details.get_by_text("Solveur").is_visible()
    for pid in pids[:2]:
        page.locator(f"#sel-{pid}").check()
    page.get_by_role("button", name="Valider la sélection").click()
    page.get_by_text("2 propositions validées").wait_for()
    shot(page, "attributions-selection-validee")
    with world.db.sessions() as s:
        for pid in pids[:2]:
            assert s.get(m.AllocationProposal, pid).status == "validated"
