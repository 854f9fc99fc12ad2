"""Use cases on one referral: every transition of the lifecycle, with its event and messages.

Why one function: each user action is one transaction that checks permission and scope,
checks the transition table, detects a stale edit (the version the user saw), writes the new
state, the event (from, to, actor, reason, note) and the outbox rows in the same commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import models as m
from engine.clock import utcnow
from engine.lifecycle import OPEN_STATES, STATE_LABELS, TransitionError, check_transition
from engine.links import make_partner_token
from engine.outbox import enqueue
from engine.permissions import can
from engine.settings import Settings


class NotFound(LookupError):
    """Missing or out of the user's scope: both look the same to the user (404)."""


class StaleEdit(RuntimeError):
    """Someone else changed the referral since the user loaded it."""

    def __init__(self, current_version: int) -> None:
        super().__init__(
            "Cette orientation a été modifiée par quelqu'un d'autre pendant que vous la "
            "consultiez. Rechargez la page : vos saisies n'ont pas été enregistrées."
        )
        self.current_version = current_version


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff user, or a flow / a partner link (user None, label set)."""

    user: m.StaffUser | None
    label: str

    @classmethod
    def system(cls, label: str) -> Actor:
        return cls(None, f"système : {label}")


def record_event(
    session: Session, referral: m.Referral, *, from_state: str | None, action: str,
    actor: Actor, reason: str | None = None, note: str | None = None,
) -> None:  # fmt: skip
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
            at=utcnow(),
        )  # fmt: skip
    )


def load_for_update(session: Session, referral_id: int) -> m.Referral:
    ref = session.get(
        m.Referral, referral_id, with_for_update=session.get_bind().dialect.name == "postgresql"
    )
    if ref is None:
        raise NotFound("orientation introuvable")
    return ref


def transition(
    session: Session,
    settings: Settings,
    referral_id: int,
    action: str,
    *,
    actor: Actor,
    expected_version: int | None = None,
    outcome: str | None = None,
    reason: str | None = None,
    note: str | None = None,
    offer_id: int | None = None,
    pool_id: int | None = None,
    new_owner_id: int | None = None,
) -> m.Referral:
    """Apply ``action`` to a referral, or raise NotFound / PermissionError / StaleEdit /
    TransitionError with a French message. The caller's unit of work commits."""
    ref = load_for_update(session, referral_id)
    if actor.user is not None:
        if not can(actor.user, "read", ref):
            raise NotFound("orientation introuvable")
        if not can(actor.user, action, ref):
            raise PermissionError("vous ne pouvez pas faire cette action sur cette orientation")
    if expected_version is not None and ref.version != expected_version:
        raise StaleEdit(ref.version)
    t = check_transition(
        ref.state,
        action,
        outcome=outcome,
        reason=reason,
        note=note,
        offer_id=offer_id,
        pool_id=pool_id,
    )
    before = ref.state
    now = utcnow()
    if action == "refer":
        offer = session.get(m.Offer, offer_id)
        if offer is None:
            raise TransitionError("offre de partenaire inconnue")
        ref.offer_id = offer.id
        ref.due_at = now + timedelta(days=settings.partner_answer_days)
        ref.reminders_sent = 0
    if action == "waitlist":
        pool = session.get(m.SlotPool, pool_id)
        if pool is None:
            raise TransitionError("dispositif inconnu")
        ref.pool_id = pool.id
        ref.offer_id = pool.offer_id
    if action == "take" and actor.user is not None and actor.user.role == "officer":
        ref.owner_user_id = actor.user.id
        ref.owner_kind = "officer"
    if action == "close":
        ref.outcome = outcome
    if action == "refuse":
        ref.refusal_reason, ref.refusal_note = reason, (note.strip() if note else None)
    if action == "transfer" and new_owner_id is None and offer_id is None:
        raise TransitionError("choisissez la personne ou le partenaire qui reprend l'orientation")
    ref.state = t.target
    ref.state_changed_at = now
    session.flush()  # frees the "one open referral per frein" slot before a transfer inserts
    record_event(
        session,
        ref,
        from_state=before,
        action=action,
        actor=actor,
        reason=reason or outcome,
        note=note,
    )
    if action == "transfer":
        _reopen_transferred(session, ref, actor=actor, new_owner_id=new_owner_id, offer_id=offer_id)
    if action == "refer":
        _notify_partner(session, settings, ref, reminder=False)
    return ref


