"""The access log of case files: written on every read, listed for those who may audit it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.access.permissions import can
from engine.domain.clock import as_utc
from engine.domain.errors import Forbidden
from engine.store import models as m


def record_read(
    session: Session,
    reader: m.StaffUser,
    salarie_id: int,
    *,
    at: datetime,
    purpose: str,
    with_identity: bool,
) -> None:
    """One row per read of a case file: who, which person, when, why, identity shown or not.
    The caller's unit of work commits it with the read."""
    session.add(
        m.AccessLog(
            user_id=reader.id,
            reader=reader.display_name[:80],
            salarie_id=salarie_id,
            at=at,
            purpose=purpose,
            with_identity=with_identity,
        )
    )


@dataclass
class AccessRow:
    id: int
    at: datetime
    user_email: str
    user_role: str
    reference: str
    purpose: str
    with_identity: bool


def access_log(
    session: Session, user: m.StaffUser, *, before_id: int | None = None, limit: int = 100
) -> tuple[list[AccessRow], int | None]:
    """Newest access-log rows first, keyset by id; national admin only (else PermissionError)."""
    if not can(user, "view_access_log"):
        raise Forbidden("réservé à l'administration nationale")
    A = m.AccessLog
    stmt = (
        select(
            A.id,
            A.at,
            func.coalesce(m.StaffUser.email, A.reader),
            func.coalesce(m.StaffUser.role, "partner_link"),
            m.Salarie.reference,
            A.purpose,
            A.with_identity,
        )
        .outerjoin(m.StaffUser, m.StaffUser.id == A.user_id)
        .join(m.Salarie, m.Salarie.id == A.salarie_id)
        .order_by(A.id.desc())
        .limit(limit + 1)
    )
    if before_id is not None:
        stmt = stmt.where(A.id < before_id)
    rows = [
        AccessRow(r[0], as_utc(r[1]), r[2], r[3], r[4], r[5], r[6])
        for r in session.execute(stmt).all()
    ]
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        nxt = rows[-1].id
    return rows, nxt
