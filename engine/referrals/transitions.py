"""The one door for every state change of a referral: ``apply_transition``.

Why one function: a state change is a rule of the lifecycle table (``engine.domain.lifecycle``), a
right of the actor to the action *and to its target* (the offer, the pool, the new owner
must belong to the referral's territory and domain), a set of stored fields the action takes
(and only those), and effects — units consumed or released, the proposal closed, the event,
the outbox rows. Written once here, every caller — the case page, the API, the partner link,
the allocation, the reminders — gets all of it or nothing. Nothing else writes
``referral.state``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from engine.access.permissions import can
from engine.domain.clock import Clock
from engine.domain.errors import Forbidden, Refused
from engine.domain.lifecycle import (
    BY_ACTION,
    HELP_DELIVERED_STATES,
    RELEASE_ON,
    STATE_LABELS,
    Transition,
    TransitionError,
    check_transition,
)
from engine.outbox import messages
from engine.store import dialect
from engine.store import models as m
from engine.store.settings import Settings

NOTE_MAX = 4000  # characters of a free-text note
PAYLOAD_LABELS = {
    "offer_id": "offre",
    "pool_id": "dispositif",
    "outcome": "résultat",
    "reason": "motif",
    "new_owner_id": "destinataire",
    "proposal": "proposition",
}


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff user, a flow (``system``) or a partner through its signed link."""

    user: m.StaffUser | None
    label: str
    kind: str = "user"  # user | system | partner_link
    partner_id: int | None = None

    @classmethod
    def of(cls, user: m.StaffUser) -> Actor:
        return cls(user, user.display_name[:80])

    @classmethod
    def system(cls, label: str) -> Actor:
        return cls(None, f"système : {label}", kind="system")

    @classmethod
    def partner_link(cls, partner_id: int, partner_name: str) -> Actor:
        label = f"partenaire : {partner_name}"[:66] + " (lien signé)"
        return cls(None, label, kind="partner_link", partner_id=partner_id)


def record_event(
    session: Session,
    referral: m.Referral,
    *,
    from_state: str | None,
    action: str,
    actor: Actor,
    at: datetime,
    reason: str | None = None,
    note: str | None = None,
) -> None:
    session.add(
        m.ReferralEvent(
            referral_id=referral.id,
            from_state=from_state,
            to_state=referral.state,
            action=action,
            actor_user_id=actor.user.id if actor.user else None,
            actor_label=actor.label,
            reason=reason,
            note=note,
            at=at,
        )
    )


def clean_note(note: str | None) -> str | None:
    """A free-text note, stripped; refused when too long or carrying a NUL byte."""
    if note is None:
        return None
    if "\x00" in note:
        raise Refused("la note contient un caractère interdit")
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise Refused(f"la note est trop longue : {NOTE_MAX} caractères au plus")
    return note or None


