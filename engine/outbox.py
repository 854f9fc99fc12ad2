"""Writing messages to the transactional outbox.

Why an outbox: the row is written in the same transaction as the change that causes it, so a
crash can neither lose the message (change committed, mail never queued) nor send it for a
change that rolled back. A unique idempotency key makes writing twice a no-op, and the relay
(``engine.relay``) turns rows into emails. The context is validated against the kind's
declaration here, before commit, so a sensitive detail fails the use case instead of
reaching a mailbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine import models as m
from engine.clock import utcnow
from notifications.kinds import CRITICAL_KINDS, validate_context

# Defaults when a user has not chosen: new referrals go into the chargé·e's daily digest.
DEFAULT_MODES: dict[str, str] = {"new_referrals": "digest"}


def preference_mode(session: Session, user_id: int | None, kind: str) -> str:
    """immediate, digest or off — critical kinds are never off."""
    mode = DEFAULT_MODES.get(kind, "immediate")
    if user_id is not None:
        chosen = session.scalar(
            select(m.NotificationPreference.mode).where(
                m.NotificationPreference.user_id == user_id, m.NotificationPreference.kind == kind
            )
        )
        if chosen:
            mode = chosen
    if kind in CRITICAL_KINDS and mode == "off":
        mode = "immediate"
    return mode


def enqueue(
    session: Session,
    *,
    kind: str,
    key: str,
    to_address: str,
    context: dict[str, Any],
    base_url: str,
    recipient_user_id: int | None = None,
    due_at: datetime | None = None,
    mode: str | None = None,
) -> bool:
    """Queue one message; returns False when the key was already queued (idempotent)."""
    clean = validate_context(kind, context, base_url=base_url)
    mode = mode or preference_mode(session, recipient_user_id, kind)
    if mode == "off":
        return False
    row = {
        "idempotency_key": key,
        "kind": kind,
        "recipient_user_id": recipient_user_id,
        "to_address": to_address,
        "context": clean,
        "delivery": mode,
        "status": "pending",
        "due_at": due_at or utcnow(),
        "attempts": 0,
        "created_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = ins(m.OutboxMessage).values(**row).on_conflict_do_nothing(index_elements=["idempotency_key"])
    return bool(session.execute(stmt).rowcount)
