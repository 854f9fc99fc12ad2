"""The triage queue: one user's referrals in scope, filtered, sorted, keyset-paginated.

Why keyset pagination over the indexed columns (owner, state, priority / territory, domain,
state, priority): the queue stays fast with a million referrals; every list goes through
``referral_scope`` so a page cannot show a row the user may not see. The totals (one COUNT
grouped by state), the page's position ("51–100 sur 367") and the filter options go through
the very same scope and WHERE, so a count never reveals a row the list would not show.
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
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    inspect,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import Session

from engine.access.permissions import can, referral_scope
from engine.domain.clock import PARIS, as_utc
from engine.domain.errors import Refused
from engine.domain.lifecycle import OPEN_STATES, STATES
from engine.domain.pseudonyms import LENGTH, PREFIX, REFERENCE_ALPHABET
from engine.store import dialect
from engine.store import models as m
from partners.taxonomy import DOMAINS, OFFICER_DOMAINS

SORTS = ("priority", "due", "age")
MAX_LIMIT = 200
# States whose due_at is a deadline someone must meet (triage, partner answer).
DEADLINE_STATES = ("new", "triaging", "referred")
MAX_SEARCH = 80  # characters of a reference or name search


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
    reference: str | None = None  # SAL-XXXXXX or the chantier's own reference (external_ref)
    name: str | None = None  # last / first name: roles that may read identity only
    overdue: bool = False  # only the referrals past their deadline

    def resolved_state(self) -> str:
        """The state filter in force: as given, else every state for a search (a reference
        is looked up whatever became of it), else the open referrals."""
        if self.state:
            return self.state
        return "all" if (self.reference or self.name) else "open"


@dataclass
class QueueRow:
    id: int
    reference: str
    external_ref: str | None  # the chantier's own reference; None for partner contacts
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
    # Calendar days (Paris) until the deadline of a state that has one: 0 today, negative past.
    due_in_days: int | None = None


@dataclass
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None


@dataclass
class QueueCounts:
    """The queue's totals for the current filters: per state, overdue, and the list's own."""

    by_state: dict[str, int]  # every state with at least one row, in lifecycle order
    overdue: int  # rows of the list past their deadline
    total: int  # rows of the list (the state filter applied)


@dataclass
class QueuePosition:
    """Where a keyset page sits: ``offset`` rows come before it; ``previous`` is the cursor
    of the page before (None: the first page, reached without a cursor)."""

    offset: int
    has_previous: bool
    previous_cursor: str | None


@dataclass
class FilterOptions:
    """The values the filters offer a user: those of the user's scope only."""

    territories: list[tuple[str, str]]  # (code, name)
    outside: bool  # "Hors territoire" (national PHC queue) is in scope
    domains: list[str]
    chantiers: list[tuple[str, str]]  # (code, name)


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
def open_states_sql() -> Any:
    return bindparam("open_states", list(OPEN_STATES), expanding=True, literal_execute=True)


# Partial indexes of open referrals in page order, per sort (migrations 0002, 0003, 0010);
# on a database without one, that order keeps SQLite's own plan.
_OPEN_ORDER_INDEXES = {
    "priority": "ix_referral_open_priority",
    "due": "ix_referral_open_due",
    "age": "ix_referral_open_age",
}
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
    if filters.reference or filters.name or (filters.overdue and sort != "due"):
        return False  # a few rows, found by their own index (or their deadline's)
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
            m.Salarie.external_ref,
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
    state = filters.resolved_state()
    sort = filters.sort if filters.sort in SORTS else "priority"
    branches = _priority_branches(user, filters, state, sort)
    due_branches = _due_branches(user, filters, state, sort)
    if branches:
        conds = _conditions(user, filters, state, true(), now)
        raw = _fetch_branches(session, branches, conds, after, limit + 1)
    elif due_branches:
        conds = _conditions(user, filters, state, true(), now)
        found: dict[int, Any] = {}
        for branch in due_branches:
            for row in _due_page(session, [branch, *conds], after, limit + 1):
                found[row[0]] = row
        raw = sorted(found.values(), key=lambda r: (r[11] is None, r[11] or now, r[0]))
        raw = raw[: limit + 1]
    else:
        conds = _conditions(user, filters, state, _list_scope(session, user, filters, state), now)
        raw = _fetch(session, conds, sort, after, limit + 1)
    rows = [_queue_row(r, now) for r in raw[: limit + 1]]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = _cursor_of(rows[-1], sort)
    if user.role == "partner_contact":  # the fields of its case page, no more
        for row in rows:
            row.chantier = row.programme = row.priority = row.owner_user_id = None
            row.external_ref = None
    return QueuePage(rows=rows, next_cursor=next_cursor)


