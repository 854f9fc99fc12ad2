"""Intake: turn every new frein into a referral in the queue of the person who can lift it.

Why here (and not in the flow): the decision is pure (``matching.routing``); this use case
gathers the network snapshot and the freins that never had a referral, calls the router in
chunks, and writes referrals, their events and the outbox rows with Core bulk inserts —
one transaction per chunk, so a crash loses at most the chunk in progress and a re-run
carries on. The partial unique index "one open referral per frein" makes two concurrent runs
safe: the loser's rows are skipped by ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    MetaData,
    Table,
    bindparam,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from engine.domain.calendar import add_business_days, end_of_day_utc
from engine.domain.clock import Clock
from engine.domain.lifecycle import OPEN_STATES
from engine.outbox import messages
from engine.outbox.enqueue import enqueue_many
from engine.outbox.messages import OUTSIDE_TERRITORY, Links, Recipient
from engine.store import dialect
from engine.store import models as m
from engine.store.db import Database, analyze
from engine.store.settings import Settings
from matching.facts import PersonFacts
from matching.routing import Coordinator, Decision, FreinIn, OfferInfo, Officer, Router
from matching.rules import RoutingRules, load_rules
from partners.data_inclusion_review import review_reasons
from partners.eligibility_rules import Rule

ACTOR_LABEL = "système : intake"
ANALYZE_AFTER_ROWS = 10_000  # a bulk load changes the statistics the queue queries rely on


@dataclass
class IntakeReport:
    """What one intake run did, as counts (flows return this: no personal data)."""

    routed: int = 0
    skipped: int = 0  # already routed by a concurrent run
    by_domain: Counter[str] = field(default_factory=Counter)
    by_owner_kind: Counter[str] = field(default_factory=Counter)
    owners_notified: int = 0
    partner_messages: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "routed": self.routed,
            "skipped": self.skipped,
            "by_domain": dict(self.by_domain),
            "by_owner_kind": dict(self.by_owner_kind),
            "owners_notified": self.owners_notified,
            "partner_messages": self.partner_messages,
        }

    def merge(self, other: IntakeReport) -> None:
        self.routed += other.routed
        self.skipped += other.skipped
        self.by_domain.update(other.by_domain)
        self.by_owner_kind.update(other.by_owner_kind)
        self.owners_notified += other.owners_notified
        self.partner_messages += other.partner_messages


@dataclass
class Network:
    """The snapshot the router needs, read once per run."""

    router: Router
    coordinator_of: dict[str, int]
    territory_codes: dict[int, str]  # id -> code
    territory_names: dict[int, str]
    users: dict[int, tuple[str, str]]  # id -> (display name, email)
    partner_contacts: dict[int, list[int]]  # partner id -> user ids
    # partner id -> its directory address, for partners without an active contact account
    # (``messages.partner_recipients``: the same rule as the case page's referrals)
    partner_addresses: dict[int, str]
    offer_partner: dict[int, tuple[int, str]]  # offer id -> (partner id, partner name)


def load_network(conn, rules: RoutingRules, *, today: date | None = None) -> Network:  # type: ignore[no-untyped-def]
    """Officers with their current load, coordinators, offers and their coverage.

    Services imported from data·inclusion are offers too, unless withdrawn or outside every
    territory; one not updated for 12 months before ``today`` (by default the day of the last
    import) or of low quality is *à vérifier* and ranked after fresh offers."""
    territories = conn.execute(select(m.Territory.id, m.Territory.code, m.Territory.name)).all()
    code_of = {tid: code for tid, code, _ in territories}
    loads = dict(
        conn.execute(
            select(m.Referral.owner_user_id, func.count())
            .where(m.Referral.state.in_(OPEN_STATES), m.Referral.owner_user_id.is_not(None))
            .group_by(m.Referral.owner_user_id)
        ).all()
    )
    officers, coordinators, national = [], [], None
    users: dict[int, tuple[str, str]] = {}
    contacts: dict[int, list[int]] = defaultdict(list)
    for u in conn.execute(select(m.StaffUser).where(m.StaffUser.active)).all():
        users[u.id] = (u.display_name, u.email)
        if u.role == "officer" and u.territory_id in code_of:
            cap = u.caseload_cap if u.caseload_cap is not None else rules.cap_for(u.domain)
            officers.append(
                Officer(u.id, code_of[u.territory_id], u.domain, cap, loads.get(u.id, 0))
            )
        elif u.role == "coordinator" and u.national_queue:
            national = u.id if national is None else min(national, u.id)
        elif u.role == "coordinator" and u.territory_id in code_of:
            coordinators.append(Coordinator(u.id, code_of[u.territory_id]))
        elif u.role == "partner_contact" and u.partner_id is not None:
            contacts[u.partner_id].append(u.id)
    partners = {p.id: p for p in conn.execute(select(m.Partner)).all()}
    imported = _imported_offers(conn, today)
    offers, offer_partner = [], {}
    for o in conn.execute(select(m.Offer)).all():
        p = partners[o.partner_id]
        offer_partner[o.id] = (p.id, p.name)
        review = imported.get(o.id, False)
        if review is None or (o.id in imported and p.coverage == []):
            continue  # withdrawn from the referential, or outside every territory
        offers.append(
            OfferInfo(
                offer_id=o.id,
                partner_id=p.id,
                partner_name=p.name,
                name=o.name,
                thematiques=tuple(o.thematiques),
                coverage=None if p.coverage is None else frozenset(p.coverage),
                slot_based=o.slot_based,
                rules=tuple(Rule.model_validate(r) for r in (o.rules or [])),
                accepts_direct=o.accepts_direct,
                review=review,
            )
        )
    coordinator_of: dict[str, int] = {}
    for c in sorted(coordinators, key=lambda c: c.user_id):
        coordinator_of.setdefault(c.territory, c.user_id)
    router = Router(
        officers,
        coordinators,
        offers,
        rules,
        national_queue_user_id=national,
        territory_labels={code: name for _, code, name in territories},
    )
    return Network(
        router,
        coordinator_of,
        code_of,
        {tid: name for tid, _, name in territories},
        users,
        dict(contacts),
        {
            pid: p.contact_email
            for pid, p in partners.items()
            if p.contact_email and pid not in contacts
        },
        offer_partner,
    )


def _imported_offers(conn, today: date | None) -> dict[int, bool | None]:  # type: ignore[no-untyped-def]
    """offer id -> whether the imported service is *à vérifier* (None: withdrawn)."""
    S = m.ImportedService
    rows = conn.execute(
        select(S.offer_id, S.date_maj, S.score_qualite, S.withdrawn_at, S.updated_at)
    ).all()
    if not rows:
        return {}
    if today is None:
        today = max(r.updated_at for r in rows).date()
    return {
        r.offer_id: None
        if r.withdrawn_at is not None
        else bool(review_reasons(r.date_maj, r.score_qualite, today))
        for r in rows
    }


def _pending_freins(conn) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    """Open freins that never had a referral, with their person's facts, in id order."""
    F, S, C = m.Frein, m.Salarie, m.Chantier
    never = ~exists().where(m.Referral.frein_id == F.id)
    q = (
        select(
            F.id,
            F.thematique,
            F.domain,
            F.identified_at,
            S.id,
            S.chantier_id,
            S.programme,
            C.territory_id,
            S.housing,
            S.street_months,
            S.has_resources,
            S.household_size,
            S.minor_children,
            S.rqth,
            S.vulnerability_flags,
            S.health_urgency,
            S.programme_end,
        )
        .join(S, S.id == F.salarie_id)
        .join(C, C.id == S.chantier_id)
        .where(F.status == "open", never)
        .order_by(F.id)
    )
    return list(conn.execute(q).tuples())


