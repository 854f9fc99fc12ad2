"""Every write through one door, tried through the pages and the API as a user (or an
attacker) would, on SQLite and PostgreSQL: each test is a defect that was reproduced before
``apply_transition`` existed.
"""

from __future__ import annotations

import html

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.allocation.run import run_allocation
from engine.domain.lifecycle import is_table_event
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from tests.web.world import World, csrf_of, fresh_referral, login, waitlist_some, world_per_database


def _more_units(db: Database) -> None:
    """Room for every test's validation: 20 more units per pool."""
    with unit_of_work(db) as s:
        for pool in s.scalars(select(m.SlotPool)).all():
            last = (
                s.scalar(select(func.max(m.SlotUnit.unit_no)).where(m.SlotUnit.pool_id == pool.id))
                or 0
            )
            s.add_all(m.SlotUnit(pool_id=pool.id, unit_no=last + i) for i in range(1, 21))
            pool.capacity += 20


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def door(request) -> World:
    """One seeded network per database kind for this module (the tests use fresh referrals)."""
    yield from world_per_database(request, _more_units)


def client_of(world: World, role: str) -> TestClient:
    client = TestClient(world.app)  # type: ignore[attr-defined]
    assert login(client, world.emails[role]).status_code == 303
    return client


def act(client: TestClient, rid: int, **data: str):  # type: ignore[no-untyped-def]
    """Post the case page's action form as the user would (CSRF from the page)."""
    token = csrf_of(client.get(f"/orientations/{rid}").text)
    with_version = {"version": str(version_of(client.app.state.db, rid)), **data}  # type: ignore[attr-defined]
    return client.post(f"/orientations/{rid}/actions", data={"csrf_token": token, **with_version},
                       follow_redirects=False)  # fmt: skip


def api(client: TestClient, rid: int, **body: object):  # type: ignore[no-untyped-def]
    token = client.get("/api/v1/me").json()["csrf_token"]
    return client.post(f"/api/v1/referrals/{rid}/transitions", json=body,
                       headers={"X-CSRF-Token": token})  # fmt: skip


def version_of(db: Database, rid: int) -> int:
    with db.sessions() as s:
        return s.get(m.Referral, rid).version


def state_of(db: Database, rid: int) -> str:
    with db.sessions() as s:
        return s.get(m.Referral, rid).state


def active_units(db: Database, rid: int) -> int:
    with db.sessions() as s:
        return s.scalar(select(func.count()).select_from(m.SlotAssignment).where(
            m.SlotAssignment.referral_id == rid, m.SlotAssignment.active)) or 0  # fmt: skip


def proposals(world: World) -> list[tuple[int, int, int]]:
    """(proposal id, referral id, version) of open proposals in Paris, after one run."""
    if not _open_proposals(world):
        waitlist_some(world, 10)
        run_allocation(world.db, world.settings, clock=world.clock)
    return _open_proposals(world)


def _open_proposals(world: World) -> list[tuple[int, int, int]]:
    with world.db.sessions() as s:
        paris = s.scalar(select(m.Territory.id).where(m.Territory.code == "paris"))
        return [tuple(r) for r in s.execute(  # type: ignore[misc]
            select(m.AllocationProposal.id, m.AllocationProposal.referral_id,
                   m.AllocationProposal.version)
            .join(m.Referral, m.Referral.id == m.AllocationProposal.referral_id)
            .where(m.AllocationProposal.status == "proposed", m.Referral.territory_id == paris)
            .order_by(m.AllocationProposal.id)).all()]  # fmt: skip