def _priority_branches(
    user: m.StaffUser, filters: QueueFilters, state: str, sort: str
) -> list[Any] | None:
    """The user's scope as ranges of the partial indexes of open referrals in priority order.

    Why: an officer's scope is "my territory and domain, or mine"; no index gives an OR in
    page order, so both databases gathered every open referral of the scope (tens of
    thousands at scale 50) and sorted them for 51 rows. Each branch below is one range of
    ``ix_referral_open_scope_priority`` (territory, domain, priority, id) or
    ``ix_referral_open_owner_priority`` / ``..._chantier_priority``, read in page order: a
    page costs about 51 index entries per branch, merged in Python. The branches together
    are exactly ``referral_scope(user)`` (a coordinator's territory is one branch per domain
    of the taxonomy, which is every domain a referral can have); a row in two branches is
    kept once. None: the old single query (other sorts and states, searches, other roles).
    """
    if sort != "priority" or state != "open" or filters.reference or filters.name:
        return None
    if not user.active:
        return None
    R = m.Referral
    if user.role == "officer":
        return [
            and_(R.territory_id == user.territory_id, R.domain == user.domain),
            R.owner_user_id == user.id,
        ]
    if user.role == "coordinator":
        home = (
            R.territory_id.is_(None) if user.national_queue else R.territory_id == user.territory_id
        )
        domains = [filters.domain] if filters.domain else list(DOMAINS)
        return [and_(home, R.domain == d) for d in domains] + [R.owner_user_id == user.id]
    if user.role == "cip" and user.chantier_id is not None:
        return [R.chantier_id == user.chantier_id]
    return None


def _due_branches(
    user: m.StaffUser, filters: QueueFilters, state: str, sort: str
) -> list[Any] | None:
    """A coordinator's scope in deadline order: the territory (or, for the national PHC
    queue, the referrals outside every territory) as one range of
    ``ix_referral_open_territory_due`` (territory, due_at, id), then the few referrals they
    own elsewhere. Why: the national queue's rows sit late in the deadline index of the whole
    network, so walking it read most of a million entries (200 ms a page); officers' and the
    national team's pages walk that index well and keep the single query."""
    if sort != "due" or state != "open" or filters.reference or filters.name:
        return None
    if not user.active or user.role != "coordinator":
        return None
    R = m.Referral
    home: ColumnElement[bool]
    elsewhere: ColumnElement[bool]
    if user.national_queue:
        home, elsewhere = R.territory_id.is_(None), R.territory_id.is_not(None)
    else:
        home = R.territory_id == user.territory_id
        elsewhere = or_(R.territory_id.is_(None), R.territory_id != user.territory_id)
    return [home, and_(R.owner_user_id == user.id, elsewhere)]


def _fetch_branches(
    session: Session, branches: list[Any], conds: list[Any], after: str | None, n: int
) -> list[Any]:
    """At most ``n`` rows after the cursor in priority order, one ordered range per branch."""
    R = m.Referral
    terms = list(conds)
    if after:
        p, i = decode_cursor(after)
        if not isinstance(p, int):
            raise BadCursor("curseur de pagination invalide")
        terms.append(tuple_(R.priority, R.id) < tuple_(literal(p), literal(i)))
    order = [R.priority.desc(), R.id.desc()]
    found: dict[int, Any] = {}
    for branch in branches:
        for row in session.execute(_page([branch, *terms], order, n)).all():
            found[row[0]] = row
    return sorted(found.values(), key=lambda r: (r[10], r[0]), reverse=True)[:n]


def _list_scope(session: Session, user: m.StaffUser, filters: QueueFilters, state: str) -> Any:
    scope = referral_scope(user)
    sort = filters.sort if filters.sort in SORTS else "priority"
    if _walk_open_index(session, user, filters, state, sort):
        # SQLite turns an OR scope into a multi-index lookup of every row in scope, then sorts
        # them all; hiding the scope from its index choice makes it walk the partial index of
        # open referrals in page order instead, reading about 50 / (share in scope) rows.
        scope = func.coalesce(scope, False)
    return scope


def _cursor_of(row: QueueRow, sort: str) -> str:
    key = {"priority": row.priority, "due": row.due_at, "age": row.created_at}[sort]
    return encode_cursor([key, row.id])


