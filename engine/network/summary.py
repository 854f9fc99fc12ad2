"""A French summary of what is in the database (``aiguillage summary``, ``make demo``)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.allocation.review import territory_names, with_territory_names
from engine.domain.labels import STATE_LABELS, domain_in_sentence, plural
from engine.domain.vocabulary import DOMAINS
from engine.store import models as m

DOMAIN_FR = {d: domain_in_sentence(d) for d in DOMAINS}


def network_summary(session: Session) -> list[str]:
    """Territories, chantiers, people by programme, freins by domain, pools, referrals."""
    count = lambda model: session.scalar(select(func.count()).select_from(model))  # noqa: E731
    people = dict(
        session.execute(
            select(m.Salarie.programme, func.count()).group_by(m.Salarie.programme)
        ).all()
    )
    freins = dict(
        session.execute(select(m.Frein.domain, func.count()).group_by(m.Frein.domain)).all()
    )
    outside = session.scalar(
        select(func.count()).select_from(m.Chantier).where(m.Chantier.territory_id.is_(None))
    )
    lines = [
        f"Territoires : {count(m.Territory)}",
        f"Chantiers : {count(m.Chantier)} (dont {outside} PHC hors territoire)",
        f"Salarié·es : {sum(people.values())} (CVG {people.get('cvg', 0)}, PHC "
        f"{people.get('phc', 0)})",
        f"Freins : {sum(freins.values())} — "
        + ", ".join(f"{fr} {freins.get(d, 0)}" for d, fr in DOMAIN_FR.items()),
        f"Comptes : {count(m.StaffUser)} ; partenaires : {count(m.Partner)} "
        f"({count(m.Offer)} offres)",
    ]
    used = dict(
        session.execute(
            select(m.SlotUnit.pool_id, func.count())
            .join(m.SlotAssignment, m.SlotAssignment.unit_id == m.SlotUnit.id)
            .where(m.SlotAssignment.active)
            .group_by(m.SlotUnit.pool_id)
        ).all()
    )
    pools = session.execute(
        select(m.SlotPool.id, m.SlotPool.name, m.SlotPool.capacity).order_by(m.SlotPool.id)
    ).all()
    lines.append(f"Dispositifs à places comptées : {len(pools)}")
    names = territory_names(session)
    lines += [
        f"  - {with_territory_names(name, names)} : {plural(cap, 'place')}, "
        f"{plural(used.get(pid, 0), 'attribuée', 'attribuées')}"
        for pid, name, cap in pools
    ]
    states = dict(
        session.execute(select(m.Referral.state, func.count()).group_by(m.Referral.state)).all()
    )
    if states:
        lines.append(
            "Orientations : "
            + ", ".join(
                f"{STATE_LABELS[s].lower()} {n}"
                for s, n in sorted(states.items(), key=lambda x: list(STATE_LABELS).index(x[0]))
            )
        )
    return lines
