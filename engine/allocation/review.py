"""Read models of the allocation pages: the pools with their units, and the run under review."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.orm import Session

from engine.access.permissions import can, referral_scope
from engine.store import models as m


@dataclass
class PoolRow:
    id: int
    code: str
    name: str
    partner: str
    scope: list[str] | None
    period_start: Any
    period_end: Any
    capacity: int
    used: int
    waiting: int
    unit_kind: str

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.used)


def pools_overview(session: Session, user: m.StaffUser) -> list[PoolRow]:
    """Counted pools the user's territory can draw on: capacity, used, waiting."""
    used = (
        select(m.SlotUnit.pool_id, func.count().label("n"))
        .join(m.SlotAssignment, m.SlotAssignment.unit_id == m.SlotUnit.id)
        .where(m.SlotAssignment.active)
        .group_by(m.SlotUnit.pool_id)
        .subquery()
    )
    waiting = (
        select(m.Referral.pool_id, func.count().label("n"))
        .where(m.Referral.state == "waitlisted", m.Referral.pool_id.is_not(None))
        .group_by(m.Referral.pool_id)
        .subquery()
    )
    stmt = (
        select(
            m.SlotPool, m.Partner.name, func.coalesce(used.c.n, 0), func.coalesce(waiting.c.n, 0)
        )
        .join(m.Offer, m.Offer.id == m.SlotPool.offer_id)
        .join(m.Partner, m.Partner.id == m.Offer.partner_id)
        .outerjoin(used, used.c.pool_id == m.SlotPool.id)
        .outerjoin(waiting, waiting.c.pool_id == m.SlotPool.id)
        .order_by(m.SlotPool.name)
    )
    code = None
    if user.role != "national_admin" and user.territory_id is not None:
        code = session.scalar(select(m.Territory.code).where(m.Territory.id == user.territory_id))
    out = []
    for pool, partner, n_used, n_wait in session.execute(stmt).all():
        if user.role != "national_admin" and not (
            pool.scope is None or (code is not None and code in pool.scope)
        ):
            continue
        out.append(
            PoolRow(
                id=pool.id,
                code=pool.code,
                name=pool.name,
                partner=partner,
                scope=pool.scope,
                period_start=pool.period_start,
                period_end=pool.period_end,
                capacity=pool.capacity,
                used=int(n_used),
                waiting=int(n_wait),
                unit_kind=pool.unit_kind,
            )
        )
    return out


@dataclass
class ProposalRow:
    proposal: m.AllocationProposal
    reference: str
    thematique: str
    territory: str | None
    pool_name: str


@dataclass
class AllocationReview:
    run: m.AllocationRun | None
    proposals: list[ProposalRow]
    by_pool: list[dict[str, Any]]


def allocation_review(session: Session, user: m.StaffUser) -> AllocationReview:
    """Proposals of the latest real run that fall in the user's scope, with its fairness stats."""
    if not can(user, "review_allocation"):
        raise PermissionError("réservé à la coordination")
    run = session.scalar(
        select(m.AllocationRun)
        .where(m.AllocationRun.dry_run.is_(False), m.AllocationRun.status != "running")
        .order_by(m.AllocationRun.id.desc())
        .limit(1)
    )
    if run is None:
        return AllocationReview(None, [], [])
    P, R = m.AllocationProposal, m.Referral
    rows = session.execute(
        select(P, m.Salarie.reference, R.thematique, m.Territory.name, m.SlotPool.name)
        .join(R, R.id == P.referral_id)
        .join(m.Salarie, m.Salarie.id == R.salarie_id)
        .join(m.SlotPool, m.SlotPool.id == P.pool_id)
        .outerjoin(m.Territory, m.Territory.id == R.territory_id)
        .where(P.run_id == run.id, referral_scope(user))
        .order_by(P.status != "proposed", P.priority.desc(), P.id)
    ).all()
    proposals = [ProposalRow(p, ref, th, terr, pool) for p, ref, th, terr, pool in rows]
    return AllocationReview(run, proposals, list((run.stats or {}).get("by_pool", [])))