def _facts_by_person(
    rows, code_of: dict[int, str], open_counts: dict[int, int]
) -> dict[int, PersonFacts]:  # type: ignore[no-untyped-def]
    facts: dict[int, PersonFacts] = {}
    flag_sets: dict[str, frozenset[str]] = {}
    for r in rows:
        pid = r[4]
        if pid in facts:
            continue
        flags = flag_sets.get(r[14])
        if flags is None:
            flags = flag_sets[r[14]] = frozenset(x for x in (r[14] or "").split("|") if x)
        facts[pid] = PersonFacts(
            person_id=pid,
            programme=r[6],
            territory=code_of.get(r[7]) if r[7] is not None else None,
            housing=r[8],
            street_months=r[9],
            has_resources=bool(r[10]),
            household_size=r[11],
            minor_children=r[12],
            rqth=bool(r[13]),
            vulnerability_flags=flags,
            health_urgency=bool(r[15]),
            open_freins=open_counts.get(pid, 1),
            programme_end=r[16],
        )
    return facts


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _plain(obj: object) -> object:
    """orjson leaves tuple subclasses (named tuples) to us: encode them as lists."""
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class _Json:
    """json.dumps cached by object identity: decisions share their tuples."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[object, str]] = {}

    def __call__(self, obj: object) -> str:
        hit = self._cache.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        s = orjson.dumps(obj, default=_plain).decode()
        self._cache[id(obj)] = (obj, s)
        return s

    def fresh(self, obj: object) -> str:
        """For per-decision objects (reasons): no cache, just a fast encoder."""
        return orjson.dumps(obj, default=_plain).decode()


# A lightweight view of the referral table whose JSON columns take pre-serialised text.


class _SerialisedJSON(TypeDecorator):  # type: ignore[type-arg]
    """A JSON column fed with text that is already JSON (no second json.dumps)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect):  # type: ignore[no-untyped-def]
        return None


