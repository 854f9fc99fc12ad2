"""A plausible first week of work on the synthetic network, for the demo and the benches.

Why: right after intake every referral is "new"; the allocation, the reminders and the
review pages need people on waitlists, orientations sent to partners and some closed cases.
This replays what chargé·es do, through the same use case as the pages (``transition``),
so every step writes its events and outbox rows like real work would.
"""

from __future__ import annotations

import random
from collections import Counter

from sqlalchemy import select

from engine.domain.clock import Clock
from engine.referrals.actions import Actor, transition
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings
from partners.taxonomy import covers


def simulate_activity(
    db: Database,
    settings: Settings,
    *,
    clock: Clock,
    seed: int = 42,
    waitlist_share: float = 0.6,
    refer_share: float = 0.05,
) -> Counter[str]:
    """Officers take some referrals: waitlist those a counted pool could serve, refer a few."""
    rng = random.Random(seed)
    done: Counter[str] = Counter()
    with unit_of_work(db, immediate=True) as session:
        officers = {
            u.id: u
            for u in session.scalars(select(m.StaffUser).where(m.StaffUser.role == "officer")).all()
        }
        pools = session.scalars(select(m.SlotPool)).all()
        offers = {o.id: o for o in session.scalars(select(m.Offer)).all()}
        terr = dict(session.execute(select(m.Territory.id, m.Territory.code)).all())
        refs = session.scalars(
            select(m.Referral)
            .where(m.Referral.state == "new", m.Referral.owner_kind == "officer")
            .order_by(m.Referral.id)
        ).all()
        for ref in refs:
            if ref.owner_user_id is None or ref.territory_id is None:
                continue
            actor = Actor.of(officers[ref.owner_user_id])
            code = terr.get(ref.territory_id)
            fitting = [
                p
                for p in pools
                if (p.scope is None or code in p.scope)
                and any(covers(t, ref.thematique) for t in offers[p.offer_id].thematiques)
            ]
            if fitting and rng.random() < waitlist_share:
                transition(session, settings, ref.id, "take", actor=actor, clock=clock)
                transition(
                    session,
                    settings,
                    ref.id,
                    "waitlist",
                    actor=actor,
                    clock=clock,
                    pool_id=rng.choice(fitting).id,
                )
                done["waitlisted"] += 1
            elif ref.suggestions and rng.random() < refer_share:
                offer_id = ref.suggestions[0][0]
                if offers[offer_id].slot_based:
                    continue
                transition(session, settings, ref.id, "take", actor=actor, clock=clock)
                transition(
                    session, settings, ref.id, "refer", actor=actor, clock=clock, offer_id=offer_id
                )
                done["referred"] += 1
    return done