def _reopen_transferred(
    session: Session,
    old: m.Referral,
    *,
    actor: Actor,
    new_owner_id: int | None,
    offer_id: int | None,
) -> m.Referral:
    owner = session.get(m.StaffUser, new_owner_id) if new_owner_id else None
    if new_owner_id and owner is None:
        raise TransitionError("destinataire du transfert inconnu")
    new = m.Referral(
        frein_id=old.frein_id, salarie_id=old.salarie_id, chantier_id=old.chantier_id,
        territory_id=old.territory_id, programme=old.programme, domain=old.domain,
        thematique=old.thematique, state="new",
        owner_kind=(("officer" if owner.role == "officer" else "coordinator") if owner else old.owner_kind),
        owner_user_id=owner.id if owner else old.owner_user_id, offer_id=offer_id,
        priority=old.priority, priority_breakdown=old.priority_breakdown,
        reasons=[*old.reasons, {"code": "transferred", "from_referral": old.id}],
        explanation=f"Transférée depuis l'orientation n° {old.id}. " + old.explanation,
        suggestions=old.suggestions, transferred_from_id=old.id,
    )  # fmt: skip
    session.add(new)
    session.flush()
    record_event(session, new, from_state=None, action="transfer", actor=actor)
    return new


def _notify_partner(
    session: Session, settings: Settings, ref: m.Referral, *, reminder: bool
) -> None:
    """Orientation (or reminder) to every active contact of the offer's partner."""
    offer = session.get(m.Offer, ref.offer_id)
    assert offer is not None
    partner = session.get(m.Partner, offer.partner_id)
    assert partner is not None
    salarie = session.get(m.Salarie, ref.salarie_id)
    territory = session.get(m.Territory, ref.territory_id) if ref.territory_id else None
    contacts = session.scalars(
        select(m.StaffUser).where(m.StaffUser.partner_id == partner.id, m.StaffUser.active)
    ).all()
    token = make_partner_token(
        settings.secret_key.get_secret_value(), referral_id=ref.id, partner_id=partner.id
    )
    expires = (utcnow() + timedelta(days=settings.partner_expiry_days)).date()
    for contact in contacts:
        kind = "partner_reminder" if reminder else "partner_orientation"
        ctx = {
            "recipient_name": contact.display_name,
            "preferences_url": f"{settings.base_url}/preferences",
            "partner_name": partner.name,
            "reference": salarie.reference if salarie else "",
            "action_url": f"{settings.base_url}/partenaire/reponse/{token}",
            "expires_on": expires,
        }
        if reminder:
            ctx["sent_on"] = ref.state_changed_at.date()
        else:
            ctx["territory"] = territory.name if territory else "Hors territoire"
        enqueue(
            session, kind=kind, key=f"{kind}:{ref.id}:{ref.version}:{ref.reminders_sent}:{contact.id}",
            to_address=contact.email, context=ctx, base_url=settings.base_url,
            recipient_user_id=contact.id,
        )  # fmt: skip


def assign(
    session: Session, referral_id: int, *, actor_user: m.StaffUser, assignee_id: int,
    expected_version: int | None,
) -> m.Referral:  # fmt: skip
    """Give one open referral to an active chargé·e of its territory (coordinators only)."""
    ref = load_for_update(session, referral_id)
    if not can(actor_user, "read", ref):
        raise NotFound("orientation introuvable")
    if not can(actor_user, "assign", ref):
        raise PermissionError("seule la coordination peut attribuer une orientation")
    if expected_version is not None and ref.version != expected_version:
        raise StaleEdit(ref.version)
    if ref.state not in OPEN_STATES:
        raise TransitionError("une orientation terminée ne peut pas être attribuée")
    assignee = session.get(m.StaffUser, assignee_id)
    if (
        assignee is None
        or not assignee.active
        or assignee.role != "officer"
        or assignee.territory_id != ref.territory_id
    ):
        raise TransitionError("choisissez un·e chargé·e de partenariats du territoire")
    ref.owner_user_id, ref.owner_kind = assignee.id, "officer"
    session.flush()
    record_event(
        session, ref, from_state=ref.state, action="assign",
        actor=Actor(actor_user, actor_user.email[:80]), note=f"attribuée à {assignee.display_name}",
    )  # fmt: skip
    return ref


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state)