class _StampText(TypeDecorator):  # type: ignore[type-arg]
    """A DateTime column fed with SQLite's own text format, formatted once per run."""

    impl = DateTime
    cache_ok = True

    def bind_processor(self, dialect):  # type: ignore[no-untyped-def]
        return None


_bulk_md = MetaData()


def _bulk_view(table: Table) -> Table:
    """The model's table, column for column, with JSON fed as pre-serialised text and
    datetimes as pre-formatted stamps. Derived, so a column added to the model is here too."""

    def raw(col: Column) -> Any:  # type: ignore[type-arg]
        if isinstance(col.type, JSON):
            return _SerialisedJSON()
        if isinstance(col.type, DateTime):
            return _StampText()
        return col.type

    cols = [Column(c.name, raw(c), primary_key=c.primary_key) for c in table.columns]
    return Table(table.name, _bulk_md, *cols)


_referral_bulk = _bulk_view(m.table_of(m.Referral))
_event_bulk = _bulk_view(m.table_of(m.ReferralEvent))


def run_intake(
    db: Database,
    settings: Settings,
    *,
    clock: Clock,
    chunk_size: int = 100_000,
    rules: RoutingRules | None = None,
) -> IntakeReport:
    """Route every frein that never had a referral. Idempotent; safe to run concurrently."""
    rules = rules or load_rules(settings.rules_file)
    today = clock.today()
    now = clock.now()
    triage_due = end_of_day_utc(add_business_days(today, settings.triage_deadline_business_days))
    partner_due = now + timedelta(days=settings.partner_answer_days)
    with db.engine.connect() as conn:
        net = load_network(conn, rules, today=today)
        rows = _pending_freins(conn)
        open_counts = dict(
            conn.execute(
                select(m.Frein.salarie_id, func.count())
                .where(m.Frein.status == "open")
                .group_by(m.Frein.salarie_id)
            ).all()
        )
        sticky = {
            (sid, dom): owner
            for sid, dom, owner in conn.execute(
                select(m.Referral.salarie_id, m.Referral.domain, m.Referral.owner_user_id).where(
                    m.Referral.state.in_(OPEN_STATES), m.Referral.owner_kind == "officer"
                )
            ).all()
        }
        conn.rollback()
    code_of = net.territory_codes
    facts = _facts_by_person(rows, code_of, open_counts)
    report = IntakeReport()
    dumps = _Json()

    def frein_inputs(chunk: list[tuple[Any, ...]]) -> list[FreinIn]:
        return [
            FreinIn(r[0], r[1], facts[r[4]], r[3], sticky.get((r[4], rules.domain_of(r[1]))))
            for r in chunk
        ]

    row_chunks = list(_chunks(rows, chunk_size))
    decision_chunks = net.router.route_chunks((frein_inputs(c) for c in row_chunks), today)
    for chunk, decisions in zip(row_chunks, decision_chunks, strict=True):
        report.merge(
            _write_chunk(db, settings, net, chunk, decisions, dumps, now, triage_due, partner_due)
        )
    if report.routed >= ANALYZE_AFTER_ROWS:
        analyze(db)
    return report