def validated(world: World) -> int:
    """A referral whose proposal the coordinator validated on the review page: it holds units."""
    coord = client_of(world, "coordinator")
    pid, rid, version = proposals(world)[0]
    token = csrf_of(coord.get("/attributions").text)
    done = coord.post(f"/attributions/{pid}/valider",
                      data={"csrf_token": token, "version": str(version)}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    assert state_of(world.db, rid) == "accepted" and active_units(world.db, rid) >= 1
    return rid


# --- validate / decline only through the allocation review ---------------------------


def test_validation_on_the_review_page_consumes_the_units_needed(door):
    rid = validated(door)  # stays accepted: the last test checks the invariants over it
    with door.db.sessions() as s:
        assert active_units(door.db, rid) == s.get(m.Referral, rid).units_needed
        assert s.scalar(select(func.count()).select_from(m.OutboxMessage).where(
            m.OutboxMessage.kind == "slot_validated",
            m.OutboxMessage.idempotency_key.like(f"slot_validated:{rid}:%"))) >= 1  # fmt: skip


@pytest.mark.parametrize("role", ["coordinator", "admin"])
@pytest.mark.parametrize("action", ["validate", "decline_proposal", "propose", "expire"])
def test_allocation_actions_are_not_reachable_through_the_generic_action(door, role, action):
    pid, rid, _ = proposals(door)[0]
    client = client_of(door, role)
    page = act(client, rid, action=action, note="essai")
    through_api = api(client, rid, action=action, expected_version=version_of(door.db, rid))
    assert page.status_code in (403, 422) and through_api.status_code in (403, 422)
    assert state_of(door.db, rid) == "proposed" and active_units(door.db, rid) == 0
    with door.db.sessions() as s:
        assert s.get(m.AllocationProposal, pid).status == "proposed"


# --- transfer targets -------------------------------------------------------------------


@pytest.mark.parametrize("target", ["officer_other_territory", "partner", "cip", "admin",
                                    "officer_other_domain"])  # fmt: skip
def test_transfer_only_to_an_officer_of_the_territory_and_domain(door, target):
    rid = fresh_referral(door)
    officer = client_of(door, "officer")
    assert act(officer, rid, action="take").status_code == 303
    refused = act(officer, rid, action="transfer", new_owner_id=str(door.user_ids[target]),
                  confirm="1")  # fmt: skip
    assert refused.status_code == 422
    assert "chargé·e de partenariats du territoire" in html.unescape(refused.text)
    assert state_of(door.db, rid) == "triaging"


def test_transfer_to_a_missing_offer_or_owner_is_a_french_refusal(door):
    rid = fresh_referral(door)
    officer = client_of(door, "officer")
    act(officer, rid, action="take")
    for field, value in (("offer_id", "999999"), ("new_owner_id", "999999"),
                         ("offer_id", str(2**63)), ("new_owner_id", "-1")):  # fmt: skip
        answer = act(officer, rid, action="transfer", confirm="1", **{field: value})
        assert answer.status_code == 422, (field, value, answer.status_code)
    assert api(officer, rid, action="transfer", offer_id=999_999).status_code == 422
    assert state_of(door.db, rid) == "triaging"


def test_transfer_to_the_coordination_reopens_a_new_referral(door):
    rid = fresh_referral(door)
    officer = client_of(door, "officer")
    act(officer, rid, action="take")
    done = act(officer, rid, action="transfer", new_owner_id=str(door.user_ids["coordinator"]),
               confirm="1")  # fmt: skip
    assert done.status_code == 303
    with door.db.sessions() as s:
        new = s.scalar(select(m.Referral).where(m.Referral.transferred_from_id == rid))
        assert new.state == "new" and new.owner_user_id == door.user_ids["coordinator"]


# --- slot-based offers and territories --------------------------------------------------


def _offers(world: World) -> dict[str, int]:
    """A counted offer, a pool and an offer of another territory, for Paris referrals."""
    with world.db.sessions() as s:
        out: dict[str, int] = {}
        for offer, partner in s.execute(select(m.Offer, m.Partner).join(m.Partner)
                                        .order_by(m.Offer.id)).all():  # fmt: skip
            if offer.slot_based:
                out.setdefault("slot_based", offer.id)
            elif partner.coverage is not None and "paris" not in partner.coverage:
                out.setdefault("elsewhere", offer.id)
        for pool in s.scalars(select(m.SlotPool).order_by(m.SlotPool.id)):
            if pool.scope is not None and "paris" not in pool.scope:
                out.setdefault("pool_elsewhere", pool.id)
        return out


def test_a_counted_offer_is_reached_only_through_the_waitlist(door):
    rid = fresh_referral(door)
    officer = client_of(door, "officer")
    act(officer, rid, action="take")
    offer = _offers(door)["slot_based"]
    free_before = officer.get("/api/v1/pools").json()
    answer = act(officer, rid, action="refer", offer_id=str(offer))
    assert answer.status_code == 422 and "attente de place" in html.unescape(answer.text)
    assert api(officer, rid, action="refer", offer_id=offer).status_code == 422
    assert state_of(door.db, rid) == "triaging"
    assert officer.get("/api/v1/pools").json() == free_before
    with door.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.OutboxMessage).where(
            m.OutboxMessage.kind == "partner_orientation",
            m.OutboxMessage.idempotency_key.like(f"partner_orientation:{rid}:%"))) == 0  # fmt: skip


def test_offers_and_pools_must_cover_the_referral_territory(door):
    rid = fresh_referral(door)
    officer = client_of(door, "officer")
    act(officer, rid, action="take")
    targets = _offers(door)
    assert act(officer, rid, action="refer", offer_id=str(targets["elsewhere"])).status_code == 422
    assert act(officer, rid, action="waitlist",
               pool_id=str(targets["pool_elsewhere"])).status_code == 422  # fmt: skip
    assert state_of(door.db, rid) == "triaging"


# --- units and proposals follow the referral ----------------------------------------------


