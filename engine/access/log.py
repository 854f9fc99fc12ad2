"""The access log of case files: written on every read, listed for those who may audit it.

Why accounts by name and role: the log is read by the national admin to answer "who read this
person's file, and why"; an e-mail address says less than a name and a role, and an export
must not spread the staff's addresses. People appear by their pseudonymous reference only.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from engine.access.permissions import can
from engine.domain.clock import as_utc
from engine.domain.errors import Forbidden
from engine.domain.labels import ROLE_LABELS
from engine.store import models as m

PARIS = ZoneInfo("Europe/Paris")
PARTNER_LINK = "lien"  # the account filter's value for reads through a partner's signed link
EXPORT_MAX = 100_000  # rows of one CSV export
CSV_HEADER = (
    "Date (heure de Paris)",
    "Compte",
    "Rôle",
    "Référence de la personne",
    "Motif",
    "Identité affichée",
)


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
    user_name: str  # the account's display name (or the partner's, for a signed link)
    user_role: str
    reference: str
    purpose: str
    with_identity: bool

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.user_role, self.user_role)


@dataclass
class AccessFilters:
    reference: str | None = None  # a person's pseudonymous reference (SAL-…)
    account: str | None = None  # a staff user id, or PARTNER_LINK
    date_from: date | None = None  # first day, Paris time
    date_to: date | None = None  # last day, Paris time (included)
    purpose: str | None = None


def _paris_midnight(day: date) -> datetime:
    """Midnight of ``day`` in Paris, in UTC: SQLite compares stored UTC times as text."""
    return datetime.combine(day, time(0, 0), tzinfo=PARIS).astimezone(UTC)


def _filtered(stmt: Select, f: AccessFilters) -> Select:  # type: ignore[type-arg]
    A = m.AccessLog
    if f.reference:
        stmt = stmt.where(m.Salarie.reference == f.reference.strip().upper())
    if f.account == PARTNER_LINK:
        stmt = stmt.where(A.user_id.is_(None))
    elif f.account:
        stmt = stmt.where(A.user_id == int(f.account) if f.account.isdigit() else A.id < 0)
    if f.date_from is not None:
        stmt = stmt.where(A.at >= _paris_midnight(f.date_from))
    if f.date_to is not None:
        stmt = stmt.where(A.at < _paris_midnight(f.date_to + timedelta(days=1)))
    if f.purpose:
        stmt = stmt.where(A.purpose == f.purpose)
    return stmt


def _rows_stmt(f: AccessFilters) -> Select:  # type: ignore[type-arg]
    A = m.AccessLog
    stmt = (
        select(
            A.id,
            A.at,
            func.coalesce(m.StaffUser.display_name, A.reader),
            func.coalesce(m.StaffUser.role, "partner_link"),
            m.Salarie.reference,
            A.purpose,
            A.with_identity,
        )
        .outerjoin(m.StaffUser, m.StaffUser.id == A.user_id)
        .join(m.Salarie, m.Salarie.id == A.salarie_id)
        .order_by(A.id.desc())
    )
    return _filtered(stmt, f)


def _check(user: m.StaffUser) -> None:
    if not can(user, "view_access_log"):
        raise Forbidden("réservé à l'administration nationale")


def access_log(
    session: Session,
    user: m.StaffUser,
    *,
    before_id: int | None = None,
    limit: int = 100,
    filters: AccessFilters | None = None,
) -> tuple[list[AccessRow], int | None]:
    """Newest access-log rows first matching ``filters``, keyset by id; national admin only."""
    _check(user)
    stmt = _rows_stmt(filters or AccessFilters()).limit(limit + 1)
    if before_id is not None:
        stmt = stmt.where(m.AccessLog.id < before_id)
    rows = [
        AccessRow(r[0], as_utc(r[1]), r[2], r[3], r[4], r[5], r[6])
        for r in session.execute(stmt).all()
    ]
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        nxt = rows[-1].id
    return rows, nxt


def count_access_log(session: Session, user: m.StaffUser, filters: AccessFilters) -> int:
    """How many rows match ``filters`` (the page's count)."""
    _check(user)
    A = m.AccessLog
    stmt = select(func.count()).select_from(A).join(m.Salarie, m.Salarie.id == A.salarie_id)
    return int(session.scalar(_filtered(stmt, filters)) or 0)


def access_log_options(
    session: Session, user: m.StaffUser
) -> tuple[list[tuple[str, str]], list[str]]:
    """The filters' choices: accounts that read a file — (value, "name (role)") — and the
    purposes recorded."""
    _check(user)
    A = m.AccessLog
    accounts = [
        (str(uid), f"{name} ({ROLE_LABELS.get(role, role)})")
        for uid, name, role in session.execute(
            select(m.StaffUser.id, m.StaffUser.display_name, m.StaffUser.role)
            .where(m.StaffUser.id.in_(select(A.user_id).where(A.user_id.is_not(None))))
            .order_by(m.StaffUser.display_name, m.StaffUser.id)
        ).all()
    ]
    if session.scalar(select(A.id).where(A.user_id.is_(None)).limit(1)) is not None:
        accounts.append((PARTNER_LINK, "Partenaires (lien signé)"))
    purposes = list(session.scalars(select(A.purpose).distinct().order_by(A.purpose)))
    return accounts, purposes


def _cell(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def access_log_csv(session: Session, user: m.StaffUser, filters: AccessFilters) -> bytes:
    """The filtered rows as CSV (French header, UTF-8 with BOM for spreadsheets): accounts by
    name and role, people by pseudonymous reference, never an e-mail address."""
    _check(user)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(CSV_HEADER)
    for r in session.execute(_rows_stmt(filters).limit(EXPORT_MAX)).all():
        at = as_utc(r[1]).astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
        role = ROLE_LABELS.get(r[3], r[3])
        writer.writerow([at, _cell(r[2]), role, _cell(r[4]), _cell(r[5]), "oui" if r[6] else "non"])
    return ("\ufeff" + out.getvalue()).encode()