def apply_transition(
    session: Session,
    settings: Settings,
    referral: m.Referral,
    action: str,
    *,
    actor: Actor,
    clock: Clock,
    note: str | None = None,
    outcome: str | None = None,
    reason: str | None = None,
    offer_id: int | None = None,
    pool_id: int | None = None,
    new_owner_id: int | None = None,
    proposal: m.AllocationProposal | None = None,
) -> m.Referral:
    """Apply ``action`` to ``referral`` — checks, state, effects, event, outbox — or raise a
    French ``Refused`` / ``Forbidden``. The caller owns the transaction (and the lock)."""
    t = BY_ACTION.get(action)
    if t is None:
        raise TransitionError(f"action inconnue : « {action[:40]} »")
    payload = {
        "offer_id": offer_id,
        "pool_id": pool_id,
        "outcome": outcome,
        "reason": reason,
        "new_owner_id": new_owner_id,
        "proposal": proposal,
    }
    _check_payload(t, payload)
    note = clean_note(note)
    _check_actor(actor, t, referral, session=session, proposal=proposal)
    check_transition(
        referral.state,
        action,
        outcome=outcome,
        reason=reason,
        note=note,
        offer_id=offer_id,
        pool_id=pool_id,
    )
    decides_proposal = "proposal" in t.takes
    if decides_proposal:
        _check_open_proposal(proposal, referral)
    now = clock.now()
    before = referral.state
    effect = _EFFECTS.get(action)
    targets = (
        effect(
            session,
            settings,
            referral,
            actor=actor,
            now=now,
            offer_id=offer_id,
            pool_id=pool_id,
            new_owner_id=new_owner_id,
            outcome=outcome,
            reason=reason,
            note=note,
            proposal=proposal,
        )
        if effect
        else None
    )
    # Commission ranks this transition closes: the unit passes on once the state is written.
    closed_ranks = (
        [proposal]
        if decides_proposal and action != "propose" and proposal and proposal.rank is not None
        else []
    )
    if before == "proposed" and not decides_proposal:
        closed = _close_open_proposal(
            session,
            referral,
            actor=actor,
            now=now,
            why=f"Orientation {STATE_LABELS[t.target].lower()}",
        )
        closed_ranks += [p for p in closed if p.rank is not None]
    if action in RELEASE_ON and before not in HELP_DELIVERED_STATES:
        _release_units(session, referral, now=now)
    referral.state = t.target
    referral.state_changed_at = now
    session.flush()  # frees the "one open referral per frein" slot before a transfer inserts
    record_event(
        session,
        referral,
        from_state=before,
        action=action,
        actor=actor,
        at=now,
        reason=reason or outcome,
        note=note,
    )
    _AFTER.get(action, _nothing)(session, settings, referral, actor=actor, now=now, targets=targets)
    if closed_ranks:
        # A commission's unit never stays on a closed rank: attributed, the other ranks are
        # withdrawn; otherwise the next rank still waiting gets it (commission_ranks).
        from engine.referrals.commission_ranks import unit_moved_on

        for closed_rank in closed_ranks:
            unit_moved_on(session, settings, closed_rank, actor=actor, clock=clock)
    return referral


def _check_payload(t: Transition, payload: dict[str, Any]) -> None:
    """Refuse the stored fields the action does not take (a form cannot smuggle one in)."""
    for name, value in payload.items():
        if value is not None and name not in t.takes:
            raise Refused(
                f"le champ « {PAYLOAD_LABELS[name]} » ne s'applique pas à l'action "
                f"« {t.label.lower()} »"
            )


def _check_open_proposal(proposal: m.AllocationProposal | None, referral: m.Referral) -> None:
    if proposal is None or proposal.status != "proposed" or proposal.referral_id != referral.id:
        raise TransitionError("cette proposition a déjà été traitée")


# --- who may act ----------------------------------------------------------------------


def _check_actor(
    actor: Actor,
    t: Transition,
    ref: m.Referral,
    *,
    session: Session | None = None,
    proposal: m.AllocationProposal | None = None,
) -> None:
    if actor.kind == "system":
        if not (t.system_only or t.dedicated or t.action in ("refuse", "cancel")):
            raise Forbidden("action réservée aux personnes")
        return
    if t.system_only:
        raise Forbidden("cette action est réservée au système")
    if actor.kind == "partner_link":
        offer = ref.offer
        if (
            t.action not in ("partner_accept", "refuse")
            or offer is None
            or offer.partner_id != actor.partner_id
        ):
            raise Forbidden("ce lien ne permet pas cette action")
        return
    user = actor.user
    if user is not None and can(user, t.action, ref):
        return
    if (
        user is not None
        and session is not None
        and proposal is not None
        and proposal.rank is not None
        and t.action in ("validate", "decline_proposal")
        and _may_decide_commission(session, user, proposal, ref)
    ):
        return
    raise Forbidden("vous ne pouvez pas faire cette action sur cette orientation")


