"""Read models of the home page ("Tableau de bord"): for each role, what waits and for whom.

Why grouped reads: the national view must answer in milliseconds on a million referrals, so
every figure is a COUNT grouped by territory, domain, owner or state over the referral indexes
(open referrals by scope, by owner, by deadline), never a referral loaded one by one; the
lists are short (``LIST_LIMIT`` rows, a LIMIT in SQL). Every read goes through
``referral_scope(user)`` and the deadline terms of the queue (``engine.referrals.queue``), so
a figure is exactly the total of the queue page it links to, and a chargée of Paris logement
never counts an orientation of Isère.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, aliased

from engine.access.permissions import PARTNER_VISIBLE_STATES, referral_scope
from engine.domain.clock import PARIS, as_utc
from engine.domain.lifecycle import OPEN_STATES
from engine.domain.vocabulary import FOLLOWUP_MONTHS
from engine.referrals.queue import DEADLINE_STATES, open_states_sql, overdue_terms
from engine.store import models as m
from matching.grid import add_months
from matching.rules import RoutingRules
from partners.taxonomy import DOMAINS

LIST_LIMIT = 10  # rows of a short list (overdue, awaiting an answer, answers received)
RECENT_ANSWERS = timedelta(days=7)  # "réponses reçues" of a chargée
RESPONSE_WINDOW = timedelta(days=90)  # partners' response times of a territory
FOLLOWUP_LATE = timedelta(days=90)  # a follow-up due longer ago is no longer listed
FOLLOWUP_AHEAD = timedelta(days=14)  # nor one due further ahead
HORS_TERRITOIRE = "hors-territoire"  # the queue's code for chantiers outside the territories
HORS_TERRITOIRE_NAME = "Hors territoire"
PARTNER_ANSWERS = ("partner_accept", "refuse")  # from "referred": the partner's answer
# Where a referral can be once its partner answered: accepted, then started, closed or
# cancelled; or refused. Narrows the referrals whose events are read.
_AFTER_ANSWER = ("accepted", "in_progress", "closed", "refused", "cancelled")
PARTNER_OPEN_STATES = tuple(s for s in OPEN_STATES if s in PARTNER_VISIBLE_STATES)


@dataclass(frozen=True)
class StateCounts:
    """Open referrals per state (every state asked for, zeros included) and how many of
    them are past their deadline (triage or partner answer, as the queue says)."""

    by_state: dict[str, int]
    overdue: int

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    def __getitem__(self, state: str) -> int:
        return self.by_state.get(state, 0)


@dataclass(frozen=True)
class Item:
    """One referral of a short list: enough to recognise it and open its case."""

    id: int
    reference: str
    thematique: str
    state: str
    due_at: datetime | None
    since: datetime  # when it entered its state (sent to the partner, for "referred")
    partner: str | None
    overdue: bool  # past its deadline (triage or partner answer), as the queue says


@dataclass(frozen=True)
class Answer:
    """A partner's answer: accepted or declined, when."""

    id: int
    reference: str
    thematique: str
    partner: str | None
    accepted: bool
    at: datetime


@dataclass
class OfficerHome:
    """A chargée's home: their own load against their cap, what is late, what waits for a
    partner, the answers of the last days; and their whole scope (territory × domain)."""

    mine: StateCounts
    scope: StateCounts
    cap: int
    overdue: list[Item]
    awaiting_partner: list[Item]
    answers: list[Answer]

    @property
    def load(self) -> int:
        return self.mine.total

    @property
    def accepted(self) -> int:
        return sum(1 for a in self.answers if a.accepted)

    @property
    def declined(self) -> int:
        return sum(1 for a in self.answers if not a.accepted)


@dataclass(frozen=True)
class OfficerLoad:
    user_id: int
    name: str
    domain: str | None
    load: int
    cap: int

    @property
    def ratio(self) -> float | None:
        return self.load / self.cap if self.cap else None


@dataclass(frozen=True)
class PartnerDelay:
    """A partner's answers of the window: how many, how many accepted, the median delay."""

    partner: str
    answers: int
    accepted: int
    median_days: float | None


