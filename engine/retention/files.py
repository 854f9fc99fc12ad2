"""Which files fall due: each person's last contact, exit, legal hold and anonymisation day.

Why one grouped query per table: the last contact is the latest dated fact recorded about
the person anywhere — the file's creation, a frein, an orientation or one of its events, a
note, a housing or health event, a follow-up — and at scale 50 there are millions of events;
one ``GROUP BY`` per table (not an ORM object per row) keeps a daily run within seconds.
Reading a file is not a contact with the person: the access log does not count.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.domain.clock import PARIS, as_utc
from engine.domain.lifecycle import OPEN_STATES
from engine.domain.vocabulary import FOLLOWUP_MONTHS
from engine.retention.policy import Policy
from engine.store import models as m
from matching.grid import add_months

CHUNK = 5_000  # ids per IN (...) list
FOLLOW_UP_MONTHS = max(FOLLOWUP_MONTHS)  # the CVG's last follow-up after exit


@dataclass(frozen=True, slots=True)
class FileDue:
    """One person's file as the retention sees it (ids and dates only)."""

    salarie_id: int
    chantier_id: int
    territory_id: int | None
    entry_date: date
    exit_date: date | None
    last_contact: date
    due_on: date  # the day the file may be anonymised (retention elapsed)
    held: bool  # legal hold: a counted place awaited or held, or a proposal pending
    notice_on: date | None  # the day the CIP/ESP were told
    announced: date | None  # the anonymisation day the notice announced

    @property
    def reference_day(self) -> date:
        """The later of the last contact and the exit."""
        return max(self.last_contact, self.exit_date or self.last_contact)

    def noticed_for_current_due(self) -> bool:
        """A notice was sent and no contact moved the due day past what it announced."""
        return self.announced is not None and self.due_on <= self.announced

    def may_be_anonymised(self, today: date) -> bool:
        return (
            not self.held
            and self.due_on <= today
            and self.announced is not None
            and self.announced <= today
            and self.noticed_for_current_due()
        )


def _day(value: date | datetime | None) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value).astimezone(PARIS).date()
    return value


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def _latest(
    session: Session, ids: list[int] | None, queries: list[Any], out: dict[int, date]
) -> None:
    """Fold each (salarie_id, max(day)) query into ``out``, restricted to ``ids`` if given."""
    for q, column in queries:
        parts = [None] if ids is None else list(_chunks(ids))
        for part in parts:
            stmt = q if part is None else q.where(column.in_(part))
            for sid, value in session.execute(stmt).all():
                day = _day(value)
                if day is not None and (sid not in out or day > out[sid]):
                    out[sid] = day


def last_contacts(session: Session, ids: list[int] | None = None) -> dict[int, date]:
    """The day of the latest fact recorded about each person (Paris days)."""
    R, E = m.Referral, m.ReferralEvent
    out: dict[int, date] = {}
    queries: list[Any] = [
        (select(m.Salarie.id, m.Salarie.created_at), m.Salarie.id),
    ]
    for model, column in (
        (m.Frein, m.Frein.created_at),
        (m.CaseNote, m.CaseNote.at),
        (m.HousingChange, m.HousingChange.created_at),
        (m.HealthEvent, m.HealthEvent.created_at),
        (m.FollowUp, m.FollowUp.created_at),
        (m.Referral, m.Referral.created_at),
    ):
        sid = model.salarie_id  # type: ignore[attr-defined]
        queries.append((select(sid, func.max(column)).group_by(sid), sid))
    queries.append(
        (
            select(R.salarie_id, func.max(E.at))
            .join(E, E.referral_id == R.id)
            .group_by(R.salarie_id),
            R.salarie_id,
        )
    )
    _latest(session, ids, queries, out)
    return out


