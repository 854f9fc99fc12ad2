"""Read use cases of the pages and the API: queue, case file, pools, partners, access log.

Why one module of reads: every list goes through ``referral_scope`` / ``salarie_scope`` so a
page cannot show a row the user may not see, the queue uses keyset pagination over the
indexed columns (owner, state, priority / territory, domain, state, priority) so it stays
fast with a million referrals, and reading a case file always writes its access-log row —
the caller cannot forget it.
"""

from __future__ import annotations

import base64
import json
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    bindparam,
    func,
    inspect,
    literal,
    select,
    tuple_,
)
from sqlalchemy.orm import Session

from engine import models as m
from engine.clock import as_utc
from engine.errors import Forbidden, Refused
from engine.lifecycle import OPEN_STATES, STATES, Transition, allowed_actions
from engine.permissions import can, referral_scope, salarie_scope

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


def _walk_open_index(session: Session, user: m.StaffUser, filters: QueueFilters, state: str,
                     sort: str) -> bool:  # fmt: skip
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
    if bind.dialect.name != "sqlite" or sort not in _OPEN_ORDER_INDEXES:
        return False
    engine = bind.engine
    if engine not in _indexes_of:
        names = {ix["name"] for ix in inspect(engine).get_indexes("referral")}
        _indexes_of[engine] = frozenset(n for n in names if n)
    return _OPEN_ORDER_INDEXES[sort] in _indexes_of[engine]


def _page(conds: list[Any], order: list[Any], n: int) -> Select[Any]:
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
        )  # fmt: skip
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
    R = m.Referral
    limit = max(1, min(limit, MAX_LIMIT))
    state = filters.state or "open"
    scope = referral_scope(user)
    sort = filters.sort if filters.sort in SORTS else "priority"
    if _walk_open_index(session, user, filters, state, sort):
        # SQLite turns an OR scope into a multi-index lookup of every row in scope, then sorts
        # them all; hiding the scope from its index choice makes it walk the partial index of
        # open referrals in page order instead, reading about 50 / (share in scope) rows.
        scope = func.coalesce(scope, False)
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
    if sort == "priority":
        if after:
            p, i = decode_cursor(after)
            if not isinstance(p, int):
                raise BadCursor("curseur de pagination invalide")
            conds.append(tuple_(R.priority, R.id) < tuple_(literal(p), literal(i)))
        raw = session.execute(_page(conds, [R.priority.desc(), R.id.desc()], limit + 1)).all()
    elif sort == "due":
        raw = _due_page(session, conds, after, limit + 1)
    else:  # age: oldest first
        if after:
            c, i = decode_cursor(after)
            created = _parse_dt(c)
            if created is None:
                raise BadCursor("curseur de pagination invalide")
            conds.append(
                tuple_(R.created_at, R.id) > tuple_(literal(created, R.created_at.type), literal(i))
            )
        raw = session.execute(_page(conds, [R.created_at.asc(), R.id.asc()], limit + 1)).all()
    rows = []
    for r in raw[: limit + 1]:
        due = as_utc(r[10]) if r[10] is not None else None
        rows.append(
            QueueRow(
                id=r[0],
                reference=r[1],
                thematique=r[2],
                domain=r[3],
                territory=r[4],
                territory_name=r[5],
                chantier=r[6],
                programme=r[7],
                state=r[8],
                priority=r[9],
                due_at=due,
                created_at=as_utc(r[11]),
                version=r[12],
                owner_user_id=r[13],
                overdue=bool(due is not None and due < now and r[8] in DEADLINE_STATES),
            )  # fmt: skip
        )
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


@dataclass
class CaseFile:
    """Everything the case view shows, already narrowed to what the role may see."""

    referral: m.Referral
    salarie: m.Salarie
    identity: m.SalarieIdentity | None
    chantier: m.Chantier
    territory: m.Territory | None
    offer: m.Offer | None
    partner: m.Partner | None
    minimal: bool  # partner contacts see only the pseudonymous reference and the need
    freins: list[m.Frein] = field(default_factory=list)
    other_domain_freins: int = 0  # freins a chargé·e of another domain does not see
    referrals: list[m.Referral] = field(default_factory=list)
    events: list[m.ReferralEvent] = field(default_factory=list)
    actions: list[Transition] = field(default_factory=list)
    suggestions: list[tuple[m.Offer, int, int]] = field(default_factory=list)
    offers: list[m.Offer] = field(default_factory=list)  # any offer covering the territory
    pools: list[m.SlotPool] = field(default_factory=list)
    transfer_targets: list[m.StaffUser] = field(default_factory=list)
    open_proposal: m.AllocationProposal | None = None


# Actions done elsewhere than on the case page (the allocation review page).
_ELSEWHERE = frozenset({"validate", "decline_proposal"})