@dataclass
class TerritoryHome:
    """A territory's queues per domain, its chargé·es' loads, its partners' response times."""

    code: str  # territory code, or HORS_TERRITOIRE
    name: str
    queues: dict[str, StateCounts]  # domain -> counts, every domain in taxonomy order
    loads: list[OfficerLoad]
    delays: list[PartnerDelay]

    @property
    def total(self) -> StateCounts:
        by_state: dict[str, int] = defaultdict(int)
        for counts in self.queues.values():
            for state, n in counts.by_state.items():
                by_state[state] += n
        return StateCounts(
            {s: by_state[s] for s in OPEN_STATES}, sum(c.overdue for c in self.queues.values())
        )


@dataclass(frozen=True)
class TerritoryLine:
    code: str  # territory code, or HORS_TERRITOIRE
    name: str
    open: int
    overdue: int
    referred: int  # awaiting a partner's answer
    waitlisted: int  # waiting for a place
    placed: int  # placed this year (a slot proposal validated)


@dataclass
class NetworkHome:
    year: int
    lines: list[TerritoryLine]

    @property
    def total(self) -> TerritoryLine:
        return TerritoryLine(
            code="",
            name="Tout le réseau",
            open=sum(x.open for x in self.lines),
            overdue=sum(x.overdue for x in self.lines),
            referred=sum(x.referred for x in self.lines),
            waitlisted=sum(x.waitlisted for x in self.lines),
            placed=sum(x.placed for x in self.lines),
        )


@dataclass(frozen=True)
class PersonLine:
    """A salarié·e of the chantier with open orientations (pseudonymous reference only)."""

    salarie_id: int
    reference: str
    external_ref: str | None
    open: int
    overdue: int
    domains: tuple[str, ...]


@dataclass(frozen=True)
class FollowUpDue:
    salarie_id: int
    reference: str
    months: int
    due_on: date
    to_do: bool  # due today or before (else coming within FOLLOWUP_AHEAD)


@dataclass
class ChantierHome:
    code: str
    name: str
    counts: StateCounts
    people: list[PersonLine]
    people_total: int
    follow_ups: list[FollowUpDue] = field(default_factory=list)


@dataclass
class PartnerHome:
    name: str
    counts: StateCounts
    waiting: list[Item]


# --- shared pieces ---------------------------------------------------------------------------


def _late(now: datetime) -> ColumnElement[int]:
    """1 for a referral past its deadline (the queue's "En retard"), else 0."""
    return case((and_(*overdue_terms(now)), 1), else_=0)


def _counts(rows: list[tuple[str, int, int | None]], states: tuple[str, ...]) -> StateCounts:
    found = {state: (int(n), int(late or 0)) for state, n, late in rows}
    return StateCounts(
        {s: found.get(s, (0, 0))[0] for s in states}, sum(late for _, late in found.values())
    )


def _state_counts(
    session: Session, where: list[ColumnElement[bool]], now: datetime, states: tuple[str, ...]
) -> StateCounts:
    """One COUNT grouped by state of the open referrals matching ``where``."""
    R = m.Referral
    rows = session.execute(
        select(R.state, func.count(), func.sum(_late(now)))
        .where(*where, R.state.in_(open_states_sql()))
        .group_by(R.state)
    ).all()
    return _counts([(s, n, late) for s, n, late in rows], states)


def _items(
    session: Session,
    where: list[ColumnElement[bool]],
    order: list[Any],
    n: int,
    *,
    now: datetime,
) -> list[Item]:
    """At most ``n`` referrals matching ``where``, with their reference and partner."""
    R = m.Referral
    rows = session.execute(
        select(
            R.id,
            m.Salarie.reference,
            R.thematique,
            R.state,
            R.due_at,
            R.state_changed_at,
            m.Partner.name,
        )
        .join(m.Salarie, m.Salarie.id == R.salarie_id)
        .outerjoin(m.Offer, m.Offer.id == R.offer_id)
        .outerjoin(m.Partner, m.Partner.id == m.Offer.partner_id)
        .where(*where)
        .order_by(*order)
        .limit(n)
    ).all()
    return [
        Item(
            id=rid,
            reference=ref,
            thematique=them,
            state=state,
            due_at=as_utc(due) if due is not None else None,
            since=as_utc(since),
            partner=partner,
            overdue=state in DEADLINE_STATES and due is not None and as_utc(due) < now,
        )
        for rid, ref, them, state, due, since, partner in rows
    ]