def _may_decide_commission(
    session: Session, user: m.StaffUser, proposal: m.AllocationProposal, ref: m.Referral
) -> bool:
    """A commission examines candidates of every territory its pool serves: a coordinator of
    one of them records its decision on any rank (``commission_ranks.may_decide``)."""
    from engine.referrals.commission_ranks import may_decide

    pool = session.get(m.SlotPool, proposal.pool_id)
    return pool is not None and may_decide(session, user, pool, ref)


# --- targets --------------------------------------------------------------------------


def _territory_code(session: Session, ref: m.Referral) -> str | None:
    if ref.territory_id is None:
        return None
    return session.scalar(select(m.Territory.code).where(m.Territory.id == ref.territory_id))


def direct_offer(session: Session, ref: m.Referral, offer_id: int) -> m.Offer:
    """An offer a referral may be sent to directly: it exists, its partner covers the
    referral's territory, and it is not a counted pool (those go through the waitlist)."""
    offer = session.get(m.Offer, offer_id)
    if offer is None:
        raise Refused("offre de partenaire inconnue")
    if offer.slot_based:
        raise Refused(
            f"« {offer.name} » a des places comptées : mettez l'orientation en attente de place, "
            "la place est attribuée par la revue des attributions"
        )
    partner = session.get(m.Partner, offer.partner_id)
    code = _territory_code(session, ref)
    if partner is None or not (partner.coverage is None or (code and code in partner.coverage)):
        raise Refused(f"« {offer.name} » n'intervient pas sur le territoire de cette orientation")
    return offer


def waitlist_pool(session: Session, ref: m.Referral, pool_id: int) -> m.SlotPool:
    """A pool whose scope covers the referral's territory."""
    pool = session.get(m.SlotPool, pool_id)
    if pool is None:
        raise Refused("dispositif inconnu")
    code = _territory_code(session, ref)
    if not (pool.scope is None or (code and code in pool.scope)):
        raise Refused(f"« {pool.name} » ne couvre pas le territoire de cette orientation")
    return pool


def transfer_owner(session: Session, ref: m.Referral, user_id: int) -> m.StaffUser:
    """A new owner: an active chargé·e of the referral's territory and domain, or its
    coordination (the national queue for referrals outside the territories)."""
    owner = session.get(m.StaffUser, user_id)
    ok = (
        owner is not None
        and owner.active
        and (
            (
                owner.role == "officer"
                and ref.territory_id is not None
                and owner.territory_id == ref.territory_id
                and owner.domain == ref.domain
            )
            or (
                owner.role == "coordinator"
                and (
                    owner.territory_id == ref.territory_id
                    if ref.territory_id is not None
                    else owner.national_queue
                )
            )
        )
    )
    if not ok or owner is None:
        raise Refused(
            "choisissez un·e chargé·e de partenariats du territoire et du domaine de "
            "l'orientation, ou sa coordination"
        )
    return owner


# --- effects, before the state changes ------------------------------------------------


def _take(session, settings, ref, *, actor, **_):  # type: ignore[no-untyped-def]
    if actor.user is not None and actor.user.role == "officer":
        ref.owner_user_id, ref.owner_kind = actor.user.id, "officer"


def _refer(session, settings, ref, *, now, offer_id, **_):  # type: ignore[no-untyped-def]
    offer = direct_offer(session, ref, offer_id)
    ref.offer_id = offer.id
    ref.pool_id = None
    ref.due_at = now + timedelta(days=settings.partner_answer_days)
    ref.reminders_sent = 0


def _waitlist(session, settings, ref, *, pool_id, **_):  # type: ignore[no-untyped-def]
    pool = waitlist_pool(session, ref, pool_id)
    ref.pool_id, ref.offer_id = pool.id, pool.offer_id


