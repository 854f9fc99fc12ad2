"""Notification preferences: per message kind, immediate, daily digest or off.

Why a use case: the rule "critical kinds are never off" is enforced here on write (and again
by the outbox on read), and every change leaves an audit row, whatever page or API asked.
Each role chooses for the kinds it can receive: a partner contact for the orientations and
reminders addressed to its structure (immediate, or the partner digest — never off: each
carries an answer deadline), the staff for every other kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.errors import Refused
from engine.domain.labels import PREFERENCE_MODE_LABELS
from engine.outbox.enqueue import preference_mode
from engine.store import models as m
from notifications.kinds import DIGESTIBLE_KINDS, KINDS, PARTNER_DIGESTIBLE_KINDS

MODE_LABELS = PREFERENCE_MODE_LABELS


class PreferenceError(Refused):
    """A refused preference (French message)."""


@dataclass(frozen=True)
class PreferenceRow:
    kind: str
    label: str
    critical: bool
    mode: str

    @property
    def modes(self) -> tuple[str, ...]:
        return ("immediate", "digest") if self.critical else ("immediate", "digest", "off")


def kinds_for(user: m.StaffUser) -> tuple[str, ...]:
    """The kinds a user may receive, hence choose for, in display order."""
    if user.role == "partner_contact":
        return PARTNER_DIGESTIBLE_KINDS
    return tuple(k for k in DIGESTIBLE_KINDS if k not in PARTNER_DIGESTIBLE_KINDS)


def get_preferences(session: Session, user: m.StaffUser) -> list[PreferenceRow]:
    """The effective mode of every kind a user can choose for (defaults included)."""
    return [
        PreferenceRow(
            kind, KINDS[kind].label, KINDS[kind].critical, preference_mode(session, user.id, kind)
        )
        for kind in kinds_for(user)
    ]


def set_preferences(
    session: Session, user: m.StaffUser, choices: dict[str, str], *, now: datetime
) -> int:
    """Save the user's choices; raise PreferenceError before writing anything if one is invalid.

    Returns how many kinds changed.
    """
    allowed = kinds_for(user)
    for kind, mode in choices.items():
        if kind not in allowed:
            raise PreferenceError(f"type de message inconnu : « {kind[:40]} »")
        if mode not in MODE_LABELS:
            raise PreferenceError(f"mode inconnu : « {mode[:40]} »")
        if mode == "off" and KINDS[kind].critical:
            raise PreferenceError(
                f"« {KINDS[kind].label} » est un message important : il ne peut pas être désactivé"
            )
    existing = {
        p.kind: p
        for p in session.scalars(
            select(m.NotificationPreference).where(m.NotificationPreference.user_id == user.id)
        )
    }
    changed = {}
    for kind, mode in choices.items():
        row = existing.get(kind)
        if row is None:
            if preference_mode(session, user.id, kind) == mode:
                continue  # the default already: nothing to store
            session.add(m.NotificationPreference(user_id=user.id, kind=kind, mode=mode))
        elif row.mode != mode:
            row.mode = mode
        else:
            continue
        changed[kind] = mode
    if changed:
        session.add(
            m.AuditLog(
                actor_user_id=user.id,
                actor_label=user.display_name[:80],
                action="set_notification_preferences",
                object_type="staff_user",
                object_id=str(user.id),
                details=changed,
                at=now,
            )
        )
    return len(changed)
