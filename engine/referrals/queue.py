"""The triage queue: one user's referrals in scope, filtered, sorted, keyset-paginated.

Why keyset pagination over the indexed columns (owner, state, priority / territory, domain,
state, priority): the queue stays fast with a million referrals; every list goes through
``referral_scope`` so a page cannot show a row the user may not see.
"""

from __future__ import annotations

import base64
import json
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    bindparam,
    func,
    inspect,
    literal,
    select,
    tuple_,
)
from sqlalchemy.orm import Session

from engine.access.permissions import referral_scope
from engine.domain.clock import as_utc
from engine.domain.errors import Refused
from engine.domain.lifecycle import OPEN_STATES, STATES
from engine.store import dialect
from engine.store import models as m

SORTS = ("priority", "due", "age")
MAX_LIMIT = 200
# States whose due_at is a deadline someone must meet (triage, partner answer).
DEADLINE_STATES = ("new", "triaging", "referred")


class BadCursor(Refused):
    """A pagination cursor that was not produced by us (French message)."""


@dataclass(frozen=True)
class QueueFilters:
    """What the queue page and the API accept; empty means "any"."""

    domain: str | None = None
    territory: str | None = None  # territory code
    state: str | None = None  # a state slug, "open" (default) or "all"
    chantier: str | None = None  # chantier code
    programme: str | None = None
    mine: bool = False
    sort: str = "priority"


@dataclass
class QueueRow:
    id: int
    reference: str
    thematique: str
    domain: str
    territory: str | None
    territory_name: str | None
    chantier: str | None  # None, like programme, priority and owner, for partner contacts
    programme: str | None
    state: str
    priority: int | None
    due_at: datetime | None
    created_at: datetime
    version: int
    owner_user_id: int | None
    overdue: bool