def touched_years(session: Session, ids: list[int], today: date) -> set[int]:
    """The years whose figures could move if these files were anonymised: every year from a
    file's first dated record (its creation, a frein, an orientation or event, a pathway
    fact, a note, the exit) to its last — to this year while an orientation is still open.

    Why not from the entry: anonymising keeps each date's month, so who was accompanied, who
    entered or left in a month or year never changes; what can move is what depends on an
    exact instant (delays, deadlines at a period's end), and those are records."""
    R, E = m.Referral, m.ReferralEvent
    first: dict[int, date] = {}
    last: dict[int, date] = {}
    S, F, N, H, V, U = (
        m.Salarie, m.Frein, m.CaseNote, m.HousingChange, m.HealthEvent, m.FollowUp
    )  # fmt: skip
    for owner, column in (
        (S.id, S.created_at),
        (S.id, S.exit_date),
        (F.salarie_id, F.identified_at),
        (F.salarie_id, F.created_at),
        (N.salarie_id, N.at),
        (H.salarie_id, H.on),
        (V.salarie_id, V.on),
        (U.salarie_id, U.answered_on),
        (R.salarie_id, R.created_at),
    ):
        for part in _chunks(ids):
            q = (
                select(owner, func.min(column), func.max(column))
                .where(owner.in_(part))
                .group_by(owner)
            )
            _fold(session.execute(q).all(), first, last)
    for part in _chunks(ids):
        q = (
            select(R.salarie_id, func.min(E.at), func.max(E.at))
            .join(E, E.referral_id == R.id)
            .where(R.salarie_id.in_(part))
            .group_by(R.salarie_id)
        )
        _fold(session.execute(q).all(), first, last)
        for sid in session.scalars(
            select(R.salarie_id).where(R.salarie_id.in_(part), R.state.in_(OPEN_STATES)).distinct()
        ):
            last[sid] = today
    years: set[int] = set()
    for sid, low in first.items():
        years.update(range(low.year, max(last.get(sid, low), low).year + 1))
    return {y for y in years if y <= today.year}


def _fold(rows: Any, first: dict[int, date], last: dict[int, date]) -> None:
    for sid, low, high in rows:
        low, high = _day(low), _day(high)
        if low is not None and (sid not in first or low < first[sid]):
            first[sid] = low
        if high is not None and (sid not in last or high > last[sid]):
            last[sid] = high


def held_people(session: Session, ids: list[int] | None = None) -> set[int]:
    """People under legal hold: an open orientation on a counted pool (waiting for a place,
    proposed, or holding one), or an allocation proposal awaiting validation."""
    R, P = m.Referral, m.AllocationProposal
    pooled = select(R.salarie_id).where(R.state.in_(OPEN_STATES), R.pool_id.is_not(None))
    proposed = select(R.salarie_id).join(P, P.referral_id == R.id).where(P.status == "proposed")
    out: set[int] = set()
    for q in (pooled, proposed):
        parts = [None] if ids is None else list(_chunks(ids))
        for part in parts:
            stmt = q if part is None else q.where(R.salarie_id.in_(part))
            out.update(session.scalars(stmt.distinct()).all())
    return out


def files(
    session: Session,
    policy: Policy,
    *,
    until: date | None = None,
    ids: Collection[int] | None = None,
) -> list[FileDue]:
    """Files not yet anonymised (of ``ids`` if given) whose due day is on or before
    ``until`` (every file when None), ordered by id."""
    S, C = m.Salarie, m.Chantier
    wanted = sorted(set(ids)) if ids is not None else None
    q = (
        select(
            S.id,
            S.chantier_id,
            C.territory_id,
            S.programme,
            S.entry_date,
            S.exit_date,
            S.retention_notice_on,
            S.retention_due_on,
        )
        .join(C, C.id == S.chantier_id)
        .where(S.anonymised_at.is_(None))
        .order_by(S.id)
    )
    rows: list[Any] = []
    if wanted is None:
        rows = list(session.execute(q).all())
    else:
        for part in _chunks(wanted):
            rows += session.execute(q.where(S.id.in_(part))).all()
    if not rows:
        return []
    contacts = last_contacts(session, wanted)
    hold = held_people(session, wanted)
    out = []
    for r in rows:
        last = contacts.get(r.id, r.entry_date)
        reference = max(last, r.exit_date or last)
        due = policy.due_on(reference, r.territory_id)
        if r.programme == "cvg" and r.exit_date is not None:
            # Never during the CVG follow-up (3, 6, 12 months after exit, each asked for
            # during a month): a short territory retention waits for the last one.
            due = max(due, add_months(r.exit_date, FOLLOW_UP_MONTHS + 1))
        if until is not None and due > until:
            continue
        out.append(
            FileDue(
                salarie_id=r.id,
                chantier_id=r.chantier_id,
                territory_id=r.territory_id,
                entry_date=r.entry_date,
                exit_date=r.exit_date,
                last_contact=last,
                due_on=due,
                held=r.id in hold,
                notice_on=r.retention_notice_on,
                announced=r.retention_due_on,
            )
        )
    return out