def _count_branches(user: m.StaffUser) -> list[Any] | None:
    """The user's scope as disjoint WHERE terms, each counted from one covering index.

    An officer's rows of their territory and domain (``ix_referral_scope_count``), then the
    rows they own elsewhere (``ix_referral_owner_count``); a coordinator's territory, then
    theirs elsewhere; a CIP/ESP's chantier (``ix_referral_chantier_count``). Disjoint, so
    the counts add up; together exactly ``referral_scope(user)``. None: the scope as is."""
    if not user.active:
        return None
    R = m.Referral
    if user.role == "officer":
        home = and_(R.territory_id == user.territory_id, R.domain == user.domain)
        elsewhere = or_(
            R.territory_id.is_(None), R.territory_id != user.territory_id, R.domain != user.domain
        )
        return [home, and_(R.owner_user_id == user.id, elsewhere)]
    if user.role == "coordinator":
        if user.national_queue:
            home, elsewhere = R.territory_id.is_(None), R.territory_id.is_not(None)
        else:
            home = R.territory_id == user.territory_id
            elsewhere = or_(R.territory_id.is_(None), R.territory_id != user.territory_id)
        return [home, and_(R.owner_user_id == user.id, elsewhere)]
    if user.role == "cip" and user.chantier_id is not None:
        return [R.chantier_id == user.chantier_id]
    return None


def count_queue(
    session: Session, user: m.StaffUser, filters: QueueFilters, *, now: datetime
) -> QueueCounts:
    """The totals of the user's queue under ``filters``: COUNTs grouped by state.

    The WHERE is the list's, without its state term so that every state of the bar has its
    count (the open states when the list shows open ones, every state otherwise). The scope
    is counted branch by branch (``_count_branches``), each from an index that holds state and
    due_at: the totals and the overdue number come from the index alone, never the table. The
    national team's count reads the (state, priority) index alone, and its overdue number is
    a second COUNT over the partial index of open referrals by deadline.
    """
    R = m.Referral
    state = filters.resolved_state()
    bar_state = "open" if state == "open" or state in OPEN_STATES else "all"
    national = user.role == "national_admin"
    late = func.sum(case((and_(*overdue_terms(now)), 1), else_=0))
    columns = [R.state, func.count()] if national else [R.state, func.count(), late]
    found: dict[str, int] = {}
    late_by_state: dict[str, int] = {}
    for branch in _count_branches(user) or [referral_scope(user)]:
        conds = _conditions(user, filters, bar_state, branch, now)
        for row in session.execute(select(*columns).where(*conds).group_by(R.state)).all():
            found[row[0]] = found.get(row[0], 0) + int(row[1])
            if not national:
                late_by_state[row[0]] = late_by_state.get(row[0], 0) + int(row[2] or 0)
    by_state = {s: found[s] for s in STATES if found.get(s)}

    def listed(s: str) -> bool:
        return s in OPEN_STATES if state == "open" else (state == "all" or s == state)

    total = sum(n for s, n in by_state.items() if listed(s))
    if filters.overdue:
        overdue = total
    elif not national:
        overdue = sum(n for s, n in late_by_state.items() if listed(s))
    elif total and any(listed(s) for s in DEADLINE_STATES):
        scope = referral_scope(user)
        where = [*_conditions(user, filters, state, scope, now), *overdue_terms(now)]
        overdue = int(session.scalar(select(func.count()).select_from(R).where(*where)) or 0)
    else:
        overdue = 0
    return QueueCounts(by_state=by_state, overdue=overdue, total=total)


def queue_position(
    session: Session,
    user: m.StaffUser,
    filters: QueueFilters,
    *,
    now: datetime,
    after: str | None,
    limit: int = 50,
) -> QueuePosition:
    """Where the page after ``after`` starts, and the cursor of the page before it.

    The rows at or before the cursor, in page order, are counted (a range of the same index
    the page walks); the previous page's cursor is the row ``limit + 1`` places back, read
    in reverse order, so pagination stays keyset in both directions.
    """
    if not after:
        return QueuePosition(offset=0, has_previous=False, previous_cursor=None)
    limit = max(1, min(limit, MAX_LIMIT))
    state = filters.resolved_state()
    sort = filters.sort if filters.sort in SORTS else "priority"
    R = m.Referral
    base = _conditions(user, filters, state, referral_scope(user), now)
    before = 0
    for terms in _at_or_before(after, sort):
        query = select(func.count()).select_from(R).where(*base, *terms)
        before += int(session.scalar(query) or 0)
    if before <= limit:
        return QueuePosition(offset=before, has_previous=before > 0, previous_cursor=None)
    walk = _conditions(user, filters, state, _list_scope(session, user, filters, state), now)
    back = _fetch_back(session, walk, sort, after, limit + 1)
    previous = _cursor_of(_queue_row(back[limit], now), sort) if len(back) > limit else None
    return QueuePosition(offset=before, has_previous=True, previous_cursor=previous)