def read_case_file(
    session: Session, user: m.StaffUser, referral_id: int, *, now: datetime,
    purpose: str = "consultation",
) -> CaseFile | None:  # fmt: skip
    """The case file of one referral, or None when missing or out of scope (→ 404).

    Writes one access-log row per read (who, which person, when, why, with identity or not);
    the caller's unit of work commits it with the read.
    """
    ref = session.get(m.Referral, referral_id)
    if ref is None or not can(user, "read", ref):
        return None
    salarie = session.get(m.Salarie, ref.salarie_id)
    assert salarie is not None
    chantier = session.get(m.Chantier, ref.chantier_id)
    assert chantier is not None
    territory = session.get(m.Territory, ref.territory_id) if ref.territory_id else None
    offer = session.get(m.Offer, ref.offer_id) if ref.offer_id else None
    partner = session.get(m.Partner, offer.partner_id) if offer else None
    minimal = user.role == "partner_contact"
    with_identity = (not minimal) and can(user, "read_identity", ref)
    identity = session.get(m.SalarieIdentity, salarie.id) if with_identity else None
    session.add(
        m.AccessLog(
            user_id=user.id,
            reader=user.display_name[:80],
            salarie_id=salarie.id,
            at=now,
            purpose=purpose,
            with_identity=identity is not None,
        )
    )
    case = CaseFile(
        referral=ref, salarie=salarie, identity=identity, chantier=chantier,
        territory=territory, offer=offer, partner=partner, minimal=minimal,
    )  # fmt: skip
    case.actions = [
        t
        for t in allowed_actions(ref.state)
        if t.action not in _ELSEWHERE and can(user, t.action, ref)
    ]
    if minimal:
        return case
    freins = list(
        session.scalars(
            select(m.Frein).where(m.Frein.salarie_id == salarie.id).order_by(m.Frein.id)
        )
    )
    # Need to know: a chargé·e sees the freins of their own domain (and transverse ones);
    # the others (a health frein for the housing officer) are only counted.
    if user.role == "officer":
        case.freins = [f for f in freins if f.domain in (user.domain, "transverse")]
        case.other_domain_freins = len(freins) - len(case.freins)
    else:
        case.freins = freins
    case.referrals = list(
        session.scalars(
            select(m.Referral)
            .where(m.Referral.salarie_id == salarie.id, referral_scope(user))
            .order_by(m.Referral.id)
        )
    )
    case.events = list(
        session.scalars(
            select(m.ReferralEvent)
            .where(m.ReferralEvent.referral_id == ref.id)
            .order_by(m.ReferralEvent.at, m.ReferralEvent.id)
        )
    )
    case.open_proposal = session.scalar(
        select(m.AllocationProposal).where(
            m.AllocationProposal.referral_id == ref.id, m.AllocationProposal.status == "proposed"
        )
    )
    if case.actions:
        _load_action_choices(session, case)
    return case


def _load_action_choices(session: Session, case: CaseFile) -> None:
    """Offers, pools and people the action forms let the user choose from."""
    ref = case.referral
    by_id = {
        o.id: o
        for o in session.scalars(
            select(m.Offer).where(m.Offer.id.in_([int(s[0]) for s in ref.suggestions or []]))
        )
    }
    case.suggestions = [
        (by_id[int(s[0])], int(s[1]), int(s[2]))
        for s in ref.suggestions or []
        if int(s[0]) in by_id
    ]
    code = case.territory.code if case.territory else None
    offers = session.execute(
        select(m.Offer, m.Partner).join(m.Partner).order_by(m.Partner.name, m.Offer.name)
    ).all()
    case.offers = [
        o
        for o, p in offers
        if p.coverage is None or (code is not None and code in (p.coverage or []))
    ]
    offer_ids = {o.id for o, _, _ in case.suggestions} | ({ref.offer_id} if ref.offer_id else set())
    pools = session.scalars(
        select(m.SlotPool).where(m.SlotPool.offer_id.in_(offer_ids)).order_by(m.SlotPool.name)
    ).all()
    case.pools = [p for p in pools if p.scope is None or (code is not None and code in p.scope)]
    targets = select(m.StaffUser).where(
        m.StaffUser.active,
        m.StaffUser.role.in_(("officer", "coordinator")),
        m.StaffUser.territory_id == ref.territory_id
        if ref.territory_id
        else m.StaffUser.national_queue,
    )
    case.transfer_targets = list(
        session.scalars(targets.order_by(m.StaffUser.role, m.StaffUser.display_name))
    )


@dataclass
class PoolRow:
    id: int
    code: str
    name: str
    partner: str
    scope: list[str] | None
    period_start: Any
    period_end: Any
    capacity: int
    used: int
    waiting: int
    unit_kind: str

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.used)


