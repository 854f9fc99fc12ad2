"""Writing messages to the transactional outbox.

Why an outbox: the row is written in the same transaction as the change that causes it, so a
crash can neither lose the message (change committed, mail never queued) nor send it for a
change that rolled back. A unique idempotency key makes writing twice a no-op, and the relay
(``engine.outbox.relay``) turns rows into emails. The context is validated against the kind's
declaration here, before commit, so a sensitive detail fails the use case instead of
reaching a mailbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select
from sqlalchemy.orm import Session

from engine.store import dialect
from engine.store import models as m
from notifications.fields import Day, ListOf
from notifications.kinds import (
    CRITICAL_KINDS,
    KINDS,
    PARTNER_DIGESTIBLE_KINDS,
    validate_context,
)

# Kinds whose context names a partner of the directory (``partner_name``).
PARTNER_KINDS = frozenset({*PARTNER_DIGESTIBLE_KINDS, "partner_answered"})


def directory_names(
    session: Session, messages: Iterable[tuple[str, Mapping[str, Any]]]
) -> frozenset[str]:
    """The partner names of these (kind, context) pairs that are the directory's own.

    Why: partners name themselves after their field ("Addictions France"); the email guard
    accepts such a name as is only when the caller vouches it is a partner of the table
    (``notifications.fields.PartnerName``), so it is read here, per batch, and passed on.
    """
    names: set[str] = set()
    for kind, ctx in messages:
        if kind in PARTNER_KINDS:
            names.add(str(ctx.get("partner_name")))
        elif kind == "partner_digest":
            names.update(str(item.get("partner_name")) for item in ctx.get("items") or ())
    names.discard("None")
    if not names:
        return frozenset()
    return frozenset(session.scalars(select(m.Partner.name).where(m.Partner.name.in_(names))))


# Defaults when a user has not chosen. New referrals go into the chargé·e's daily digest.
# Partner orientations and reminders go into one partner digest per contact and day (a
# contact once got 673 mails in one run); a contact who wants each one at once chooses
# "immediate". A partner's answer goes into the owner's daily digest: the queue and the case
# page show it at once, and nothing in it needs action within the hour.
DEFAULT_MODES: dict[str, str] = {
    "new_referrals": "digest",
    "partner_orientation": "digest",
    "partner_reminder": "digest",
    "partner_answered": "digest",
}


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
    now: datetime,
    recipient_user_id: int | None = None,
    due_at: datetime | None = None,
    mode: str | None = None,
    referral_id: int | None = None,
) -> bool:
    """Queue one message; returns False when the key was already queued (idempotent)."""
    known = directory_names(session, [(kind, context)])
    clean = to_stored_context(
        validate_context(kind, context, base_url=base_url, partner_names=known)
    )
    mode = mode or preference_mode(session, recipient_user_id, kind)
    if mode == "off":
        return False
    row = {
        "idempotency_key": key,
        "kind": kind,
        "recipient_user_id": recipient_user_id,
        "referral_id": referral_id,
        "to_address": to_address,
        "context": clean,
        "delivery": mode,
        "status": "pending",
        "due_at": due_at or now,
        "attempts": 0,
        "created_at": now,
    }
    stmt = dialect.insert_ignoring(
        session, m.OutboxMessage, index_elements=["idempotency_key"]
    ).values(**row)
    return bool(cast(CursorResult[Any], session.execute(stmt)).rowcount)


def enqueue_many(
    session: Session, messages: list[dict[str, Any]], *, base_url: str, now: datetime
) -> int:
    """Queue many messages in one statement (bulk paths: intake, reminders, allocation).

    Each item has the keyword arguments of ``enqueue``. Preferences are read once for all
    recipients. Returns the number of rows actually written (duplicates are skipped).
    """
    if not messages:
        return 0
    known = directory_names(session, [(msg["kind"], msg["context"]) for msg in messages])
    users = {msg.get("recipient_user_id") for msg in messages} - {None}
    chosen: dict[tuple[int | None, str], str] = {}
    if users:
        for user_id, kind_, mode_ in session.execute(
            select(
                m.NotificationPreference.user_id,
                m.NotificationPreference.kind,
                m.NotificationPreference.mode,
            ).where(m.NotificationPreference.user_id.in_(users))
        ).all():
            chosen[(user_id, kind_)] = mode_
    rows = []
    for msg in messages:
        kind, uid = msg["kind"], msg.get("recipient_user_id")
        mode = msg.get("mode") or chosen.get((uid, kind), DEFAULT_MODES.get(kind, "immediate"))
        if kind in CRITICAL_KINDS and mode == "off":
            mode = "immediate"
        if mode == "off":
            continue
        rows.append(
            {
                "idempotency_key": msg["key"],
                "kind": kind,
                "recipient_user_id": uid,
                "referral_id": msg.get("referral_id"),
                "to_address": msg["to_address"],
                "context": to_stored_context(
                    validate_context(kind, msg["context"], base_url=base_url, partner_names=known)
                ),
                "delivery": mode,
                "status": "pending",
                "due_at": msg.get("due_at") or now,
                "attempts": 0,
                "created_at": now,
            }
        )
    if not rows:
        return 0
    if dialect.is_postgresql(session):
        inserted = dialect.copy_insert_ignoring(
            session.connection(),
            m.table_of(m.OutboxMessage),
            rows,
            index_elements=["idempotency_key"],
            returning=["id"],
        )
        return len(inserted)
    stmt = dialect.insert_ignoring(session, m.OutboxMessage, index_elements=["idempotency_key"])
    written = 0
    for i in range(0, len(rows), 5000):
        # RETURNING counts the rows really inserted (rowcount is unreliable for executemany).
        written += len(
            session.execute(stmt.returning(m.OutboxMessage.id), rows[i : i + 5000]).all()
        )
    return written


def to_stored_context(context: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy: dates become ISO strings (in the items of a list too)."""
    return {k: _stored(v) for k, v in context.items()}


def _stored(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [to_stored_context(v) if isinstance(v, dict) else _stored(v) for v in value]
    return value


def from_stored_context(kind: str, context: dict[str, Any]) -> dict[str, Any]:
    """Inverse of ``to_stored_context`` for the kind's date fields (list items included)."""
    return _from_stored(KINDS[kind].fields, context)


def _from_stored(fields: Mapping[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in context.items():
        f = fields.get(k)
        if isinstance(f, Day) and isinstance(v, str):
            v = date.fromisoformat(v)
        elif isinstance(f, ListOf) and isinstance(v, list):
            sub = dict(f.fields)
            v = [_from_stored(sub, item) if isinstance(item, dict) else item for item in v]
        out[k] = v
    return out