class _Created(NamedTuple):
    """A referral the chunk really inserted (a concurrent intake may have taken the frein)."""

    id: int
    frein_id: int
    owner_user_id: int | None
    state: str
    offer_id: int | None
    salarie_id: int
    territory_id: int | None


def _write_chunk(
    db: Database,
    settings: Settings,
    net: Network,
    chunk: list[tuple[Any, ...]],
    decisions: list[Decision],
    dumps: _Json,
    now: datetime,
    triage_due: datetime,
    partner_due: datetime,
) -> IntakeReport:
    """One transaction: the chunk's referrals, their events, the freins' routed domain and
    the messages (owners' counts, partners' orientations)."""
    sqlite = dialect.is_sqlite(db.engine)
    stamps = tuple(dialect.bulk_stamp(v, sqlite=sqlite) for v in (now, triage_due, partner_due))
    values, by_frein = _referral_rows(net, chunk, decisions, dumps, stamps)
    report = IntakeReport()
    with db.engine.connect().execution_options(sqlite_begin="IMMEDIATE") as conn, conn.begin():
        created = _insert_referrals(conn, values, sqlite=sqlite)
        report.routed = len(created)
        report.skipped = len(values) - len(created)
        if created:
            stored_domain = {r[0]: r[2] for r in chunk}
            _record_routing(conn, created, by_frein, stored_domain, at=stamps[0])
        for c in created:
            report.by_domain[by_frein[c.frein_id].domain] += 1
            report.by_owner_kind[by_frein[c.frein_id].owner_kind] += 1
        with _session(conn) as session:
            batch = _messages(conn, settings, net, created, now=now)
            report.owners_notified = sum(1 for msg in batch if msg["kind"] == "new_referrals")
            report.partner_messages = len(batch) - report.owners_notified
            enqueue_many(session, batch, base_url=settings.base_url, now=now)
            session.flush()
    return report


def _referral_rows(
    net: Network,
    chunk: list[tuple[Any, ...]],
    decisions: list[Decision],
    dumps: _Json,
    stamps: tuple[object, ...],
) -> tuple[list[dict[str, Any]], dict[int, Decision]]:
    """The bulk rows of the chunk's referrals (every required column, checked)."""
    now_s, triage_s, partner_s = stamps
    values: list[dict[str, Any]] = []
    by_frein: dict[int, Decision] = {}
    for r, d in zip(chunk, decisions, strict=True):
        territory_id = r[7]
        owner = d.owner_user_id
        state, due = "new", triage_s
        if d.owner_kind == "partner":  # the coordination follows what partners were sent
            state, due = "referred", partner_s
            code = net.territory_codes.get(territory_id, "") if territory_id else ""
            owner = net.coordinator_of.get(code) if territory_id else None
        by_frein[r[0]] = d
        values.append(
            {
                "frein_id": r[0],
                "salarie_id": r[4],
                "chantier_id": r[5],
                "territory_id": territory_id,
                "programme": r[6],
                "domain": d.domain,
                "thematique": r[1],
                "state": state,
                "owner_kind": d.owner_kind,
                "owner_user_id": owner,
                "offer_id": d.partner_offer_id,
                "units_needed": 1,
                "priority": d.priority,
                "priority_breakdown": dumps(d.breakdown),
                "reasons": dumps.fresh(d.reasons),
                "explanation": d.explanation_fr,
                "suggestions": dumps(d.suggestions),
                "due_at": due,
                "reminders_sent": 0,
                "created_at": now_s,
                "state_changed_at": now_s,
                "version": 1,
            }
        )
    dialect.check_bulk_rows(m.table_of(m.Referral), values)
    return values, by_frein