def _at_or_before(after: str, sort: str) -> list[list[Any]]:
    """The rows at or before the cursor in the sort's page order, as disjoint WHERE sets."""
    R = m.Referral
    key, ident = decode_cursor(after)
    if sort == "priority":
        if not isinstance(key, int):
            raise BadCursor("curseur de pagination invalide")
        return [[tuple_(R.priority, R.id) >= tuple_(literal(key), literal(ident))]]
    if sort == "age":
        created = _parse_dt(key)
        if created is None:
            raise BadCursor("curseur de pagination invalide")
        return [
            [
                tuple_(R.created_at, R.id)
                <= tuple_(literal(created, R.created_at.type), literal(ident))
            ]
        ]
    due = _parse_dt(key)
    if due is None:  # in the undated tail: every dated row, then the undated ones up to it
        return [[R.due_at.is_not(None)], [R.due_at.is_(None), R.id <= ident]]
    return [
        [
            R.due_at.is_not(None),
            tuple_(R.due_at, R.id) <= tuple_(literal(due, R.due_at.type), literal(ident)),
        ]
    ]


def _fetch_back(session: Session, conds: list[Any], sort: str, after: str, n: int) -> list[Any]:
    """At most ``n`` rows at or before the cursor, nearest first (page order reversed)."""
    R = m.Referral
    key, ident = decode_cursor(after)
    order: list[Any]
    if sort == "priority":
        terms = _at_or_before(after, sort)[0]
        order = [R.priority.asc(), R.id.asc()]
        return list(session.execute(_page([*conds, *terms], order, n)).all())
    if sort == "age":
        terms = _at_or_before(after, sort)[0]
        order = [R.created_at.desc(), R.id.desc()]
        return list(session.execute(_page([*conds, *terms], order, n)).all())
    rows: list[Any] = []
    if _parse_dt(key) is None:
        undated = [R.due_at.is_(None), R.id <= ident]
        rows = list(session.execute(_page([*conds, *undated], [R.id.desc()], n)).all())
        dated: list[Any] = [R.due_at.is_not(None)]
    else:
        dated = _at_or_before(after, sort)[0]
    if len(rows) < n:
        order = [R.due_at.desc(), R.id.desc()]
        rows += session.execute(_page([*conds, *dated], order, n - len(rows))).all()
    return rows


def overdue_terms(now: datetime) -> list[Any]:
    R = m.Referral
    return [R.state.in_(DEADLINE_STATES), R.due_at < now]


def reference_candidates(text: str) -> list[str]:
    """The pseudonymous references a typed text may mean: "sal-abc234", "ABC234" and
    "SAL ABC234" all mean SAL-ABC234 (the alphabet has no I, O, 0 nor 1)."""
    compact = "".join(text.split()).upper().replace("-", "")
    if compact.startswith(PREFIX.rstrip("-")):
        compact = compact[len(PREFIX) - 1 :]
    if len(compact) == LENGTH and all(c in REFERENCE_ALPHABET for c in compact):
        return [PREFIX + compact]
    return []


def like_escape(word: str) -> str:
    """``word`` inside a LIKE pattern (escape character: backslash): %, _ and \\ literal."""
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _name_matches(name: str) -> Any:
    """Every word typed starts a word of the last or the first name, whatever the case and
    the accents: "dup" finds Dupont, "gall" finds Le Gall, "heloise" finds Héloïse,
    "marie dup" finds Marie Dupont."""
    ident = m.SalarieIdentity
    words = [dialect.fold_text(w) or "" for w in name.split()][:4]
    terms = []
    for word in words:
        w = like_escape(word)
        starts = []
        for column in (dialect.folded(ident.last_name), dialect.folded(ident.first_name)):
            for pattern in (f"{w}%", f"% {w}%", f"%-{w}%", f"%'{w}%"):
                starts.append(column.like(pattern, escape="\\"))
        terms.append(or_(*starts))
    return exists().where(ident.salarie_id == m.Referral.salarie_id, *terms)


