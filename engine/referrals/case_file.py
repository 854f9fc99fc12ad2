"""The case file of one referral, narrowed to what the reader's role may see.

Why here and not in the page: reading a case file always writes its access-log row (through
``engine.access.log``) — the caller cannot forget it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from engine.access.log import record_read
from engine.access.permissions import can, referral_scope
from engine.domain.lifecycle import OPEN_STATES, Transition, allowed_actions
from engine.store import models as m


@dataclass
class CaseFile:
    """Everything the case view shows, already narrowed to what the role may see."""

    referral: m.Referral
    salarie: m.Salarie
    identity: m.SalarieIdentity | None
    chantier: m.Chantier
    territory: m.Territory | None
    offer: m.Offer | None
    partner: m.Partner | None
    minimal: bool  # partner contacts see only the pseudonymous reference and the need
    freins: list[m.Frein] = field(default_factory=list)
    other_domain_freins: int = 0  # freins a chargé·e of another domain does not see
    referrals: list[m.Referral] = field(default_factory=list)
    events: list[m.ReferralEvent] = field(default_factory=list)
    actions: list[Transition] = field(default_factory=list)
    suggestions: list[tuple[m.Offer, int, int]] = field(default_factory=list)
    offers: list[m.Offer] = field(default_factory=list)  # any offer covering the territory
    pools: list[m.SlotPool] = field(default_factory=list)
    transfer_targets: list[m.StaffUser] = field(default_factory=list)
    open_proposal: m.AllocationProposal | None = None
    can_flag_health_urgency: bool = False  # santé chargé·e or coordination, not yet flagged


# Actions done elsewhere than on the case page (the allocation review page).
_ELSEWHERE = frozenset({"validate", "decline_proposal"})


def read_case_file(
    session: Session,
    user: m.StaffUser,
    referral_id: int,
    *,
    now: datetime,
    purpose: str = "consultation",
) -> CaseFile | None:
    """The case file of one referral, or None when missing or out of scope (→ 404).

    Writes one access-log row per read (who, which person, when, why, with identity or not);
    the caller's unit of work commits it with the read.
    """
    ref = session.get(m.Referral, referral_id)
    if ref is None or not can(user, "read", ref):
        return None
    salarie = session.get(m.Salarie, ref.salarie_id)
    assert salarie is not None
    chantier = session.get(m.Chantier, ref.chantier_id)
    assert chantier is not None
    territory = session.get(m.Territory, ref.territory_id) if ref.territory_id else None
    offer = session.get(m.Offer, ref.offer_id) if ref.offer_id else None
    partner = session.get(m.Partner, offer.partner_id) if offer else None
    minimal = user.role == "partner_contact"
    with_identity = (not minimal) and can(user, "read_identity", ref)
    identity = session.get(m.SalarieIdentity, salarie.id) if with_identity else None
    record_read(
        session, user, salarie.id, at=now, purpose=purpose, with_identity=identity is not None
    )
    case = CaseFile(
        referral=ref,
        salarie=salarie,
        identity=identity,
        chantier=chantier,
        territory=territory,
        offer=offer,
        partner=partner,
        minimal=minimal,
    )
    case.actions = [
        t
        for t in allowed_actions(ref.state)
        if t.action not in _ELSEWHERE and can(user, t.action, ref)
    ]
    if minimal:
        return case
    case.can_flag_health_urgency = (
        ref.state in OPEN_STATES
        and not salarie.health_urgency
        and can(user, "flag_health_urgency", ref)
    )
    _load_history(session, user, case)
    if case.actions:
        _load_action_choices(session, case)
    return case


def _load_history(session: Session, user: m.StaffUser, case: CaseFile) -> None:
    """The person's freins (those of the reader's domain for a chargé·e), their referrals in
    the reader's scope, this referral's events and its open proposal."""
    ref, salarie = case.referral, case.salarie
    freins = list(
        session.scalars(
            select(m.Frein).where(m.Frein.salarie_id == salarie.id).order_by(m.Frein.id)
        )
    )
    # Need to know: a chargé·e sees the freins of their own domain (and transverse ones);
    # the others (a health frein for the housing officer) are only counted.
    if user.role == "officer":
        case.freins = [f for f in freins if f.domain in (user.domain, "transverse")]
        case.other_domain_freins = len(freins) - len(case.freins)
    else:
        case.freins = freins
    case.referrals = list(
        session.scalars(
            select(m.Referral)
            .where(m.Referral.salarie_id == salarie.id, referral_scope(user))
            .order_by(m.Referral.id)
        )
    )
    case.events = list(
        session.scalars(
            select(m.ReferralEvent)
            .where(m.ReferralEvent.referral_id == ref.id)
            .order_by(m.ReferralEvent.at, m.ReferralEvent.id)
        )
    )
    case.open_proposal = session.scalar(
        select(m.AllocationProposal).where(
            m.AllocationProposal.referral_id == ref.id, m.AllocationProposal.status == "proposed"
        )
    )


def _load_action_choices(session: Session, case: CaseFile) -> None:
    """Offers, pools and people the action forms let the user choose from."""
    ref = case.referral
    by_id = {
        o.id: o
        for o in session.scalars(
            select(m.Offer).where(m.Offer.id.in_([int(s[0]) for s in ref.suggestions or []]))
        )
    }
    case.suggestions = [
        (by_id[int(s[0])], int(s[1]), int(s[2]))
        for s in ref.suggestions or []
        if int(s[0]) in by_id
    ]
    code = case.territory.code if case.territory else None
    offers = session.execute(
        select(m.Offer, m.Partner).join(m.Partner).order_by(m.Partner.name, m.Offer.name)
    ).all()
    case.offers = [
        o
        for o, p in offers
        if p.coverage is None or (code is not None and code in (p.coverage or []))
    ]
    offer_ids = {o.id for o, _, _ in case.suggestions} | ({ref.offer_id} if ref.offer_id else set())
    pools = session.scalars(
        select(m.SlotPool).where(m.SlotPool.offer_id.in_(offer_ids)).order_by(m.SlotPool.name)
    ).all()
    case.pools = [p for p in pools if p.scope is None or (code is not None and code in p.scope)]
    targets = select(m.StaffUser).where(
        m.StaffUser.active,
        m.StaffUser.role.in_(("officer", "coordinator")),
        m.StaffUser.territory_id == ref.territory_id
        if ref.territory_id
        else m.StaffUser.national_queue,
    )
    case.transfer_targets = list(
        session.scalars(targets.order_by(m.StaffUser.role, m.StaffUser.display_name))
    )
