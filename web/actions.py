"""Bulk queue actions: take several referrals, or (coordinators) assign them to a chargé·e.

Why here: the queue page sends many referrals in one POST; each is applied in its own unit of
work with the version the user saw, so one stale row does not cancel the others and the page
can say exactly how many were done. ``take`` is the lifecycle transition; ``assign`` changes
the owner only (no state change) and records an event like every other change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.domain.clock import Clock
from engine.domain.errors import DomainError
from engine.domain.lifecycle import TransitionError
from engine.referrals.actions import Actor, assign, transition
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings

MAX_SELECTION = 500  # referrals in one bulk action


@dataclass
class BulkResult:
    done: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (referral id, French reason)


def parse_selection(values: list[str]) -> list[tuple[int, int | None]]:
    """Checkbox values are "id:version"; malformed or out-of-range ones are ignored."""
    out = []
    for raw in values[:MAX_SELECTION]:
        ident, _, version = raw.partition(":")
        if ident.isdigit() and 0 < int(ident) <= m.MAX_ID:
            ok = version.isdigit() and int(version) <= m.MAX_ID
            out.append((int(ident), int(version) if ok else None))
    return out


def bulk_apply(
    db: Database,
    settings: Settings,
    user: m.StaffUser,
    action: str,
    selection: list[tuple[int, int | None]],
    *,
    assignee_id: int | None = None,
    clock: Clock,
) -> BulkResult:
    result = BulkResult()
    for referral_id, version in selection:
        try:
            with unit_of_work(db, immediate=True) as session:
                if action == "take":
                    transition(
                        session,
                        settings,
                        referral_id,
                        "take",
                        clock=clock,
                        actor=Actor.of(user),
                        expected_version=version,
                    )
                elif action == "assign":
                    if assignee_id is None:
                        raise TransitionError("choisissez la personne à qui attribuer")
                    assign(
                        session,
                        referral_id,
                        actor_user=user,
                        assignee_id=assignee_id,
                        expected_version=version,
                        clock=clock,
                    )
                else:
                    raise TransitionError("action inconnue")
            result.done += 1
        except DomainError as exc:
            result.failed.append((referral_id, str(exc)))
    return result