@dataclass
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(
        [v.isoformat() if isinstance(v, datetime) else v for v in values], separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        cursor = cursor[:200]
        pad = "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(cursor + pad))
        if not isinstance(values, list) or len(values) != 2:
            raise ValueError
        key, ident = values
        if not _small_int(ident) or not (key is None or isinstance(key, str) or _small_int(key)):
            raise ValueError
        return values
    except (ValueError, TypeError) as exc:
        raise BadCursor("curseur de pagination invalide") from exc


def _small_int(value: Any) -> bool:
    """An integer a 32-bit column can hold (cursors are ours, but anybody can edit them)."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= m.MAX_ID


def _parse_dt(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except (TypeError, ValueError) as exc:
        raise BadCursor("curseur de pagination invalide") from exc


# The open states as literals, not bound parameters: the partial indexes on open referrals
# (``WHERE state IN (...)``) are only usable when the query spells the same list, which neither
# SQLite nor a PostgreSQL generic plan can prove from parameters.
def _open_states() -> Any:
    return bindparam("open_states", list(OPEN_STATES), expanding=True, literal_execute=True)


# Partial indexes of open referrals in page order, per sort. The deadline one is proposed
# for a later migration: until it exists, that order keeps SQLite's own plan.
_OPEN_ORDER_INDEXES = {"priority": "ix_referral_open_priority", "due": "ix_referral_open_due"}
_indexes_of: weakref.WeakKeyDictionary[Engine, frozenset[str]] = weakref.WeakKeyDictionary()


def _walk_open_index(
    session: Session, user: m.StaffUser, filters: QueueFilters, state: str, sort: str
) -> bool:
    """Should SQLite read the user's open queue in page order from a partial index?

    Yes for the scopes spread over the whole network (national, territory, territory ×
    domain) without a narrowing filter, when an index of open referrals in that order exists.
    Not for a chantier, the national PHC queue or a partner, whose rows are clustered or few
    (reading in page order could cross most of the index before finding them), nor for
    "mine": their own indexes find them, then a sort.
    """
    broad = user.role in ("national_admin", "officer") or (
        user.role == "coordinator" and not user.national_queue
    )
    if not (broad and state == "open" and not filters.mine and not filters.chantier):
        return False
    bind = session.get_bind()
    if not dialect.is_sqlite(bind) or sort not in _OPEN_ORDER_INDEXES:
        return False
    engine = bind.engine
    if engine not in _indexes_of:
        names = {ix["name"] for ix in inspect(engine).get_indexes("referral")}
        _indexes_of[engine] = frozenset(n for n in names if n)
    return _OPEN_ORDER_INDEXES[sort] in _indexes_of[engine]


def _page(conds: list[Any], order: list[Any], n: int) -> Any:
    """The queue's columns for referrals matching ``conds``, in ``order``, at most n rows."""
    R = m.Referral
    return (
        select(
            R.id,
            m.Salarie.reference,
            R.thematique,
            R.domain,
            m.Territory.code,
            m.Territory.name,
            m.Chantier.code,
            R.programme,
            R.state,
            R.priority,
            R.due_at,
            R.created_at,
            R.version,
            R.owner_user_id,
        )
        .join(m.Salarie, m.Salarie.id == R.salarie_id)
        .join(m.Chantier, m.Chantier.id == R.chantier_id)
        .outerjoin(m.Territory, m.Territory.id == R.territory_id)
        .where(*conds)
        .order_by(*order)
        .limit(n)
    )


def _due_page(session: Session, conds: list[Any], after: str | None, n: int) -> list[Any]:
    """Deadline order (dated by (due_at, id), then undated by id) as two ordered ranges.

    Why two queries: "NULLs last" cannot walk an index on (due_at, id) in one range on
    either database; each half can, and the second runs only when the first is short.
    """
    R = m.Referral
    dated_conds: list[ColumnElement[bool]] = [R.due_at.is_not(None)]
    undated_conds: list[ColumnElement[bool]] = [R.due_at.is_(None)]
    skip_dated = False
    if after:
        d, i = decode_cursor(after)
        due = _parse_dt(d)
        if due is None:
            skip_dated = True
            undated_conds.append(R.id > i)
        else:
            dated_conds.append(
                tuple_(R.due_at, R.id) > tuple_(literal(due, R.due_at.type), literal(i))
            )
    rows: list[Any] = []
    if not skip_dated:
        order = [R.due_at.asc(), R.id.asc()]
        rows = list(session.execute(_page([*conds, *dated_conds], order, n)).all())
    if len(rows) < n:
        more = _page([*conds, *undated_conds], [R.id.asc()], n - len(rows))
        rows += session.execute(more).all()
    return rows


def list_queue(
    session: Session,
    user: m.StaffUser,
    filters: QueueFilters,
    *,
    now: datetime,
    after: str | None = None,
    limit: int = 50,
) -> QueuePage:
    """One page of the user's queue, in scope, filtered and sorted, with a keyset cursor."""
    limit = max(1, min(limit, MAX_LIMIT))
    state = filters.state or "open"
    scope = referral_scope(user)
    sort = filters.sort if filters.sort in SORTS else "priority"
    if _walk_open_index(session, user, filters, state, sort):
        # SQLite turns an OR scope into a multi-index lookup of every row in scope, then sorts
        # them all; hiding the scope from its index choice makes it walk the partial index of
        # open referrals in page order instead, reading about 50 / (share in scope) rows.
        scope = func.coalesce(scope, False)
    conds = _conditions(user, filters, state, scope)
    raw = _fetch(session, conds, sort, after, limit + 1)
    rows = [_queue_row(r, now) for r in raw[: limit + 1]]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        key = {"priority": last.priority, "due": last.due_at, "age": last.created_at}[sort]
        next_cursor = encode_cursor([key, last.id])
    if user.role == "partner_contact":  # the fields of its case page, no more
        for row in rows:
            row.chantier = row.programme = row.priority = row.owner_user_id = None
    return QueuePage(rows=rows, next_cursor=next_cursor)


def _conditions(user: m.StaffUser, filters: QueueFilters, state: str, scope: Any) -> list[Any]:
    """The WHERE terms of the queue: scope, state, then each filter the user set."""
    R = m.Referral
    conds: list[Any] = [scope]
    if state == "open":
        conds.append(R.state.in_(_open_states()))
    elif state in STATES:
        conds.append(R.state == state)
    if filters.domain:
        conds.append(R.domain == filters.domain)
    if filters.programme:
        conds.append(R.programme == filters.programme)
    if filters.mine:
        conds.append(R.owner_user_id == user.id)
    if filters.territory:
        if filters.territory == "hors-territoire":
            conds.append(R.territory_id.is_(None))
        else:
            conds.append(
                R.territory_id
                == select(m.Territory.id)
                .where(m.Territory.code == filters.territory)
                .scalar_subquery()
            )
    if filters.chantier:
        conds.append(
            R.chantier_id
            == select(m.Chantier.id).where(m.Chantier.code == filters.chantier).scalar_subquery()
        )
    return conds


def _fetch(session: Session, conds: list[Any], sort: str, after: str | None, n: int) -> Any:
    """At most ``n`` rows after the cursor, in the sort's order."""
    R = m.Referral
    if sort == "priority":
        if after:
            p, i = decode_cursor(after)
            if not isinstance(p, int):
                raise BadCursor("curseur de pagination invalide")
            conds.append(tuple_(R.priority, R.id) < tuple_(literal(p), literal(i)))
        raw = session.execute(_page(conds, [R.priority.desc(), R.id.desc()], n)).all()
    elif sort == "due":
        raw = _due_page(session, conds, after, n)
    else:  # age: oldest first
        if after:
            c, i = decode_cursor(after)
            created = _parse_dt(c)
            if created is None:
                raise BadCursor("curseur de pagination invalide")
            conds.append(
                tuple_(R.created_at, R.id) > tuple_(literal(created, R.created_at.type), literal(i))
            )
        raw = session.execute(_page(conds, [R.created_at.asc(), R.id.asc()], n)).all()
    return raw


def _queue_row(r: Any, now: datetime) -> QueueRow:
    (
        rid,
        reference,
        thematique,
        domain,
        territory,
        territory_name,
        chantier,
        programme,
        state,
        priority,
        due_at,
        created_at,
        version,
        owner,
    ) = r  # the columns of _page, in order
    due = as_utc(due_at) if due_at is not None else None
    return QueueRow(
        id=rid,
        reference=reference,
        thematique=thematique,
        domain=domain,
        territory=territory,
        territory_name=territory_name,
        chantier=chantier,
        programme=programme,
        state=state,
        priority=priority,
        due_at=due,
        created_at=as_utc(created_at),
        version=version,
        owner_user_id=owner,
        overdue=bool(due is not None and due < now and state in DEADLINE_STATES),
    )