def cap_of(user: m.StaffUser, rules: RoutingRules) -> int:
    """A chargée's caseload cap: their account's, else the rules' default for the domain
    (the one the intake routes by)."""
    if user.caseload_cap is not None:
        return user.caseload_cap
    return rules.cap_for(user.domain or "")


# --- chargé·e de partenariats ----------------------------------------------------------------


def officer_home(
    session: Session, user: m.StaffUser, *, now: datetime, rules: RoutingRules
) -> OfficerHome:
    """The chargée's home: one COUNT grouped by (owned, state) over their scope, two short
    lists (overdue first, oldest sent to a partner first), the answers of the last 7 days."""
    R = m.Referral
    scope = referral_scope(user)
    mine = case((R.owner_user_id == user.id, 1), else_=0)
    rows = session.execute(
        select(mine, R.state, func.count(), func.sum(_late(now)))
        .where(scope, R.state.in_(open_states_sql()))
        .group_by(mine, R.state)
    ).all()
    own = [(s, n, late) for owned, s, n, late in rows if owned]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _owned, s, n, late in rows:
        totals[s][0] += int(n)
        totals[s][1] += int(late or 0)
    owned_by_me = [scope, R.owner_user_id == user.id]
    overdue = _items(
        session,
        [*owned_by_me, R.state.in_(open_states_sql()), *overdue_terms(now)],
        [R.due_at, R.id],
        LIST_LIMIT,
        now=now,
    )
    awaiting = _items(
        session,
        [*owned_by_me, R.state == "referred"],
        [R.state_changed_at, R.id],
        LIST_LIMIT,
        now=now,
    )
    return OfficerHome(
        mine=_counts(own, OPEN_STATES),
        scope=_counts([(s, n, late) for s, (n, late) in totals.items()], OPEN_STATES),
        cap=cap_of(user, rules),
        overdue=overdue,
        awaiting_partner=awaiting,
        answers=_answers(session, owned_by_me, since=now - RECENT_ANSWERS, now=now),
    )


def _partner_answers(
    columns: list[Any], where: list[ColumnElement[bool]], *, since: datetime, now: datetime
) -> Select[Any]:
    """``columns`` of the partners' answers (accepted or declined from "referred") in
    [since, now] on the referrals matching ``where``, with the referral (R), its event (E) and
    its partner joined. The referrals are narrowed first to those that moved since: an answer
    moves the referral, so its last change is at or after the answer.

    Joined, not looked up per referral: one probe of the events' index per candidate
    referral (three correlated subqueries) measured 4 to 6 times slower on a million
    referrals than letting the planner join the events once."""
    R, E = m.Referral, m.ReferralEvent
    return (
        select(*columns)
        .select_from(E)
        .join(R, R.id == E.referral_id)
        .join(m.Offer, m.Offer.id == R.offer_id)
        .join(m.Partner, m.Partner.id == m.Offer.partner_id)
        .where(
            *where,
            R.state.in_(_AFTER_ANSWER),
            R.state_changed_at >= since,
            E.from_state == "referred",
            E.action.in_(PARTNER_ANSWERS),
            E.at >= since,
            E.at <= now,
        )
    )


def _answers(
    session: Session, where: list[ColumnElement[bool]], *, since: datetime, now: datetime
) -> list[Answer]:
    R, E = m.Referral, m.ReferralEvent
    columns = [R.id, m.Salarie.reference, R.thematique, m.Partner.name, E.action, E.at]
    rows = session.execute(
        _partner_answers(columns, where, since=since, now=now)
        .join(m.Salarie, m.Salarie.id == R.salarie_id)
        .order_by(E.at.desc(), E.id.desc())
    ).all()
    return [
        Answer(
            id=rid,
            reference=ref,
            thematique=them,
            partner=partner,
            accepted=action == "partner_accept",
            at=as_utc(at),
        )
        for rid, ref, them, partner, action, at in rows
    ]


# --- coordination: one territory --------------------------------------------------------------


