"""Who may see what and do what: one ``scope`` filter and one ``can`` check.

Why one place: every page, API route and use case asks the same two questions, so a
permission bug is fixed once. Anything out of scope is reported as "not found" by the
callers (404), never as "forbidden", so nobody learns that a case exists.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import Session

from engine.store import models as m

# Roles that may read a person's identity (names, contact details).
IDENTITY_ROLES = frozenset({"officer", "coordinator", "cip"})

PARTNER_VISIBLE_STATES = ("referred", "accepted", "in_progress", "closed", "refused", "expired")
# Actions a partner contact may take on referrals addressed to their organisation.
PARTNER_ACTIONS = frozenset({"partner_accept", "refuse", "start", "close"})
# Actions of the chargé·es and coordinators on the referrals of their scope.
OFFICER_ACTIONS = frozenset(
    {"take", "refer", "waitlist", "refuse", "close", "transfer", "cancel", "start"}
)
# Notes on a person's case (written on one orientation): read and written by the people who
# follow the person — never by a partner contact, whatever the orientation.
NOTE_ACTIONS = frozenset({"add_note", "read_notes"})
NOTE_ROLES = frozenset({"cip", "officer", "coordinator", "national_admin"})
COORDINATOR_ACTIONS = OFFICER_ACTIONS | {
    "validate",
    "decline_proposal",
    "assign",
    "allocate",
}


def referral_scope(user: m.StaffUser) -> ColumnElement[bool]:
    """A WHERE clause restricting ``referral`` rows to the user's scope."""
    R = m.Referral
    role = user.role
    if not user.active:
        return false()
    if role == "national_admin":
        return true()
    if role == "coordinator":
        if user.national_queue:
            return or_(R.territory_id.is_(None), R.owner_user_id == user.id)
        return or_(R.territory_id == user.territory_id, R.owner_user_id == user.id)
    if role == "officer":
        return or_(
            and_(R.territory_id == user.territory_id, R.domain == user.domain),
            R.owner_user_id == user.id,
        )
    if role == "cip":
        return R.chantier_id == user.chantier_id
    if role == "partner_contact":
        offer_ids = select(m.Offer.id).where(m.Offer.partner_id == user.partner_id)
        return and_(
            R.offer_id.in_(offer_ids),
            R.state.in_(PARTNER_VISIBLE_STATES),
        )
    return false()


def salarie_scope(user: m.StaffUser) -> ColumnElement[bool]:
    """A WHERE clause restricting ``salarie`` rows to people the user may read."""
    S = m.Salarie
    if not user.active:
        return false()
    if user.role == "national_admin":
        return true()
    if user.role == "cip":
        return S.chantier_id == user.chantier_id
    ids = select(m.Referral.salarie_id).where(referral_scope(user))
    return S.id.in_(ids)


def can(user: m.StaffUser, action: str, obj: object | None = None) -> bool:
    """May ``user`` perform ``action`` on ``obj``? Scope is checked too, not only the role."""
    if not user.active:
        return False
    role = user.role
    if action == "read_identity":
        return role in IDENTITY_ROLES and (obj is None or _in_scope(user, obj))
    if action == "view_access_log":
        return role == "national_admin"
    if action in ("allocate", "review_allocation"):
        return role in ("national_admin", "coordinator")
    if isinstance(obj, m.Referral):
        if not _in_scope(user, obj):
            return False
        if action == "request_reorientation":  # the chantier's CIP/ESP asks the owner
            return role == "cip"
        if action in NOTE_ACTIONS:  # the chantier's CIP/ESP, the chargé·es, the coordination
            return role in NOTE_ROLES
        if action == "flag_health_urgency":  # the santé chargé·e, or the coordination
            return role in ("national_admin", "coordinator") or (
                role == "officer" and user.domain == "sante"
            )
        if role == "national_admin":
            return action in COORDINATOR_ACTIONS or action == "read"
        if action == "read":
            return True
        if role == "coordinator":
            return action in COORDINATOR_ACTIONS
        if role == "officer":
            return action in OFFICER_ACTIONS
        if role == "partner_contact":
            return action in PARTNER_ACTIONS
        return False
    if isinstance(obj, m.Salarie):
        if action == "add_frein":
            return _may_add_frein(user, obj)
        return action == "read" and _in_scope(user, obj)
    return action == "read" and role != "partner_contact"


def _may_add_frein(user: m.StaffUser, person: m.Salarie) -> bool:
    """A new frein of a person: the chantier's CIP/ESP, the coordination of the chantier's
    territory (the national queue for chantiers outside the territories), the national team."""
    if user.role == "national_admin":
        return True
    if user.role == "cip":
        return person.chantier_id == user.chantier_id
    if user.role == "coordinator":
        territory = person.chantier.territory_id
        return territory is None if user.national_queue else territory == user.territory_id
    return False


def can_record_pathway(session: Session, user: m.StaffUser, person: m.Salarie) -> bool:
    """May ``user`` record a pathway fact (exit, housing, health, follow-up) on ``person``?

    The chantier's CIP/ESP, the coordination of the chantier's territory, the national team."""
    if not user.active:
        return False
    if user.role == "national_admin":
        return True
    if user.role == "cip":
        return person.chantier_id == user.chantier_id
    if user.role == "coordinator" and not user.national_queue:
        territory = session.scalar(
            select(m.Chantier.territory_id).where(m.Chantier.id == person.chantier_id)
        )
        return territory is not None and territory == user.territory_id
    if user.role == "coordinator":
        territory = session.scalar(
            select(m.Chantier.territory_id).where(m.Chantier.id == person.chantier_id)
        )
        return territory is None
    return False


def _in_scope(user: m.StaffUser, obj: object) -> bool:
    if user.role == "national_admin":
        return True
    if isinstance(obj, m.Referral):
        if user.role == "coordinator":
            if user.national_queue:
                return obj.territory_id is None or obj.owner_user_id == user.id
            return obj.territory_id == user.territory_id or obj.owner_user_id == user.id
        if user.role == "officer":
            return (
                obj.territory_id == user.territory_id and obj.domain == user.domain
            ) or obj.owner_user_id == user.id
        if user.role == "cip":
            return obj.chantier_id == user.chantier_id
        if user.role == "partner_contact":
            return (
                obj.offer is not None
                and obj.offer.partner_id == user.partner_id
                and obj.state in PARTNER_VISIBLE_STATES
            )
        return False
    if isinstance(obj, m.Salarie):
        if user.role == "cip":
            return obj.chantier_id == user.chantier_id
        # Role-level only: queries narrow people with salarie_scope(), which needs a session.
        return user.role in ("coordinator", "officer")
    return False
