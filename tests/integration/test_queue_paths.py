"""The queue's fast paths give exactly what the plain scoped query gives, on both databases.

Why: the page in priority order is read branch by branch (territory × domain, owner,
chantier) and merged, and the totals are counted per disjoint branch and cached per
referrals' version. A branch missed or counted twice would hide or double rows without any
error, so every account of a routed network is compared, page by page, with the plain
``referral_scope`` query — after owners were moved across territories and states mixed.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

from sqlalchemy import func, select, update

from engine.access.permissions import referral_scope
from engine.domain.clock import Clock
from engine.domain.lifecycle import OPEN_STATES
from engine.intake.run import run_intake
from engine.network.seed import seed_network
from engine.referrals.actions import Actor, transition
from engine.referrals.queue import QueueFilters, count_queue, list_queue
from engine.referrals.queue_cache import CountCache
from engine.store import models as m
from engine.store.db import unit_of_work
from engine.store.settings import Settings


def _clock() -> Clock:
    return Clock.on_day(date(2026, 11, 26))


def _network(db):  # type: ignore[no-untyped-def]
    clock = _clock()
    seed_network(db, scale=0.1, seed=7, clock=clock)
    run_intake(db, Settings(database_url=db.url), clock=clock)
    rng = random.Random(3)
    with unit_of_work(db) as s:
        ids = list(s.scalars(select(m.Referral.id).order_by(m.Referral.id)))
        officers = list(s.scalars(select(m.StaffUser.id).where(m.StaffUser.role == "officer")))
        coords = list(s.scalars(select(m.StaffUser.id).where(m.StaffUser.role == "coordinator")))
        # Owners moved across territories (transfers, assignments), states mixed, equal
        # priorities (ties broken by id), deadlines past and future.
        for rid in rng.sample(ids, len(ids) // 5):
            s.execute(
                update(m.Referral)
                .where(m.Referral.id == rid)
                .values(owner_user_id=rng.choice(officers + coords))
            )
        for rid in rng.sample(ids, len(ids) // 4):
            s.execute(
                update(m.Referral)
                .where(m.Referral.id == rid)
                .values(
                    state=rng.choice(["triaging", "referred", "waitlisted", "in_progress"]),
                    priority=rng.choice([0, 10, 10, 25]),
                    due_at=clock.now() + timedelta(days=rng.randint(-5, 5)),
                )
            )
        for rid in rng.sample(ids, len(ids) // 10):
            s.execute(
                update(m.Referral)
                .where(m.Referral.id == rid)
                .values(state="closed", outcome="resolved")
            )
    return clock


def _users(session):  # type: ignore[no-untyped-def]
    users = list(session.scalars(select(m.StaffUser).order_by(m.StaffUser.id)))
    by_role: dict[str, list[m.StaffUser]] = {}
    for u in users:
        by_role.setdefault(u.role, []).append(u)
    chosen = []
    for us in by_role.values():
        chosen += us[:: max(1, len(us) // 6)][:6]
    return chosen


def test_pages_and_totals_match_the_plain_scoped_query(db) -> None:  # type: ignore[no-untyped-def]
    clock = _network(db)
    now = clock.now()
    R = m.Referral
    with unit_of_work(db) as s:
        users = _users(s)
        assert {u.role for u in users} >= {"officer", "coordinator", "cip", "national_admin"}
        assert any(u.national_queue for u in users if u.role == "coordinator")
        checked = 0
        for user in users:
            for filters in (
                QueueFilters(),
                QueueFilters(domain="logement"),
                QueueFilters(mine=True),
            ):
                conds = [referral_scope(user), R.state.in_(OPEN_STATES)]
                if filters.domain:
                    conds.append(R.domain == filters.domain)
                if filters.mine:
                    conds.append(R.owner_user_id == user.id)
                expected = list(
                    s.scalars(select(R.id).where(*conds).order_by(R.priority.desc(), R.id.desc()))
                )
                seen: list[int] = []
                after = None
                while True:
                    page = list_queue(s, user, filters, now=now, after=after, limit=7)
                    seen += [r.id for r in page.rows]
                    if not page.next_cursor:
                        break
                    after = page.next_cursor
                assert seen == expected, (user.role, user.email, filters)
                # The deadline order: dated first by (due_at, id), then undated by id.
                due_expected = list(
                    s.scalars(
                        select(R.id).where(*conds).order_by(R.due_at.is_(None), R.due_at, R.id)
                    )
                )
                due_seen: list[int] = []
                after = None
                due_filters = replace(filters, sort="due")
                while True:
                    page = list_queue(s, user, due_filters, now=now, after=after, limit=7)
                    due_seen += [r.id for r in page.rows]
                    if not page.next_cursor:
                        break
                    after = page.next_cursor
                assert due_seen == due_expected, ("due", user.role, user.email, filters)
                # Totals by state, and overdue, against a plain GROUP BY of the same scope.
                all_conds = [c for c in conds if c is not conds[1]]
                by_state = Counter(
                    dict(
                        s.execute(
                            select(R.state, func.count())
                            .where(*all_conds, R.state.in_(OPEN_STATES))
                            .group_by(R.state)
                        ).all()
                    )
                )
                late = s.scalar(
                    select(func.count()).where(
                        *conds,
                        R.state.in_(("new", "triaging", "referred")),
                        R.due_at < now,
                    )
                )
                counts = count_queue(s, user, filters, now=now)
                assert counts.by_state == {k: v for k, v in by_state.items() if v}, user.email
                assert counts.total == len(expected)
                assert counts.overdue == late
                checked += len(expected)
        assert checked > 500  # the comparison saw real pages, not empty queues


def test_cached_totals_follow_every_write_and_time(db) -> None:  # type: ignore[no-untyped-def]
    clock = _network(db)
    settings = Settings(database_url=db.url)
    now = clock.now()
    cache = CountCache(ttl=timedelta(seconds=60))
    with unit_of_work(db) as s:
        user = s.scalar(select(m.StaffUser).where(m.StaffUser.role == "officer").limit(1))
        assert user is not None
        first = cache.counts(s, user, QueueFilters(), now=now)
        assert cache.counts(s, user, QueueFilters(sort="due"), now=now) == first  # sort: same
        assert (cache.hits, cache.misses) == (1, 1)
        assert cache.counts(s, user, QueueFilters(), now=now + timedelta(seconds=61)) == first
        assert cache.misses == 2  # expired: counted again
        # A write to one of the officer's referrals records an event: the totals move at once.
        ref = s.scalar(
            select(m.Referral).where(
                m.Referral.territory_id == user.territory_id,
                m.Referral.domain == user.domain,
                m.Referral.state == "new",
            )
        )
        assert ref is not None
        transition(s, settings, ref.id, "take", actor=Actor.of(user), clock=clock)
        s.flush()
        later = cache.counts(s, user, QueueFilters(), now=now + timedelta(seconds=62))
        assert later.by_state.get("new", 0) == first.by_state.get("new", 0) - 1
        assert later.by_state.get("triaging", 0) == first.by_state.get("triaging", 0) + 1
        assert later == count_queue(s, user, QueueFilters(), now=now + timedelta(seconds=62))


def test_a_name_is_found_whatever_its_accents_and_case(db) -> None:  # type: ignore[no-untyped-def]
    """ "heloise lefevre" finds Héloïse Lefèvre-Hérault on both databases (SQLite through a
    registered function, PostgreSQL through translate): the same folding in both."""
    clock = _network(db)
    with unit_of_work(db) as s:
        ident = s.scalar(select(m.SalarieIdentity).order_by(m.SalarieIdentity.salarie_id).limit(1))
        assert ident is not None
        ident.last_name, ident.first_name = "Lefèvre-Hérault", "Héloïse"
        salarie_id = ident.salarie_id
        chantier_id = s.get(m.Salarie, salarie_id).chantier_id
        cip = s.scalar(
            select(m.StaffUser).where(
                m.StaffUser.role == "cip", m.StaffUser.chantier_id == chantier_id
            )
        )  # a CIP/ESP of the person's chantier may read identities and search by name
        assert cip is not None
        s.flush()
        for typed in ("heloise", "HÉLOÏSE lefevre", "herault", "Lefevre-Her", "élo"):
            page = list_queue(s, cip, QueueFilters(name=typed), now=clock.now(), limit=200)
            found = {
                sid for (sid,) in s.execute(
                    select(m.Referral.salarie_id).where(m.Referral.id.in_([r.id for r in page.rows]))
                )
            }  # fmt: skip
            if typed == "élo":  # a word's start only: "élo" is inside Héloïse, not its start
                assert salarie_id not in found
            else:
                assert salarie_id in found, typed


def test_fold_text_matches_the_sql_table() -> None:
    from engine.store.dialect import ACCENTED, PLAIN, fold_text

    assert len(ACCENTED) == len(PLAIN)
    assert fold_text("Œuvre ÉLODIE Ça Noël Ÿ") == "œuvre elodie ca noel y"
    assert fold_text(None) is None