def territory_of(session: Session, user: m.StaffUser, code: str | None) -> tuple[str, str] | None:
    """(code, name) of the territory whose home ``user`` asks for — their own when ``code``
    is None — or None when the user may not see it (unknown code, another territory, a role
    without a territory view): the page answers 404."""
    if user.role == "coordinator":
        own = HORS_TERRITOIRE if user.national_queue else None
        if own is None and user.territory_id is not None:
            own = session.scalar(
                select(m.Territory.code).where(m.Territory.id == user.territory_id)
            )
        if own is None or (code is not None and code != own):
            return None
        code = own
    elif user.role != "national_admin" or code is None:
        return None
    if code == HORS_TERRITOIRE:
        return HORS_TERRITOIRE, HORS_TERRITOIRE_NAME
    name = session.scalar(select(m.Territory.name).where(m.Territory.code == code))
    return (code, name) if name is not None else None


def _in_territory(code: str) -> ColumnElement[bool]:
    R = m.Referral
    if code == HORS_TERRITOIRE:
        return R.territory_id.is_(None)
    tid = select(m.Territory.id).where(m.Territory.code == code).scalar_subquery()
    return R.territory_id == tid


def territory_home(
    session: Session,
    user: m.StaffUser,
    territory: tuple[str, str],
    *,
    now: datetime,
    rules: RoutingRules,
) -> TerritoryHome:
    """A territory's home (``territory`` from ``territory_of``): the queues per domain (one
    COUNT grouped by domain and state), each chargée's load (one COUNT grouped by owner), the
    partners' median response time over the last 90 days."""
    R = m.Referral
    code, name = territory
    where = [referral_scope(user), _in_territory(code)]
    rows = session.execute(
        select(R.domain, R.state, func.count(), func.sum(_late(now)))
        .where(*where, R.state.in_(open_states_sql()))
        .group_by(R.domain, R.state)
    ).all()
    by_domain: dict[str, list[tuple[str, int, int | None]]] = defaultdict(list)
    for domain, state, n, late in rows:
        by_domain[domain].append((state, n, late))
    queues = {d: _counts(by_domain.get(d, []), OPEN_STATES) for d in DOMAINS}
    return TerritoryHome(
        code=code,
        name=name,
        queues=queues,
        loads=_loads(session, user, code, rules),
        delays=_delays(session, where, since=now - RESPONSE_WINDOW, now=now),
    )


def _loads(
    session: Session, user: m.StaffUser, code: str, rules: RoutingRules
) -> list[OfficerLoad]:
    """The territory's active chargé·es with their open referrals (in the reader's scope)."""
    if code == HORS_TERRITOIRE:
        return []
    R, U = m.Referral, m.StaffUser
    load = (
        select(R.owner_user_id.label("owner"), func.count().label("n"))
        .where(referral_scope(user), R.state.in_(open_states_sql()))
        .where(
            R.owner_user_id.in_(
                select(U.id).where(
                    U.role == "officer",
                    U.territory_id
                    == select(m.Territory.id).where(m.Territory.code == code).scalar_subquery(),
                )
            )
        )
        .group_by(R.owner_user_id)
        .subquery()
    )
    rows = session.execute(
        select(U, func.coalesce(load.c.n, 0))
        .outerjoin(load, load.c.owner == U.id)
        .join(m.Territory, m.Territory.id == U.territory_id)
        .where(U.role == "officer", U.active, m.Territory.code == code)
        .order_by(U.domain, U.display_name, U.id)
    ).all()
    return [
        OfficerLoad(
            user_id=u.id, name=u.display_name, domain=u.domain, load=int(n), cap=cap_of(u, rules)
        )
        for u, n in rows
    ]