def _propose(session, settings, ref, *, proposal, **_):  # type: ignore[no-untyped-def]
    pool = session.get(m.SlotPool, proposal.pool_id)
    assert pool is not None
    ref.pool_id, ref.offer_id, ref.units_needed = pool.id, pool.offer_id, proposal.units


def _validate(session, settings, ref, *, actor, now, proposal, **_):  # type: ignore[no-untyped-def]
    pool = dialect.get_locked(session, m.SlotPool, proposal.pool_id)  # one validator a pool
    assert pool is not None
    taken = select(m.SlotAssignment.unit_id).where(m.SlotAssignment.active)
    P = m.AllocationProposal
    # Units a commission is examining belong to their shortlist: never taken by another.
    held = select(P.unit_no).where(
        P.pool_id == pool.id, P.rank.is_not(None), P.status == "proposed", P.id != proposal.id
    )
    free_units = (
        select(m.SlotUnit.id)
        .where(
            m.SlotUnit.pool_id == pool.id,
            m.SlotUnit.id.not_in(taken),
            m.SlotUnit.unit_no.not_in(held),
        )
        .order_by(m.SlotUnit.unit_no != (proposal.unit_no or 0), m.SlotUnit.unit_no)
        .limit(proposal.units)
    )
    free = session.scalars(free_units).all()
    if proposal.unit_no is not None and not session.scalar(
        select(m.SlotUnit.id).where(
            m.SlotUnit.pool_id == pool.id,
            m.SlotUnit.unit_no == proposal.unit_no,
            m.SlotUnit.id.not_in(taken),
        )
    ):
        raise TransitionError(
            f"l'unité n° {proposal.unit_no} de « {pool.name} » est déjà attribuée"
        )
    if len(free) < proposal.units:
        raise TransitionError(
            f"plus assez de places dans « {pool.name} » : {len(free)} libre(s), "
            f"{proposal.units} nécessaire(s)"
        )
    for unit_id in free:
        session.add(
            m.SlotAssignment(
                unit_id=unit_id,
                referral_id=ref.id,
                proposal_id=proposal.id,
                active=True,
                created_at=now,
            )
        )
    _decide(proposal, "validated", actor, now)
    return pool


def _decline(session, settings, ref, *, actor, now, note, proposal, **_):  # type: ignore[no-untyped-def]
    if not note:
        raise TransitionError("indiquez pourquoi la proposition est déclinée")
    _decide(proposal, "declined", actor, now, reason=note)


def _expire_proposal(session, settings, ref, *, actor, now, proposal, **_):  # type: ignore[no-untyped-def]
    _decide(proposal, "expired", actor, now)


def _close(session, settings, ref, *, outcome, **_):  # type: ignore[no-untyped-def]
    ref.outcome = outcome


def _refuse(session, settings, ref, *, reason, note, **_):  # type: ignore[no-untyped-def]
    ref.refusal_reason, ref.refusal_note = reason, note


def _transfer(session, settings, ref, *, new_owner_id, offer_id, **_):  # type: ignore[no-untyped-def]
    if new_owner_id is None and offer_id is None:
        raise TransitionError("choisissez la personne ou le partenaire qui reprend l'orientation")
    owner = transfer_owner(session, ref, new_owner_id) if new_owner_id is not None else None
    offer = direct_offer(session, ref, offer_id) if offer_id is not None else None
    return owner, offer


_EFFECTS: dict[str, Callable[..., Any]] = {
    "take": _take,
    "refer": _refer,
    "waitlist": _waitlist,
    "propose": _propose,
    "validate": _validate,
    "decline_proposal": _decline,
    "expire_proposal": _expire_proposal,
    "close": _close,
    "refuse": _refuse,
    "transfer": _transfer,
}


def _decide(
    prop: m.AllocationProposal, status: str, actor: Actor, now: datetime, reason: str | None = None
) -> None:
    prop.status, prop.decided_at = status, now
    prop.decided_by = actor.user.id if actor.user else None
    if reason is not None:
        prop.decline_reason = reason