def _insert_referrals(conn: Any, values: list[dict[str, Any]], *, sqlite: bool) -> list[_Created]:
    """Insert, skipping freins that already have an open referral; the rows really written."""
    if not values:
        return []
    open_sql = text("state IN (" + ", ".join(f"'{s}'" for s in OPEN_STATES) + ")")
    stmt = dialect.insert_ignoring(
        conn, _referral_bulk, index_elements=["frein_id"], index_where=open_sql
    )
    cols = _referral_bulk.c
    wanted = [getattr(cols, name) for name in _Created._fields]
    if sqlite:
        # BEGIN IMMEDIATE holds SQLite's only write lock: every id above the previous
        # maximum is ours, so a plain executemany (C loop) replaces RETURNING.
        before = conn.execute(select(func.coalesce(func.max(cols.id), 0))).scalar_one()
        conn.execute(stmt, values)
        rows = conn.execute(select(*wanted).where(cols.id > before).order_by(cols.id)).all()
    else:
        rows = dialect.copy_insert_ignoring(
            conn,
            m.table_of(m.Referral),
            values,
            index_elements=["frein_id"],
            index_where=open_sql,
            returning=_Created._fields,
        )
    return [_Created(*row) for row in rows]


def _record_routing(
    conn: Any,
    created: list[_Created],
    by_frein: dict[int, Decision],
    stored_domain: dict[int, str],
    *,
    at: object,
) -> None:
    """The "route" event of each referral, and the routed domain stored on its frein (the
    rules may override the taxonomy's: scope and case page read it from the frein)."""
    events = [
        {
            "referral_id": c.id,
            "from_state": None,
            "to_state": c.state,
            "action": "route",
            "actor_user_id": None,
            "actor_label": ACTOR_LABEL,
            "at": at,
            "reason": None,
            "note": None,
        }
        for c in created
    ]
    dialect.check_bulk_rows(m.table_of(m.ReferralEvent), events)
    if dialect.is_postgresql(conn):
        dialect.copy_rows(conn, m.table_of(m.ReferralEvent), events)
    else:
        conn.execute(insert(_event_bulk), events)
    moved = [
        {"fid": c.frein_id, "dom": by_frein[c.frein_id].domain}
        for c in created
        if by_frein[c.frein_id].domain != stored_domain[c.frein_id]
    ]
    if moved:
        frein = m.table_of(m.Frein)
        conn.execute(
            update(frein).where(frein.c.id == bindparam("fid")).values(domain=bindparam("dom")),
            moved,
        )


def _messages(
    conn: Any, settings: Settings, net: Network, created: list[_Created], *, now: datetime
) -> list[dict[str, Any]]:
    """One count per owner of new items, one orientation per partner contact."""
    links = Links(settings.base_url)
    per_owner: Counter[int] = Counter()
    to_partners: list[_Created] = []
    for c in created:  # one pass: a chunk holds up to 100,000 referrals
        if c.state == "referred" and c.offer_id is not None:
            to_partners.append(c)
        elif c.owner_user_id is not None:
            per_owner[c.owner_user_id] += 1
    first_id = min((c.id for c in created), default=0)
    batch = [
        messages.new_referrals(
            links, Recipient(owner, *net.users[owner]), count=n, first_id=first_id
        )
        for owner, n in sorted(per_owner.items())
    ]
    if not to_partners:
        return batch
    refs = dict(
        conn.execute(
            select(m.Salarie.id, m.Salarie.reference).where(
                m.Salarie.id.in_({c.salarie_id for c in to_partners})
            )
        ).all()
    )
    expires = (now + timedelta(days=settings.partner_expiry_days)).date()
    for c in to_partners:
        assert c.offer_id is not None
        partner_id, partner_name = net.offer_partner[c.offer_id]
        token = messages.partner_token(settings, referral_id=c.id, partner_id=partner_id, now=now)
        territory = net.territory_names.get(c.territory_id or 0, OUTSIDE_TERRITORY)
        recipients = [Recipient(c, *net.users[c]) for c in net.partner_contacts.get(partner_id, [])]
        if not recipients and partner_id in net.partner_addresses:
            recipients = [Recipient.address(net.partner_addresses[partner_id])]
        for recipient in recipients:
            batch.append(  # a routed referral is at version 1 with no reminder sent yet
                messages.partner_orientation(
                    links,
                    recipient,
                    referral_id=c.id,
                    version=1,
                    reminders_sent=0,
                    partner_name=partner_name,
                    reference=refs[c.salarie_id],
                    territory=territory,
                    token=token,
                    expires_on=expires,
                )
            )
    return batch


@contextmanager
def _session(conn) -> Iterator[Session]:  # type: ignore[no-untyped-def]
    """A Session joined to the chunk's connection: its writes commit with the chunk."""
    session = Session(bind=conn)
    try:
        yield session
        session.flush()
    finally:
        session.close()