def _delays(
    session: Session, where: list[ColumnElement[bool]], *, since: datetime, now: datetime
) -> list[PartnerDelay]:
    """Per partner, the answers of the window and the median days from sending to answer.

    The answers are found like a chargée's (``_partner_answers``); the sending is the last
    event that brought the referral into "referred" before the answer (a referral, a routing
    straight to a partner, a transfer to a partner). The median is taken here over the
    answers' delays — numbers only, a few per partner and week — since SQLite has no median.
    """
    E = m.ReferralEvent
    sent_event = aliased(m.ReferralEvent)
    sent = (
        select(func.max(sent_event.at))
        .where(
            sent_event.referral_id == E.referral_id,
            sent_event.to_state == "referred",
            or_(sent_event.from_state.is_(None), sent_event.from_state != "referred"),
            sent_event.at <= E.at,
        )
        .scalar_subquery()
    )
    columns = [m.Partner.name, E.action, E.at, sent]
    rows = session.execute(_partner_answers(columns, where, since=since, now=now)).all()
    by_partner: dict[str, list[tuple[bool, float | None]]] = defaultdict(list)
    for partner, action, at, sent_at in rows:
        days = None
        if sent_at is not None:
            days = (as_utc(at) - as_utc(sent_at)).total_seconds() / 86400
        by_partner[partner].append((action == "partner_accept", days))
    out = []
    for partner, answers in by_partner.items():
        measured = [d for _, d in answers if d is not None]
        out.append(
            PartnerDelay(
                partner=partner,
                answers=len(answers),
                accepted=sum(1 for ok, _ in answers if ok),
                median_days=statistics.median(measured) if measured else None,
            )
        )
    return sorted(out, key=lambda p: (-(p.median_days or 0), p.partner))


# --- national team: the territories side by side ----------------------------------------------


def network_home(session: Session, user: m.StaffUser, *, now: datetime) -> NetworkHome:
    """Every territory (and the chantiers outside them) side by side, in three grouped reads.

    Open referrals by territory and state are one COUNT per open state, glued by UNION ALL:
    with the state as an equality, SQLite skip-scans the scope index (territory, domain,
    state) and reads only the open entries, where an IN list made it read the whole index —
    measured on a million referrals (a quarter open): 45 ms instead of 400 on SQLite, 42
    instead of 130 on PostgreSQL. The overdue ones are counted by territory with the queue's
    deadline terms (read from the scope index when it carries the deadline, else from the
    partial index of open referrals by deadline); the places validated this year from the
    slot assignments (a few thousand rows), joined to their referral by id."""
    R, A = m.Referral, m.SlotAssignment
    scope = referral_scope(user)
    counts: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_state = union_all(
        *(
            select(R.territory_id, literal(state), func.count())
            .where(scope, R.state == state)
            .group_by(R.territory_id)
            for state in OPEN_STATES
        )
    )
    for tid, state, n in session.execute(per_state).all():
        counts[tid][state] += int(n)
    overdue = dict(
        session.execute(
            select(R.territory_id, func.count())
            .where(scope, R.state.in_(open_states_sql()), *overdue_terms(now))
            .group_by(R.territory_id)
        ).all()
    )
    year = now.astimezone(PARIS).year
    start = datetime(year, 1, 1, tzinfo=PARIS).astimezone(UTC)  # stored and compared in UTC
    validated = select(A.referral_id).where(A.created_at >= start, A.created_at <= now)
    placed = dict(
        session.execute(
            select(R.territory_id, func.count())
            .where(scope, R.id.in_(validated))
            .group_by(R.territory_id)
        ).all()
    )
    territories = session.execute(
        select(m.Territory.id, m.Territory.code, m.Territory.name).order_by(m.Territory.name)
    ).all()
    places: list[tuple[int | None, str, str]] = [(t, c, n) for t, c, n in territories]
    if None in counts or None in placed:
        places.append((None, HORS_TERRITOIRE, HORS_TERRITOIRE_NAME))
    lines = [
        TerritoryLine(
            code=code,
            name=name,
            open=sum(counts[tid].values()) if tid in counts else 0,
            overdue=int(overdue.get(tid, 0)),
            referred=counts[tid]["referred"] if tid in counts else 0,
            waitlisted=counts[tid]["waitlisted"] if tid in counts else 0,
            placed=int(placed.get(tid, 0)),
        )
        for tid, code, name in places
    ]
    return NetworkHome(year=year, lines=lines)


# --- CIP / ESP: one chantier --------------------------------------------------------------------


