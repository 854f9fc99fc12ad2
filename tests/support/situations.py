"""Situation factories: a referral in a precise state, reached through the one door.

Why: a test that needs "a referral referred to this partner" or "a proposal on this pool"
used to search the shared seeded world for one that happened to be there; these factories
take a referral no other test used and walk it there with the same
use cases the pages call (``transition``, the allocation run), so every effect — events,
units, outbox rows — is the real one.
"""

from __future__ import annotations

from sqlalchemy import select

from engine.allocation.run import run_allocation
from engine.referrals.actions import Actor, transition
from engine.referrals.case_file import read_case_file
from engine.store import models as m
from engine.store.db import unit_of_work


class NoSituation(AssertionError):
    """The seeded world has no fresh referral that can reach the asked situation."""


def _admin(session) -> m.StaffUser:  # type: ignore[no-untyped-def]
    return session.scalar(select(m.StaffUser).where(m.StaffUser.role == "national_admin"))


def _fresh(world, state: str = "new", territory: str = "paris", domain: str = "logement"):  # type: ignore[no-untyped-def]
    """Untouched referrals of the kind, newest first; the caller marks the one it uses."""
    with world.db.sessions() as s:
        tid = s.scalar(select(m.Territory.id).where(m.Territory.code == territory))
        ids = s.scalars(
            select(m.Referral.id)
            .where(m.Referral.state == state, m.Referral.territory_id == tid,
                   m.Referral.domain == domain, m.Referral.version == 1)
            .order_by(m.Referral.id.desc())
        ).all()  # fmt: skip
    yield from (rid for rid in ids if rid not in world.used)


def referred_to(world, partner_code: str | None = None, **kind: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(referral id, offer id): taken, then referred to a non-counted offer covering it."""
    for rid in _fresh(world, **kind):
        with unit_of_work(world.db) as s:
            admin = _admin(s)
            case = read_case_file(s, admin, rid, now=world.clock.now())
            offers = [
                o
                for o in case.offers
                if not o.slot_based
                and (partner_code is None or s.get(m.Partner, o.partner_id).code == partner_code)
            ]
            if not offers:
                continue
            world.used.add(rid)
            actor = Actor.of(admin)
            transition(s, world.settings, rid, "take", actor=actor, clock=world.clock)
            transition(s, world.settings, rid, "refer", actor=actor, clock=world.clock,
                       offer_id=offers[0].id)  # fmt: skip
            return rid, offers[0].id
    raise NoSituation(f"no fresh referral an offer of {partner_code or 'any partner'} covers")


def waitlisted_for(world, pool_id: int | None = None, **kind: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(referral id, pool id): taken, then waiting for a unit of a pool its offers feed."""
    for rid in _fresh(world, **kind):
        with unit_of_work(world.db) as s:
            admin = _admin(s)
            case = read_case_file(s, admin, rid, now=world.clock.now())
            pools = [p for p in case.pools if pool_id is None or p.id == pool_id]
            if not pools:
                continue
            world.used.add(rid)
            actor = Actor.of(admin)
            transition(s, world.settings, rid, "take", actor=actor, clock=world.clock)
            transition(s, world.settings, rid, "waitlist", actor=actor, clock=world.clock,
                       pool_id=pools[0].id)  # fmt: skip
            return rid, pools[0].id
    raise NoSituation("no fresh referral feeds this pool")


def proposed(world, pool_id: int | None = None, **kind: str) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """(proposal id, referral id, proposal version): waitlisted, then proposed by a real
    allocation run (the only way a proposal is made)."""
    rid, pool = waitlisted_for(world, pool_id, **kind)
    run_allocation(world.db, world.settings, clock=world.clock)
    with world.db.sessions() as s:
        prop = s.scalar(
            select(m.AllocationProposal).where(
                m.AllocationProposal.referral_id == rid, m.AllocationProposal.status == "proposed"
            )
        )
        if prop is None:
            raise AssertionError(f"the allocation did not propose referral {rid} on pool {pool}")
        return prop.id, rid, prop.version