def pools_overview(session: Session, user: m.StaffUser) -> list[PoolRow]:
    """Counted pools the user's territory can draw on: capacity, used, waiting."""
    used = (
        select(m.SlotUnit.pool_id, func.count().label("n"))
        .join(m.SlotAssignment, m.SlotAssignment.unit_id == m.SlotUnit.id)
        .where(m.SlotAssignment.active)
        .group_by(m.SlotUnit.pool_id)
        .subquery()
    )
    waiting = (
        select(m.Referral.pool_id, func.count().label("n"))
        .where(m.Referral.state == "waitlisted", m.Referral.pool_id.is_not(None))
        .group_by(m.Referral.pool_id)
        .subquery()
    )
    stmt = (
        select(
            m.SlotPool, m.Partner.name, func.coalesce(used.c.n, 0), func.coalesce(waiting.c.n, 0)
        )
        .join(m.Offer, m.Offer.id == m.SlotPool.offer_id)
        .join(m.Partner, m.Partner.id == m.Offer.partner_id)
        .outerjoin(used, used.c.pool_id == m.SlotPool.id)
        .outerjoin(waiting, waiting.c.pool_id == m.SlotPool.id)
        .order_by(m.SlotPool.name)
    )
    code = None
    if user.role != "national_admin" and user.territory_id is not None:
        code = session.scalar(select(m.Territory.code).where(m.Territory.id == user.territory_id))
    out = []
    for pool, partner, n_used, n_wait in session.execute(stmt).all():
        if user.role != "national_admin" and not (
            pool.scope is None or (code is not None and code in pool.scope)
        ):
            continue
        out.append(
            PoolRow(
                id=pool.id,
                code=pool.code,
                name=pool.name,
                partner=partner,
                scope=pool.scope,
                period_start=pool.period_start,
                period_end=pool.period_end,
                capacity=pool.capacity,
                used=int(n_used),
                waiting=int(n_wait),
                unit_kind=pool.unit_kind,
            )  # fmt: skip
        )
    return out


@dataclass
class PartnerRow:
    partner: m.Partner
    offers: list[m.Offer]


def partner_directory(
    session: Session,
    user: m.StaffUser,
    *,
    territory: str | None = None,
    domain: str | None = None,
) -> list[PartnerRow]:
    """Partners and their offers, optionally those covering one territory or one domain."""
    stmt = select(m.Partner).order_by(m.Partner.name)
    if domain:
        stmt = stmt.where(m.Partner.domain == domain)
    partners = session.scalars(stmt).all()
    offers: dict[int, list[m.Offer]] = {}
    for o in session.scalars(select(m.Offer).order_by(m.Offer.name)):
        offers.setdefault(o.partner_id, []).append(o)
    return [
        PartnerRow(p, offers.get(p.id, []))
        for p in partners
        if not territory or p.coverage is None or territory in p.coverage
    ]


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
        )  # fmt: skip
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


def people_in_scope(session: Session, user: m.StaffUser) -> int:
    """How many salarié·es the user may read (shown on the home page)."""
    return session.scalar(select(func.count()).select_from(m.Salarie).where(salarie_scope(user)))


@dataclass
class ProposalRow:
    proposal: m.AllocationProposal
    reference: str
    thematique: str
    territory: str | None
    pool_name: str


@dataclass
class AllocationReview:
    run: m.AllocationRun | None
    proposals: list[ProposalRow]
    by_pool: list[dict[str, Any]]


def allocation_review(session: Session, user: m.StaffUser) -> AllocationReview:
    """Proposals of the latest real run that fall in the user's scope, with its fairness stats."""
    if not can(user, "review_allocation"):
        raise PermissionError("réservé à la coordination")
    run = session.scalar(
        select(m.AllocationRun)
        .where(m.AllocationRun.dry_run.is_(False), m.AllocationRun.status != "running")
        .order_by(m.AllocationRun.id.desc())
        .limit(1)
    )
    if run is None:
        return AllocationReview(None, [], [])
    P, R = m.AllocationProposal, m.Referral
    rows = session.execute(
        select(P, m.Salarie.reference, R.thematique, m.Territory.name, m.SlotPool.name)
        .join(R, R.id == P.referral_id)
        .join(m.Salarie, m.Salarie.id == R.salarie_id)
        .join(m.SlotPool, m.SlotPool.id == P.pool_id)
        .outerjoin(m.Territory, m.Territory.id == R.territory_id)
        .where(P.run_id == run.id, referral_scope(user))
        .order_by(P.status != "proposed", P.priority.desc(), P.id)
    ).all()
    proposals = [ProposalRow(p, ref, th, terr, pool) for p, ref, th, terr, pool in rows]
    return AllocationReview(run, proposals, list((run.stats or {}).get("by_pool", [])))