def _conditions(
    user: m.StaffUser,
    filters: QueueFilters,
    state: str,
    scope: Any,
    now: datetime,
    *,
    index_state: bool = True,
) -> list[Any]:
    """The WHERE terms of the queue: scope, state, then each filter the user set.

    ``index_state=False`` spells the state term so that no index is chosen for it (``state
    || ''``): the rows are then found by the scope's indexes."""
    R = m.Referral
    conds: list[Any] = [scope]
    column: Any = R.state if index_state else R.state.concat("")
    if state == "open":
        conds.append(column.in_(open_states_sql()))
    elif state in STATES:
        conds.append(column == state)
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
    if filters.overdue:
        conds.extend(overdue_terms(now))
    if filters.reference:
        text = filters.reference.strip()[:MAX_SEARCH]
        S = m.Salarie
        candidates = reference_candidates(text)
        matches: list[Any] = [S.reference.in_(candidates)] if candidates else []
        if user.role != "partner_contact":  # the chantier's own reference is not theirs to see
            matches.append(S.external_ref == text)
        conds.append(R.salarie_id.in_(select(S.id).where(or_(*matches))) if matches else false())
    if filters.name:
        if can(user, "read_identity"):
            conds.append(_name_matches(filters.name[:MAX_SEARCH]))
        else:  # never a name search for a role that may not read identities
            conds.append(false())
    return conds


def filter_options(session: Session, user: m.StaffUser) -> FilterOptions:
    """The territories, domains and chantiers the user's filters offer: those of the scope.

    From the role (a chargé·e: one territory, one domain; a CIP/ESP: one chantier), plus the
    referrals a chargé·e or coordinator owns elsewhere (a transfer, an assignment); for a
    partner contact, the few referrals addressed to the organisation.
    """
    T, C, R = m.Territory, m.Chantier, m.Referral
    role = user.role
    if not user.active or role not in ("national_admin", "coordinator", "officer", "cip",
                                        "partner_contact"):  # fmt: skip
        return FilterOptions(territories=[], outside=False, domains=[], chantiers=[])
    if role == "national_admin":
        territories = session.execute(select(T.code, T.name).order_by(T.name)).all()
        chantiers = session.execute(select(C.code, C.name).order_by(C.name)).all()
        return FilterOptions(
            territories=[(c, n) for c, n in territories],
            outside=True,
            domains=list(DOMAINS),
            chantiers=[(c, n) for c, n in chantiers],
        )
    territory_ids: set[int | None] = set()
    chantier_ids: set[int] = set()
    domains: set[str] = set()
    if role == "partner_contact":
        seen = session.execute(
            select(R.territory_id, R.domain).where(referral_scope(user)).distinct()
        ).all()
        territory_ids = {t for t, _ in seen}
        domains = {d for _, d in seen}
    else:
        if role == "cip":
            chantier = session.get(C, user.chantier_id) if user.chantier_id else None
            if chantier is not None:
                chantier_ids.add(chantier.id)
                territory_ids.add(chantier.territory_id)
            domains = set(DOMAINS)
        else:
            home = None if (role == "coordinator" and user.national_queue) else user.territory_id
            territory_ids.add(home)
            chantier_ids |= set(
                session.scalars(
                    select(C.id).where(
                        C.territory_id.is_(None) if home is None else C.territory_id == home
                    )  # fmt: skip
                )
            )
            domains = {user.domain} if role == "officer" and user.domain else set(DOMAINS)
            owned = session.execute(
                select(R.territory_id, R.domain, R.chantier_id)
                .where(R.owner_user_id == user.id)
                .distinct()
            ).all()
            for t, d, c in owned:
                territory_ids.add(t)
                domains.add(d)
                chantier_ids.add(c)
    real = {t for t in territory_ids if t is not None}
    territories = (
        session.execute(select(T.code, T.name).where(T.id.in_(real)).order_by(T.name)).all()
        if real
        else []
    )
    chantiers = (
        session.execute(select(C.code, C.name).where(C.id.in_(chantier_ids)).order_by(C.name)).all()
        if chantier_ids and role != "partner_contact"
        else []
    )
    order = [*OFFICER_DOMAINS, *(d for d in DOMAINS if d not in OFFICER_DOMAINS)]
    return FilterOptions(
        territories=[(c, n) for c, n in territories],
        outside=None in territory_ids,
        domains=[d for d in order if d in domains],
        chantiers=[(c, n) for c, n in chantiers],
    )


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
        external_ref,
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
    has_deadline = due is not None and state in DEADLINE_STATES
    return QueueRow(
        id=rid,
        reference=reference,
        external_ref=external_ref,
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
        overdue=bool(has_deadline and due is not None and due < now),
        due_in_days=(
            (due.astimezone(PARIS).date() - now.astimezone(PARIS).date()).days
            if has_deadline and due is not None
            else None
        ),
    )