def chantier_home(
    session: Session, user: m.StaffUser, *, now: datetime, today: date
) -> ChantierHome | None:
    """The chantier's salarié·es with open orientations (one COUNT grouped by person and
    domain, most overdue first) and the CVG follow-ups to record around today."""
    if user.role != "cip" or user.chantier_id is None:
        return None
    chantier = session.get(m.Chantier, user.chantier_id)
    if chantier is None:
        return None
    R, S = m.Referral, m.Salarie
    where = [referral_scope(user), R.chantier_id == chantier.id]
    counts = _state_counts(session, where, now, OPEN_STATES)
    rows = session.execute(
        select(S.id, S.reference, S.external_ref, R.domain, func.count(), func.sum(_late(now)))
        .join(S, S.id == R.salarie_id)
        .where(*where, R.state.in_(open_states_sql()))
        .group_by(S.id, S.reference, S.external_ref, R.domain)
    ).all()
    refs: dict[int, tuple[str, str | None]] = {}
    open_n: dict[int, int] = defaultdict(int)
    late_n: dict[int, int] = defaultdict(int)
    domains: dict[int, set[str]] = defaultdict(set)
    for sid, ref, ext, domain, n, late in rows:
        refs[sid] = (ref, ext)
        open_n[sid] += int(n)
        late_n[sid] += int(late or 0)
        domains[sid].add(domain)
    lines = sorted(
        (
            PersonLine(
                salarie_id=sid,
                reference=ref,
                external_ref=ext,
                open=open_n[sid],
                overdue=late_n[sid],
                domains=tuple(d for d in DOMAINS if d in domains[sid]),
            )
            for sid, (ref, ext) in refs.items()
        ),
        key=lambda x: (-x.overdue, -x.open, x.reference),
    )
    return ChantierHome(
        code=chantier.code,
        name=chantier.name,
        counts=counts,
        people=lines[: LIST_LIMIT * 3],
        people_total=len(lines),
        follow_ups=_follow_ups(session, chantier.id, today),
    )


def _follow_ups(session: Session, chantier_id: int, today: date) -> list[FollowUpDue]:
    """CVG follow-ups (3, 6, 12 months after exit) not yet recorded whose date falls
    between ``FOLLOWUP_LATE`` ago and ``FOLLOWUP_AHEAD`` from today (one query)."""
    S, F = m.Salarie, m.FollowUp
    first, last = min(FOLLOWUP_MONTHS), max(FOLLOWUP_MONTHS)
    oldest_exit = add_months(today - FOLLOWUP_LATE, -last)
    newest_exit = add_months(today + FOLLOWUP_AHEAD, -first)
    rows = session.execute(
        select(S.id, S.reference, S.exit_date, F.months)
        .outerjoin(F, F.salarie_id == S.id)
        .where(
            S.chantier_id == chantier_id,
            S.programme == "cvg",
            S.exit_date.is_not(None),
            S.exit_date >= oldest_exit,
            S.exit_date <= newest_exit,
        )
    ).all()
    done: dict[int, set[int]] = defaultdict(set)
    exits: dict[int, tuple[str, date]] = {}
    for sid, ref, exit_date, months in rows:
        if exit_date is not None:  # selected non-null
            exits[sid] = (ref, exit_date)
        if months is not None:
            done[sid].add(months)
    out = []
    for sid, (ref, exit_date) in exits.items():
        for k in FOLLOWUP_MONTHS:
            due = add_months(exit_date, k)
            if k not in done[sid] and today - FOLLOWUP_LATE <= due <= today + FOLLOWUP_AHEAD:
                out.append(FollowUpDue(sid, ref, k, due, to_do=due <= today))
    return sorted(out, key=lambda f: (f.due_on, f.reference, f.months))


# --- partner contact ----------------------------------------------------------------------------


def partner_home(session: Session, user: m.StaffUser, *, now: datetime) -> PartnerHome | None:
    """The orientations addressed to the contact's organisation that wait for its answer
    (oldest first), and its open ones by state."""
    if user.role != "partner_contact" or user.partner_id is None:
        return None
    name = session.scalar(select(m.Partner.name).where(m.Partner.id == user.partner_id))
    if name is None:
        return None
    R = m.Referral
    scope = referral_scope(user)
    waiting = _items(
        session, [scope, R.state == "referred"], [R.state_changed_at, R.id], LIST_LIMIT, now=now
    )
    return PartnerHome(
        name=name,
        counts=_state_counts(session, [scope], now, PARTNER_OPEN_STATES),
        waiting=waiting,
    )