def _close_open_proposal(
    session: Session, ref: m.Referral, *, actor: Actor, now: datetime, why: str
) -> list[m.AllocationProposal]:
    """A referral that leaves "proposed" by another way (refused, cancelled) closes its
    proposal, so the review page no longer lists it and its units are not held."""
    closed = list(
        session.scalars(
            select(m.AllocationProposal).where(
                m.AllocationProposal.referral_id == ref.id,
                m.AllocationProposal.status == "proposed",
            )
        ).all()
    )
    for prop in closed:
        _decide(prop, "declined", actor, now, reason=why)
    return closed


def _release_units(session: Session, ref: m.Referral, *, now: datetime) -> int:
    """Give back the units a referral holds (it ended before the help was delivered)."""
    result = session.execute(
        update(m.SlotAssignment)
        .where(m.SlotAssignment.referral_id == ref.id, m.SlotAssignment.active)
        .values(active=False, released_at=now)
    )
    return cast(CursorResult[Any], result).rowcount


# --- effects, after the state and the event are written -------------------------------


def _nothing(*_a, **_k) -> None:  # type: ignore[no-untyped-def]
    return None


def _after_refer(session, settings, ref, *, now, **_):  # type: ignore[no-untyped-def]
    messages.queue_partner_orientation(session, settings, ref, now=now)


def _after_validate(session, settings, ref, *, now, targets, **_):  # type: ignore[no-untyped-def]
    messages.queue_slot_validated(session, settings, ref, targets, now=now)


def _after_transfer(session, settings, ref, *, actor, now, targets, **_):  # type: ignore[no-untyped-def]
    owner, offer = targets
    new = m.Referral(
        frein_id=ref.frein_id,
        salarie_id=ref.salarie_id,
        chantier_id=ref.chantier_id,
        territory_id=ref.territory_id,
        programme=ref.programme,
        domain=ref.domain,
        thematique=ref.thematique,
        state="new",
        owner_kind=(
            ("officer" if owner.role == "officer" else "coordinator") if owner else ref.owner_kind
        ),
        owner_user_id=owner.id if owner else ref.owner_user_id,
        offer_id=offer.id if offer else None,
        priority=ref.priority,
        priority_breakdown=ref.priority_breakdown,
        reasons=[*ref.reasons, {"code": "transferred", "from_referral": ref.id}],
        explanation=f"Transférée depuis l'orientation n° {ref.id}. " + ref.explanation,
        suggestions=ref.suggestions,
        transferred_from_id=ref.id,
        created_at=now,
        state_changed_at=now,
        due_at=ref.due_at,
    )
    session.add(new)
    session.flush()
    record_event(
        session,
        new,
        from_state=None,
        action="transfer",
        actor=actor,
        at=now,
        note=f"depuis l'orientation n° {ref.id}",
    )


def _answering_partner(session: Session, actor: Actor) -> m.Partner | None:
    """The partner answering through its signed link or a partner contact's account."""
    if actor.kind == "partner_link" and actor.partner_id is not None:
        return session.get(m.Partner, actor.partner_id)
    if actor.user is not None and actor.user.role == "partner_contact" and actor.user.partner_id:
        return session.get(m.Partner, actor.user.partner_id)
    return None


def _after_partner_answer(session, settings, ref, *, actor, now, **_):  # type: ignore[no-untyped-def]
    """The team hears the partner's answer (an accept, or a refusal by the partner)."""
    partner = _answering_partner(session, actor)
    if partner is not None:
        messages.queue_partner_answered(
            session,
            settings,
            ref,
            partner_name=partner.name,
            accepted=ref.state == "accepted",
            now=now,
        )


_AFTER = {
    "refer": _after_refer,
    "validate": _after_validate,
    "transfer": _after_transfer,
    "partner_accept": _after_partner_answer,
    "refuse": _after_partner_answer,  # a refusal by the team itself tells no one
}
