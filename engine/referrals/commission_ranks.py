"""The door's side of commission lists: who may decide on a rank, which units are held, and
what becomes of a unit once its current rank closes.

Why in ``engine.referrals``: whatever closes a commission's current rank — the commission's
decision, the referral refused or cancelled, an expiry — is a transition, and the door
(``transitions.apply_transition``) must pass the unit on in the same transaction, whichever
use case called it. The lists themselves, the decision use case and the pages' read models
are ``engine.allocation.commission``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access.permissions import can
from engine.domain.clock import Clock
from engine.domain.labels import STATE_LABELS, decline_reason_label, unit_count
from engine.outbox import messages
from engine.outbox.enqueue import enqueue_many
from engine.outbox.messages import OUTSIDE_TERRITORY, Links, Recipient
from engine.referrals.transitions import Actor, apply_transition
from engine.store import dialect
from engine.store import models as m
from engine.store.settings import Settings
from matching.shortlist import next_rank

CASCADE_LABEL = "commission"  # the system actor of the passage to the next rank


def _territory_code(session: Session, user: m.StaffUser) -> str | None:
    if user.territory_id is None:
        return None
    return session.scalar(select(m.Territory.code).where(m.Territory.id == user.territory_id))


def may_decide(session: Session, user: m.StaffUser, pool: m.SlotPool, ref: m.Referral) -> bool:
    """Who records a commission's decision on a candidate: whoever may validate the
    referral, or a coordinator of a territory the pool serves — the commission examines
    candidates of all its territories at once (CDC Habitat: Paris and Seine-Saint-Denis) and
    either coordination may bring back its decisions. The door asks this (``_check_actor``)."""
    if can(user, "validate", ref):
        return True
    if user.role != "coordinator" or not user.active or pool.scope is None:
        return False
    code = _territory_code(session, user)
    return code is not None and code in pool.scope


def held_units(session: Session) -> dict[int, set[int]]:
    """pool id -> unit numbers a commission is examining (a rank is "proposed")."""
    P = m.AllocationProposal
    out: dict[int, set[int]] = defaultdict(set)
    for pool_id, unit_no in session.execute(
        select(P.pool_id, P.unit_no).where(P.rank.is_not(None), P.status == "proposed")
    ).all():
        if unit_no is not None:  # always, for a ranked row (a CHECK constraint)
            out[pool_id].add(unit_no)
    return dict(out)


def unit_words(pool: m.SlotPool, unit_no: int | None) -> str:
    singular = unit_count(1, pool.unit_kind).removeprefix("1 ")
    return f"{singular} n° {unit_no}"


@dataclass
class Passed:
    """What became of a unit once its current rank closed."""

    attributed: bool = False
    next_proposal: m.AllocationProposal | None = None
    withdrawn: list[tuple[int, str]] = field(default_factory=list)  # (rank, why)
    exhausted: bool = False


def _unit_rows(session: Session, prop: m.AllocationProposal) -> list[m.AllocationProposal]:
    P = m.AllocationProposal
    return list(
        session.scalars(
            select(P)
            .where(P.run_id == prop.run_id, P.pool_id == prop.pool_id, P.unit_no == prop.unit_no)
            .order_by(P.rank)
            .with_for_update()
        ).all()
    )


def _withdraw(
    session: Session,
    row: m.AllocationProposal,
    why: str,
    *,
    actor: Actor,
    now: datetime,
) -> None:
    row.status, row.decided_at, row.decline_reason = "withdrawn", now, why
    row.decided_by = actor.user.id if actor.user else None
    session.add(
        m.AuditLog(
            actor_user_id=actor.user.id if actor.user else None,
            actor_label=actor.label[:80],
            action="commission_withdraw",
            object_type="allocation_proposal",
            object_id=str(row.id),
            at=now,
            details={
                "run_id": row.run_id,
                "pool_id": row.pool_id,
                "unit_no": row.unit_no,
                "rank": row.rank,
                "referral_id": row.referral_id,
            },
        )
    )


def unit_moved_on(
    session: Session,
    settings: Settings,
    closed: m.AllocationProposal,
    *,
    actor: Actor,
    clock: Clock,
) -> Passed:
    """Called by the door after it closed a commission rank (validated, declined, expired,
    or closed because the referral left "proposed" another way).

    Validated: the other ranks still waiting are withdrawn (nothing is sent to them).
    Otherwise: the next rank (``next_rank``) whose person still waits gets the proposal
    through the door; a rank whose person left the waitlist is withdrawn with the reason,
    then the next; an exhausted list leaves the unit free for the next run."""
    now = clock.now()
    pool = session.get(m.SlotPool, closed.pool_id)
    assert pool is not None
    rows = _unit_rows(session, closed)
    out = Passed()
    if closed.status == "validated":
        out.attributed = True
        for row in rows:
            if row.status == "shortlisted":
                why = f"Attribué au rang {closed.rank} : la commission n'a pas examiné ce rang"
                _withdraw(session, row, why, actor=actor, now=now)
                out.withdrawn.append((row.rank or 0, why))
        session.flush()
        remember_passed(session, closed.id, out)
        return out
    by_rank = {row.rank: row for row in rows}
    while True:
        # An expired rank is done like a declined one (the cascade's vocabulary).
        rank = next_rank(
            [(row.rank or 0, "declined" if row.status == "expired" else row.status) for row in rows]
        )
        if rank is None:
            out.exhausted = not any(r.status in ("proposed", "validated") for r in rows)
            break
        row = by_rank[rank]
        ref = dialect.get_locked(session, m.Referral, row.referral_id)
        assert ref is not None
        if ref.state != "waitlisted":
            why = (
                "La personne n'était plus en attente de place "
                f"(orientation « {STATE_LABELS.get(ref.state, ref.state)} ») quand son rang "
                "a été atteint"
            )
            _withdraw(session, row, why, actor=actor, now=now)
            out.withdrawn.append((rank, why))
            continue
        row.status = "proposed"
        session.flush()
        what = {
            "validated": "attribution",
            "expired": "proposition expirée",
        }.get(closed.status, decline_reason_label(closed.decline_reason) or "refus")
        apply_transition(
            session,
            settings,
            ref,
            "propose",
            actor=Actor.system(CASCADE_LABEL),
            clock=clock,
            proposal=row,
            note=(
                f"exécution n° {row.run_id} : rang {rank} de la commission, "
                f"{unit_words(pool, row.unit_no)}, après le rang {closed.rank} ({what})"
            )[:4000],
        )
        out.next_proposal = row
        _tell_coordinators(session, settings, ref, row, actor=actor, now=now)
        break
    session.flush()
    remember_passed(session, closed.id, out)
    return out


def _tell_coordinators(
    session: Session,
    settings: Settings,
    ref: m.Referral,
    prop: m.AllocationProposal,
    *,
    actor: Actor,
    now: datetime,
) -> None:
    """The coordination of the new rank's territory hears that a proposal awaits the
    commission's decision (the same message as a run's proposals, keyed by this proposal);
    the coordinator who recorded the decision sees it on the page already."""
    if ref.territory_id is None:
        return
    terr = session.get(m.Territory, ref.territory_id)
    links = Links(settings.base_url)
    batch = [
        messages.commission_rank_reached(
            links,
            Recipient.of(u),
            run_id=prop.run_id,
            pool_id=prop.pool_id,
            proposal_id=prop.id,
            territory=terr.name if terr else OUTSIDE_TERRITORY,
        )
        for u in session.scalars(
            select(m.StaffUser)
            .where(
                m.StaffUser.role == "coordinator",
                m.StaffUser.territory_id == ref.territory_id,
                m.StaffUser.active,
            )
            .order_by(m.StaffUser.id)
        ).all()
        if actor.user is None or u.id != actor.user.id
    ]
    if batch:
        enqueue_many(session, batch, base_url=settings.base_url, now=now)


def _passed_key(proposal_id: int) -> str:
    return f"commission_passed:{proposal_id}"


def remember_passed(session: Session, proposal_id: int, passed: Passed) -> None:
    """The door keeps what became of the unit for the use case that called it."""
    session.info[_passed_key(proposal_id)] = passed


def passed_for(session: Session, proposal_id: int) -> Passed | None:
    """What the door did with the unit after closing this rank (once; None if nothing)."""
    found = session.info.pop(_passed_key(proposal_id), None)
    return found if isinstance(found, Passed) else None
