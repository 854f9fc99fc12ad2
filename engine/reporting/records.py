"""Read the database into ``reporting.records``: people with their pathway, referrals, pools.

Why Core queries, grouped: at scale 50 there are a million referrals and three million
events; one grouped query per kind of fact (not an ORM object per row) keeps the reporting
flow within seconds and a few hundred megabytes. Nothing personal is read: no identity, no
note — only codes, counts and dates.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from engine.domain.clock import as_utc
from engine.store import models as m
from reporting.indicators import Scope
from reporting.records import HealthEvent, HousingChange, Person, PoolRecord, Referral

# Actions that mark a referral's milestones, and the state they leave from when it matters.
_PARTNER_ANSWER_FROM = "referred"
_ENDING = ("closed", "refused", "expired", "cancelled", "transferred")


def _codes(session: Session) -> tuple[dict[int, str], dict[int, tuple[str, int | None]]]:
    territories = dict(session.execute(select(m.Territory.id, m.Territory.code)).all())
    chantiers = {
        cid: (code, tid)
        for cid, code, tid in session.execute(
            select(m.Chantier.id, m.Chantier.code, m.Chantier.territory_id)
        ).all()
    }
    return territories, chantiers


def _people_query(scope: Scope, territory_ids: dict[str, int]) -> Select:  # type: ignore[type-arg]
    S = m.Salarie
    q = select(
        S.id,
        S.programme,
        S.chantier_id,
        S.entry_date,
        S.exit_date,
        S.exit_category,
        S.referred_by,
        S.housing,
        S.street_months,
        S.has_resources,
    )
    if scope.programme:
        q = q.where(S.programme == scope.programme)
    if scope.territory:
        q = q.where(
            S.chantier_id.in_(
                select(m.Chantier.id).where(
                    m.Chantier.territory_id == territory_ids.get(scope.territory, -1)
                )
            )
        )
    if scope.chantier:
        q = q.where(
            S.chantier_id.in_(select(m.Chantier.id).where(m.Chantier.code == scope.chantier))
        )
    return q.order_by(S.id)


def load_people(session: Session, scope: Scope | None = None) -> list[Person]:
    """Every person of the scope with their pathway facts and mobilised domains."""
    scope = scope or Scope()
    territories, chantiers = _codes(session)
    rows = session.execute(_people_query(scope, {c: i for i, c in territories.items()})).all()
    ids = {r.id for r in rows}

    freins: dict[int, int] = dict(
        session.execute(select(m.Frein.salarie_id, func.count()).group_by(m.Frein.salarie_id)).all()  # type: ignore[arg-type]
    )
    housing: dict[int, list[HousingChange]] = defaultdict(list)
    for sid, on, before, after in session.execute(
        select(
            m.HousingChange.salarie_id,
            m.HousingChange.on,
            m.HousingChange.before,
            m.HousingChange.after,
        ).order_by(m.HousingChange.on, m.HousingChange.id)  # fmt: skip
    ).all():
        if sid in ids:
            housing[sid].append(HousingChange(on, before, after))
    health: dict[int, list[HealthEvent]] = defaultdict(list)
    for sid, on, kind in session.execute(
        select(m.HealthEvent.salarie_id, m.HealthEvent.on, m.HealthEvent.kind).order_by(
            m.HealthEvent.on, m.HealthEvent.id
        )
    ).all():
        if sid in ids:
            health[sid].append(HealthEvent(on, kind))
    mobilised: dict[int, dict[str, date]] = defaultdict(dict)
    R, E = m.Referral, m.ReferralEvent
    for sid, domain, first in session.execute(
        select(R.salarie_id, R.domain, func.min(E.at))
        .join(E, E.referral_id == R.id)
        .where(E.action == "take", R.owner_kind == "officer")
        .group_by(R.salarie_id, R.domain)
    ).all():
        if sid in ids:
            mobilised[sid][domain] = as_utc(first).date()

    people = []
    for r in rows:
        code, tid = chantiers[r.chantier_id]
        changes = tuple(housing.get(r.id, ()))
        people.append(
            Person(
                id=r.id,
                programme=r.programme,
                territory=territories.get(tid) if tid is not None else None,
                chantier=code,
                entry_date=r.entry_date,
                exit_date=r.exit_date,
                exit_category=r.exit_category,
                referred_by=r.referred_by,
                housing_at_entry=changes[0].before if changes else r.housing,
                street_months_at_entry=r.street_months,
                resources_at_entry=r.has_resources,
                freins=freins.get(r.id, 0),
                housing_changes=changes,
                health_events=tuple(health.get(r.id, ())),
                mobilised=mobilised.get(r.id, {}),
            )
        )
    return people


def _milestones(session: Session) -> dict[int, dict[str, datetime]]:
    """Per referral, the first instant of each milestone, from the events (one grouped query)."""
    E = m.ReferralEvent
    out: dict[int, dict[str, datetime]] = defaultdict(dict)
    q = select(E.referral_id, E.action, E.from_state, E.to_state, func.min(E.at)).group_by(
        E.referral_id, E.action, E.from_state, E.to_state
    )
    for rid, action, from_state, to_state, at in session.execute(q).all():
        at = as_utc(at)
        marks = out[rid]

        def mark(key: str, when: datetime = at, marks: dict[str, datetime] = marks) -> None:
            if key not in marks or when < marks[key]:
                marks[key] = when

        if action == "take":
            mark("triaged")
        elif action == "refer":
            mark("referred")
        elif action == "waitlist":
            mark("waitlisted")
        elif action == "validate":
            mark("placed")
        if from_state == _PARTNER_ANSWER_FROM and action in ("partner_accept", "refuse"):
            mark("answered")
            mark("accepted" if action == "partner_accept" else "declined")
        if to_state in _ENDING and from_state != to_state:
            mark("ended")
    return out


def load_referrals(session: Session, scope: Scope | None = None) -> list[Referral]:
    """Every referral of the scope with its milestones."""
    scope = scope or Scope()
    territories, chantiers = _codes(session)
    partners = dict(session.execute(select(m.Offer.id, m.Partner.code).join(m.Partner)).all())
    offers = dict(session.execute(select(m.Offer.id, m.Offer.code)).all())
    pools = dict(session.execute(select(m.SlotPool.id, m.SlotPool.code)).all())
    marks = _milestones(session)
    R = m.Referral
    q = select(
        R.id, R.salarie_id, R.programme, R.territory_id, R.chantier_id, R.domain, R.state,
        R.created_at, R.owner_kind, R.outcome, R.refusal_reason, R.offer_id, R.pool_id, R.due_at,
    ).order_by(R.id)  # fmt: skip
    if scope.programme:
        q = q.where(R.programme == scope.programme)
    if scope.territory:
        tid = {c: i for i, c in territories.items()}.get(scope.territory, -1)
        q = q.where(R.territory_id == tid)
    out = []
    for r in session.execute(q).all():
        chantier = chantiers[r.chantier_id][0]
        if scope.chantier and chantier != scope.chantier:
            continue
        mk = marks.get(r.id, {})
        accepted = True if "accepted" in mk else (False if "declined" in mk else None)
        out.append(
            Referral(
                id=r.id,
                person_id=r.salarie_id,
                programme=r.programme,
                territory=territories.get(r.territory_id) if r.territory_id else None,
                chantier=chantier,
                domain=r.domain,
                state=r.state,
                created_at=as_utc(r.created_at),
                owner_kind=r.owner_kind,
                outcome=r.outcome,
                refusal_reason=r.refusal_reason,
                partner=partners.get(r.offer_id) if r.offer_id else None,
                offer=offers.get(r.offer_id) if r.offer_id else None,
                pool=pools.get(r.pool_id) if r.pool_id else None,
                triaged_at=mk.get("triaged"),
                referred_at=mk.get("referred"),
                answered_at=mk.get("answered"),
                accepted=accepted,
                waitlisted_at=mk.get("waitlisted"),
                placed_at=mk.get("placed"),
                ended_at=mk.get("ended"),
                due_at=as_utc(r.due_at) if r.due_at else None,
            )
        )
    return out


def load_pools(session: Session, scope: Scope | None = None) -> list[PoolRecord]:
    """Every counted pool with its units held, proposed and the people waiting for it."""
    scope = scope or Scope()
    territories, _ = _codes(session)
    held = dict(
        session.execute(
            select(m.SlotUnit.pool_id, func.count())
            .join(m.SlotAssignment, m.SlotAssignment.unit_id == m.SlotUnit.id)
            .where(m.SlotAssignment.active.is_(True))
            .group_by(m.SlotUnit.pool_id)
        ).all()
    )
    proposed = dict(
        session.execute(
            select(m.AllocationProposal.pool_id, func.sum(m.AllocationProposal.units))
            .where(m.AllocationProposal.status == "proposed")
            .group_by(m.AllocationProposal.pool_id)
        ).all()
    )
    waiting = dict(
        session.execute(
            select(m.Referral.pool_id, func.count())
            .where(m.Referral.state == "waitlisted", m.Referral.pool_id.is_not(None))
            .group_by(m.Referral.pool_id)
        ).all()
    )
    out = []
    for p in session.scalars(select(m.SlotPool).order_by(m.SlotPool.code)).all():
        code = territories.get(p.territory_id) if p.territory_id else None
        if scope.territory and code != scope.territory and scope.territory not in (p.scope or []):
            continue
        out.append(
            PoolRecord(
                code=p.code,
                name=p.name,
                territory=code,
                unit_kind=p.unit_kind,
                period_start=p.period_start,
                period_end=p.period_end,
                capacity=p.capacity,
                held=int(held.get(p.id, 0)),
                proposed=int(proposed.get(p.id, 0) or 0),
                waiting=int(waiting.get(p.id, 0)),
            )
        )
    return out