@pytest.mark.parametrize("ending", ["cancel", "refuse"])
def test_ending_before_the_help_releases_the_unit(door, ending):
    rid = validated(door)
    with door.db.sessions() as s:
        pool_id = s.get(m.Referral, rid).pool_id
    coord = client_of(door, "coordinator")
    before = {p["id"]: p["used"] for p in coord.get("/api/v1/pools").json()}[pool_id]
    data = {"action": ending} if ending == "cancel" else {"action": ending, "reason": "no_show"}
    data["confirm"] = "1"
    answer = act(coord, rid, **data)
    if ending == "refuse":  # refusing is for proposals and earlier: an accepted one is cancelled
        assert answer.status_code == 422
        answer = act(coord, rid, action="cancel", note="la personne a quitté le chantier",
                     confirm="1")  # fmt: skip
    assert answer.status_code == 303
    assert active_units(door.db, rid) == 0
    after = {p["id"]: p["used"] for p in coord.get("/api/v1/pools").json()}[pool_id]
    assert after == before - 1 or after < before


def test_help_delivered_keeps_the_unit(door):
    rid = validated(door)
    coord = client_of(door, "coordinator")
    assert act(coord, rid, action="start").status_code == 303
    held = active_units(door.db, rid)
    assert act(coord, rid, action="cancel", confirm="1").status_code == 303
    assert active_units(door.db, rid) == held > 0


def test_refusing_a_proposed_referral_closes_its_proposal(door):
    pid, rid, _ = proposals(door)[-1]
    coord = client_of(door, "coordinator")
    assert act(coord, rid, action="refuse", reason="declined_by_person",
               confirm="1").status_code == 303  # fmt: skip
    with door.db.sessions() as s:
        assert s.get(m.AllocationProposal, pid).status == "declined"
    assert f"/attributions/{pid}/valider" not in coord.get("/attributions").text  # nothing to do
    page = coord.get("/attributions?statut=declinees").text
    assert "Orientation refusée" in html.unescape(page.split(f'id="proposition-{pid}"')[1][:2000])


# --- fields an action does not take -------------------------------------------------------


def test_fields_an_action_does_not_take_are_refused(door):
    rid = fresh_referral(door)
    officer = client_of(door, "officer")
    assert act(officer, rid, action="take", outcome="resolved").status_code == 422
    assert act(officer, rid, action="take", reason="x" * 5000).status_code == 422
    assert api(officer, rid, action="take", reason="x" * 5000).status_code == 422
    assert act(officer, rid, action="take").status_code == 303
    assert (
        act(
            officer, rid, action="close", outcome="resolved", reason="no_show", confirm="1"
        ).status_code
        == 422
    )
    with door.db.sessions() as s:
        ref = s.get(m.Referral, rid)
        assert ref.state == "triaging" and ref.outcome is None and ref.refusal_reason is None


def test_nul_bytes_and_huge_notes_are_refused_before_anything_is_written(door):
    rid = fresh_referral(door)
    officer = client_of(door, "officer")
    nul = act(officer, rid, action="take", note="avant\x00après")
    assert nul.status_code == 422 and "octet nul" in html.unescape(nul.text)
    assert api(officer, rid, action="take", note="a\u0000b").status_code == 422
    token = csrf_of(officer.get(f"/orientations/{rid}").text)
    huge = officer.post(f"/orientations/{rid}/actions",
                        data={"csrf_token": token, "action": "take", "note": "n" * 20_000_000})  # fmt: skip
    assert huge.status_code == 413 and "taille autorisée" in html.unescape(huge.text)
    long_note = act(officer, rid, action="take", note="n" * 5000)
    assert long_note.status_code == 422
    assert state_of(door.db, rid) == "new"


# --- the invariants after all of the above ------------------------------------------------


def test_every_event_is_a_row_of_the_table_and_units_match_acceptances(door):
    if proposals(door):  # one more validation, when the pools still have room
        validated(door)
    with door.db.sessions() as s:
        events = s.execute(select(m.ReferralEvent.from_state, m.ReferralEvent.to_state,
                                  m.ReferralEvent.action).distinct()).all()  # fmt: skip
        assert events and all(is_table_event(*e) for e in events), [
            e for e in events if not is_table_event(*e)
        ]
        held = dict(s.execute(select(m.SlotAssignment.referral_id, func.count())
                              .where(m.SlotAssignment.active)
                              .group_by(m.SlotAssignment.referral_id)).all())  # fmt: skip
        counted = s.execute(select(m.Referral.id, m.Referral.state, m.Referral.units_needed)
                            .join(m.SlotPool, m.SlotPool.id == m.Referral.pool_id)
                            .where(m.Referral.state == "accepted")).all()  # fmt: skip
        assert counted
        for rid, _state, units in counted:
            assert held.get(rid, 0) == units, rid
        # Units are held only by referrals whose help was validated (accepted or later).
        holders = s.execute(select(m.Referral.state).where(m.Referral.id.in_(list(held)))).all()
        assert {st for (st,) in holders} <= {"accepted", "in_progress", "closed", "cancelled"}
