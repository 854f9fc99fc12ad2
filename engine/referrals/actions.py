"""Use cases on one referral, as a person performs them: a lifecycle action, or an owner change.

Why a use case around the door: the page, the API and the bulk queue action all need the same
preamble — load the referral under a lock, answer "not found" when it is out of the user's
scope, detect a stale edit (the version the user saw), refuse the actions that belong to
their own use case (the allocation review, the flows) — before ``apply_transition`` checks
the table, the target and runs the effects. The caller's unit of work commits.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access.permissions import can
from engine.domain.clock import Clock
from engine.domain.errors import Conflict, Forbidden, NotFound, Refused
from engine.domain.lifecycle import BY_ACTION, OPEN_STATES, TransitionError
from engine.referrals.transitions import (
    Actor,
    apply_transition,
    clean_note,
    record_event,
    transfer_owner,
)
from engine.store import dialect
from engine.store import models as m
from engine.store.settings import Settings
from matching.rules import load_rules

__all__ = [
    "Actor",
    "NotFound",
    "StaleEdit",
    "assign",
    "flag_health_urgency",
    "load_for_update",
    "record_event",
    "transition",
]


class StaleEdit(Conflict):
    """Someone else changed the referral since the user loaded it."""

    def __init__(self, current_version: int) -> None:
        super().__init__(
            "Cette orientation a été modifiée par quelqu'un d'autre pendant que vous la "
            "consultiez. Rechargez la page : vos saisies n'ont pas été enregistrées."
        )
        self.current_version = current_version


def load_for_update(session: Session, referral_id: int) -> m.Referral:
    ref = dialect.get_locked(session, m.Referral, referral_id)
    if ref is None:
        raise NotFound("orientation introuvable")
    return ref


def _load_in_scope(
    session: Session, referral_id: int, actor: Actor, action: str, expected_version: int | None
) -> m.Referral:
    """The referral, locked; out of scope is NotFound, a role without the right is Forbidden
    (before the version is compared: a stale form must not hide a missing right)."""
    ref = load_for_update(session, referral_id)
    if actor.user is not None and not can(actor.user, "read", ref):
        raise NotFound("orientation introuvable")
    if actor.user is not None and not can(actor.user, action, ref):
        raise Forbidden("vous ne pouvez pas faire cette action sur cette orientation")
    if expected_version is not None and ref.version != expected_version:
        raise StaleEdit(ref.version)
    return ref


def transition(
    session: Session,
    settings: Settings,
    referral_id: int,
    action: str,
    *,
    actor: Actor,
    clock: Clock,
    expected_version: int | None = None,
    outcome: str | None = None,
    reason: str | None = None,
    note: str | None = None,
    offer_id: int | None = None,
    pool_id: int | None = None,
    new_owner_id: int | None = None,
) -> m.Referral:
    """A person's lifecycle action on one referral (case page, API, bulk take, partner link).

    Raises NotFound / Forbidden / StaleEdit / Refused, each with a French message."""
    ref = _load_in_scope(session, referral_id, actor, action, expected_version)
    t = BY_ACTION.get(action)
    if t is not None and t.dedicated:
        if t.system_only:
            raise Forbidden("cette action est réservée au système")
        raise Refused("une place proposée se valide ou se décline depuis la page « Attributions »")
    return apply_transition(
        session,
        settings,
        ref,
        action,
        actor=actor,
        clock=clock,
        note=note,
        outcome=outcome,
        reason=reason,
        offer_id=offer_id,
        pool_id=pool_id,
        new_owner_id=new_owner_id,
    )


def assign(
    session: Session,
    referral_id: int,
    *,
    actor_user: m.StaffUser,
    assignee_id: int,
    expected_version: int | None,
    clock: Clock,
) -> m.Referral:
    """Give one open referral to an active chargé·e of its territory and domain
    (coordinators only). Not a state change: an owner change, with its event."""
    actor = Actor.of(actor_user)
    try:
        ref = _load_in_scope(session, referral_id, actor, "assign", expected_version)
    except Forbidden:
        raise Forbidden("seule la coordination peut attribuer une orientation") from None
    if ref.state not in OPEN_STATES:
        raise TransitionError("une orientation terminée ne peut pas être attribuée")
    assignee = transfer_owner(session, ref, assignee_id)
    if assignee.role != "officer":
        raise TransitionError("choisissez un·e chargé·e de partenariats du territoire")
    ref.owner_user_id, ref.owner_kind = assignee.id, "officer"
    session.flush()
    record_event(
        session,
        ref,
        from_state=ref.state,
        action="assign",
        actor=actor,
        at=clock.now(),
        note=f"attribuée à {assignee.display_name}",
    )
    return ref


HEALTH_URGENCY_CODE = "health_urgency"


def flag_health_urgency(
    session: Session,
    settings: Settings,
    referral_id: int,
    *,
    actor_user: m.StaffUser,
    expected_version: int | None,
    clock: Clock,
    note: str | None = None,
) -> m.Referral:
    """A santé chargé·e (or the coordination) signals a health urgency of the person.

    Not a state change: the person's flag, then the grid's « urgence santé » criterion
    counted at once — each open referral of the person gains its points and its line in
    the breakdown (the allocation reads the flag itself) — and an event on this referral."""
    actor = Actor.of(actor_user)
    note = clean_note(note)
    ref = _load_in_scope(session, referral_id, actor, "flag_health_urgency", expected_version)
    salarie = session.get(m.Salarie, ref.salarie_id)
    assert salarie is not None
    if salarie.health_urgency:
        raise Refused("une urgence santé est déjà signalée pour cette personne")
    if ref.state not in OPEN_STATES:
        raise TransitionError("une orientation terminée ne peut plus porter de signalement")
    salarie.health_urgency = True
    points = load_rules(settings.rules_file).grid.health_urgency
    line = [HEALTH_URGENCY_CODE, f"Urgence santé signalée : +{points}", points]
    for open_ref in session.scalars(
        select(m.Referral).where(
            m.Referral.salarie_id == salarie.id, m.Referral.state.in_(OPEN_STATES)
        )
    ).all():
        breakdown = list(open_ref.priority_breakdown or [])
        if points > 0 and all(item[0] != HEALTH_URGENCY_CODE for item in breakdown):
            open_ref.priority_breakdown = [*breakdown, line]
            open_ref.priority += points
    session.flush()
    record_event(
        session,
        ref,
        from_state=ref.state,
        action="flag_health_urgency",
        actor=actor,
        at=clock.now(),
        note=note,
    )
    return ref
