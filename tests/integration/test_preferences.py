"""Stated choices of places and each family's mechanism, in the engine, on SQLite and PostgreSQL:
who may record them, what is refused, "any", stale and racing writers, what the allocation run
reads (territory expansion, order, only waitlisted referrals, constant number of queries)."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import event, func, insert, select

from engine.allocation import preferences as P
from engine.allocation.preferences import (
    StaleMechanism,
    choices_version,
    mechanism_by_offer,
    preferences_for_run,
    record_preferences,
    set_mechanism,
)
from engine.domain.errors import Forbidden, NotFound, Refused
from engine.referrals.actions import Actor, StaleEdit, transition
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.web.world import World, fresh_referral, world_per_database

CDC = "cdc-habitat.logement-social"
FAMILY = "test-bailleur.logement"


def _family(db) -> None:  # type: ignore[no-untyped-def]
    """A family of three pools of one housing offer covering every logement frein: one for
    Paris and Seine-Saint-Denis (no home), one for Paris alone (home Paris), one for
    Seine-Saint-Denis alone (out of reach of a Paris referral)."""
    with unit_of_work(db) as s:
        tid = dict(s.execute(select(m.Territory.code, m.Territory.id)).all())
        partner = m.Partner(code="test-bailleur", name="Bailleur d'essai", domain="logement",
                            coverage=["paris", "seine-saint-denis"])  # fmt: skip
        s.add(partner)
        s.flush()
        offer = m.Offer(partner_id=partner.id, code=FAMILY, name="Logement d'essai",
                        thematiques=["logement-hebergement"], slot_based=True,
                        unit_kind="logement", rules=[], excludes=[])  # fmt: skip
        s.add(offer)
        s.flush()
        for code, scope in (("shared", ["paris", "seine-saint-denis"]), ("paris", ["paris"]),
                            ("seine-saint-denis", ["seine-saint-denis"])):  # fmt: skip
            pool = m.SlotPool(
                code=f"test-{code}", offer_id=offer.id, name=f"Bailleur d'essai ({', '.join(scope)})",
                scope=scope, territory_id=tid[scope[0]] if len(scope) == 1 else None,
                period_start=date(2026, 1, 1), period_end=date(2026, 12, 31), capacity=2,
                unit_kind="logement",
            )  # fmt: skip
            s.add(pool)
            s.flush()
            s.execute(insert(m.SlotUnit), [{"pool_id": pool.id, "unit_no": n} for n in (1, 2)])


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def net(request) -> World:
    yield from world_per_database(request, _family)


def _pools(world: World) -> dict[str, m.SlotPool]:
    with world.db.sessions() as s:
        pools = s.scalars(select(m.SlotPool).order_by(m.SlotPool.id)).all()
        s.expunge_all()
    out = {p.code: p for p in pools}
    out["shared"], out["paris"], out["ssd"] = (
        out["test-shared"], out["test-paris"], out["test-seine-saint-denis"])  # fmt: skip
    return out


def _waiting(world: World) -> int:
    """A fresh Paris housing referral, taken and waitlisted on the family's shared pool
    through the door."""
    rid = fresh_referral(world)
    with unit_of_work(world.db) as s:
        admin = Actor.of(s.scalar(select(m.StaffUser).where(m.StaffUser.role == "national_admin")))
        transition(s, world.settings, rid, "take", actor=admin, clock=world.clock)
        transition(s, world.settings, rid, "waitlist", actor=admin, clock=world.clock,
                   pool_id=_pools(world)["shared"].id)  # fmt: skip
    return rid


@pytest.fixture(scope="module")
def untouched(net) -> int:
    """One waiting referral the refusal tests share: nothing may ever be written on it."""
    return _waiting(net)


def _user(world: World, key: str) -> m.StaffUser:
    with world.db.sessions() as s:
        u = s.get(m.StaffUser, world.user_ids[key])
        s.expunge(u)
        return u


def _cip_of(world: World, rid: int, n: int = 1) -> m.StaffUser:
    """The CIP/ESP of the referral's chantier (a second account made when ``n`` is 2)."""
    with unit_of_work(world.db) as s:
        chantier = s.get(m.Referral, rid).chantier_id
        cips = s.scalars(
            select(m.StaffUser)
            .where(m.StaffUser.role == "cip", m.StaffUser.chantier_id == chantier)
            .order_by(m.StaffUser.id)
        ).all()
        while len(cips) < n:
            u = m.StaffUser(email=f"cip{len(cips) + 1}.{chantier}.{rid}@test.example",
                            display_name=f"CIP {len(cips) + 1}", role="cip",
                            chantier_id=chantier, created_at=world.clock.now())  # fmt: skip
            s.add(u)
            s.flush()
            cips.append(u)
        u = cips[n - 1]
        s.expunge(u)
        return u


def _record(world: World, rid: int, choices, user: m.StaffUser, version: int | None = None):  # type: ignore[no-untyped-def]
    with unit_of_work(world.db, immediate=True) as s:
        expected = choices_version(s, rid) if version is None else version
        row = record_preferences(s, rid, choices, actor=Actor.of(user), clock=world.clock,
                                 expected_version=expected)  # fmt: skip
        return None if row is None else list(row.choices)


def _trace(world: World, rid: int) -> tuple:  # type: ignore[type-arg]
    """Everything a recording writes: the row, the events, the audit rows, the referral."""
    with world.db.sessions() as s:
        row = s.scalar(
            select(m.AllocationPreference).where(m.AllocationPreference.referral_id == rid)
        )
        events = s.scalar(
            select(func.count())
            .select_from(m.ReferralEvent)
            .where(m.ReferralEvent.referral_id == rid, m.ReferralEvent.action == P.EVENT_ACTION)
        )
        audits = s.scalar(
            select(func.count())
            .select_from(m.AuditLog)
            .where(m.AuditLog.action == P.AUDIT_ACTION, m.AuditLog.object_id == str(rid))
        )
        ref = s.get(m.Referral, rid)
        return (row.choices if row else None, row.version if row else None, events, audits,
                ref.state, ref.version)  # fmt: skip


# --- recording --------------------------------------------------------------------------------


def test_the_cip_records_pools_and_territories_in_order_with_an_event_and_an_audit(net):
    rid = _waiting(net)
    pools = _pools(net)
    cip = _cip_of(net, rid)
    before = _trace(net, rid)
    choices = [
        {"pool": pools["paris"].id},
        {"territory": "seine-saint-denis"},
        {"pool": pools["shared"].id},
    ]
    assert _record(net, rid, choices, cip) == choices
    row, row_version, events, audits, state, ref_version = _trace(net, rid)
    assert row == choices and events == before[2] + 1 and audits == before[3] + 1
    assert (state, ref_version) == (before[4], before[5])  # never a state change
    with net.db.sessions() as s:
        assert choices_version(s, rid) == 2
        ev = s.scalars(select(m.ReferralEvent).where(
            m.ReferralEvent.referral_id == rid, m.ReferralEvent.action == P.EVENT_ACTION)).one()  # fmt: skip
        assert ev.from_state == ev.to_state == "waitlisted" and ev.actor_user_id == cip.id
        assert ev.note.startswith("Choix de la personne : 1. Bailleur d'essai (Paris) ;")
        assert "2. toutes les places du territoire Convergence Seine-Saint-Denis" in ev.note
        audit = s.scalars(select(m.AuditLog).where(m.AuditLog.action == P.AUDIT_ACTION,
                                                   m.AuditLog.object_id == str(rid))).one()  # fmt: skip
        assert audit.details["before"] == "any" and audit.details["after"] == choices
        assert audit.actor_user_id == cip.id


def test_any_deletes_the_row_and_the_same_choices_twice_write_nothing(net):
    rid = _waiting(net)
    cip = _cip_of(net, rid)
    pid = _pools(net)["paris"].id
    _record(net, rid, [{"pool": pid}], cip)
    once = _trace(net, rid)
    _record(net, rid, [{"pool": pid}], cip)  # the same again: nothing
    assert _trace(net, rid) == once
    assert _record(net, rid, "any", cip) is None
    row, _, events, audits, state, _ = _trace(net, rid)
    assert row is None and events == once[2] + 1 and audits == once[3] + 1 and state == "waitlisted"
    with net.db.sessions() as s:
        audit = s.scalars(select(m.AuditLog).where(m.AuditLog.object_id == str(rid),
                                                   m.AuditLog.action == P.AUDIT_ACTION)
                          .order_by(m.AuditLog.id.desc())).first()  # fmt: skip
        assert audit.details == {
            "salarie_id": audit.details["salarie_id"],
            "before": [{"pool": pid}],
            "after": "any",
        }
    after_any = _trace(net, rid)
    _record(net, rid, "any", cip)  # "any" while already "any": nothing
    assert _trace(net, rid) == after_any


@pytest.mark.parametrize(
    ("who", "error"),
    [("cip_other", NotFound), ("partner", NotFound), ("officer_other_territory", NotFound),
     ("coordinator_other", NotFound), ("officer", Forbidden)],
)  # fmt: skip
def test_who_may_not_record(net, untouched, who, error):
    rid = untouched
    before = _trace(net, rid)
    with pytest.raises(error) as caught:
        _record(net, rid, [{"pool": _pools(net)["paris"].id}], _user(net, who))
    assert _trace(net, rid) == before
    if error is Forbidden:  # in scope: told who records, in French
        assert "CIP / ESP du chantier" in caught.value.message


@pytest.mark.parametrize("who", ["coordinator", "admin"])
def test_the_coordination_and_the_national_team_may_record(net, who):
    rid = _waiting(net)
    pid = _pools(net)["paris"].id
    assert _record(net, rid, [{"pool": pid}], _user(net, who)) == [{"pool": pid}]


def test_a_referral_not_waiting_for_a_place_is_refused_and_a_system_actor_may_record(net):
    rid = fresh_referral(net)  # "new"
    with unit_of_work(net.db) as s, pytest.raises(Refused) as caught:
        record_preferences(s, rid, "any", actor=Actor.system("test"), clock=net.clock,
                           expected_version=None)  # fmt: skip
    assert "n'attend pas de place" in caught.value.message
    waiting = _waiting(net)
    with unit_of_work(net.db) as s:
        pid = _pools(net)["paris"].id
        row = record_preferences(s, waiting, [{"pool": pid}], actor=Actor.system("test"),
                                 clock=net.clock, expected_version=None)  # fmt: skip
        assert row.recorded_by is None


BAD = [
    ([], "aucun choix"),
    ("toutes", "choix illisibles"),
    (None, "choix illisibles"),
    ({"pool": 1}, "choix illisibles"),
    ([{"pool": "1"}], "choix n° 1 : dispositif inconnu"),
    ([{"pool": True}], "choix n° 1 : dispositif inconnu"),
    ([{"pool": 2**40}], "choix n° 1 : dispositif inconnu"),
    ([{"pool": 987654}], "dispositif inconnu (n° 987654)"),
    ([{"pool": "PARIS"}, {"territory": "paris"}], "choix n° 1"),
    ([{"territory": "paris"}, {"pool": 1, "territory": "paris"}], "choix n° 2 illisible"),
    ([{"territory": "paris"}, {"city": "paris"}], "choix n° 2 illisible"),
    ([{"territory": "a\x00b"}], "territoire inconnu"),
    ([{"territory": "x" * 500}], "territoire inconnu"),
    ([{"territory": "atlantide"}], "territoire inconnu « atlantide »"),
    ([{"territory": "lyon"}], "aucun dispositif du territoire"),
    ([{"territory": "paris"}, {"territory": "paris"}], "choix n° 2 en double"),
    ([{"pool": 1}] * 21, "trop de choix : 20 au plus (21 reçus)"),
    ("SSD", "ne peut pas accueillir cette orientation"),
    ("PARIS_TWICE", "choix n° 3 en double"),
]


@pytest.mark.parametrize(("choices", "words"), BAD)
def test_bad_choices_are_refused_in_french_and_nothing_is_written(net, untouched, choices, words):
    rid = untouched
    pools = _pools(net)
    if choices == "SSD":
        choices = [{"pool": pools["paris"].id}, {"pool": pools["ssd"].id}]
    elif choices == "PARIS_TWICE":
        choices = [{"pool": pools["paris"].id}, {"territory": "paris"}, {"pool": pools["paris"].id}]
    before = _trace(net, rid)
    with pytest.raises(Refused) as caught:
        _record(net, rid, choices, _cip_of(net, rid))
    assert words in caught.value.message
    assert "\x00" not in caught.value.message and len(caught.value.message) < 300
    assert _trace(net, rid) == before


def test_a_stale_version_is_refused_even_after_any_and_new_choices(net):
    """The version counts changes: a form loaded before "any" then new choices (the row
    deleted and created again, its own version back at 1) is still stale."""
    rid = _waiting(net)
    cip = _cip_of(net, rid)
    pools = _pools(net)
    _record(net, rid, [{"pool": pools["paris"].id}], cip, version=1)
    seen = 2  # what a page loaded now shows
    _record(net, rid, "any", cip, version=2)
    _record(net, rid, [{"pool": pools["shared"].id}], cip, version=3)
    before = _trace(net, rid)
    assert before[1] == 1  # the row's own version restarted
    with pytest.raises(StaleEdit) as caught:
        _record(net, rid, [{"territory": "paris"}], cip, version=seen)
    assert "modifiée par quelqu'un d'autre" in caught.value.message
    assert _trace(net, rid) == before


def test_two_cips_saving_at_once_one_wins_the_other_is_told_it_is_stale(net):
    rid = _waiting(net)
    pools = _pools(net)
    first, second = _cip_of(net, rid, 1), _cip_of(net, rid, 2)
    wanted = {first.id: [{"pool": pools["paris"].id}], second.id: [{"pool": pools["shared"].id}]}
    barrier = threading.Barrier(2)
    outcomes: dict[int, object] = {}

    def save(user: m.StaffUser) -> None:
        barrier.wait()
        try:
            outcomes[user.id] = _record(net, rid, wanted[user.id], user, version=1)
        except StaleEdit as exc:
            outcomes[user.id] = exc

    threads = [threading.Thread(target=save, args=(u,)) for u in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [uid for uid, o in outcomes.items() if isinstance(o, list)]
    losers = [o for o in outcomes.values() if isinstance(o, StaleEdit)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    row, _, events, audits, *_ = _trace(net, rid)
    assert row == wanted[winners[0]] and events == 1 and audits == 1


def test_choices_may_change_while_a_proposal_awaits_but_the_run_reads_only_waitlisted(net):
    rid = _waiting(net)
    pools = _pools(net)
    with unit_of_work(net.db) as s:  # a proposal, as an allocation run would make it
        run = m.AllocationRun(status="optimal", started_at=net.clock.now(), running_lock=0)
        s.add(run)
        s.flush()
        prop = m.AllocationProposal(run_id=run.id, referral_id=rid, pool_id=pools["shared"].id,
                                    units=1, weight=1, priority=1, explanation="test",
                                    status="proposed")  # fmt: skip
        s.add(prop)
        s.flush()
        from engine.referrals.transitions import apply_transition

        apply_transition(s, net.settings, s.get(m.Referral, rid), "propose",
                         actor=Actor.system("allocation"), clock=net.clock, proposal=prop)  # fmt: skip
    cip = _cip_of(net, rid)
    assert _record(net, rid, [{"pool": pools["paris"].id}], cip) == [{"pool": pools["paris"].id}]
    names = {p.id: p.code for p in pools.values()}
    with net.db.sessions() as s:
        assert preferences_for_run(s, [rid], names, {}) == {}  # pinned: never moved by choices
    with unit_of_work(net.db) as s:
        from engine.allocation.run import decline_proposal

        decline_proposal(s, net.settings, prop.id, actor=Actor.system("test"),
                         reason="declined_by_person", clock=net.clock)  # fmt: skip
    with net.db.sessions() as s:
        assert preferences_for_run(s, [rid], names, {}) == {str(rid): ("test-paris",)}


# --- what the run reads -----------------------------------------------------------------------


def _run_maps(world: World) -> tuple[dict[int, str], dict[int, str | None]]:
    with world.db.sessions() as s:
        codes = dict(s.execute(select(m.Territory.id, m.Territory.code)).all())
        pools = s.scalars(select(m.SlotPool).order_by(m.SlotPool.id)).all()
        return ({p.id: f"name-{p.code}" for p in pools},
                {p.id: codes.get(p.territory_id) for p in pools})  # fmt: skip


def test_preferences_for_run_expands_territories_in_pool_order_keeping_first_places(net):
    pools = _pools(net)
    names, homes = _run_maps(net)
    a, b, c, d, e = (_waiting(net) for _ in range(5))
    admin = _user(net, "admin")
    _record(net, a, [{"pool": pools["paris"].id}, {"territory": "paris"}], admin)
    _record(net, b, [{"territory": "seine-saint-denis"}, {"pool": pools["paris"].id}], admin)
    _record(net, d, [{"pool": pools["paris"].id}], admin)
    _record(net, e, [{"pool": pools["paris"].id}], admin)
    with unit_of_work(net.db) as s:  # d leaves the waitlist: its row stays, unread
        transition(s, net.settings, d, "cancel", actor=Actor.of(s.get(m.StaffUser, admin.id)),
                   clock=net.clock, note="test")  # fmt: skip
    with net.db.sessions() as s:
        all_pools = s.scalars(select(m.SlotPool).order_by(m.SlotPool.id)).all()
        got = preferences_for_run(s, [a, b, c, d, e], names, homes)
        # Only e's pool is missing from this run: it stated choices, none of them is here.
        without = {pid: n for pid, n in names.items() if pid != pools["paris"].id}
        narrowed = preferences_for_run(s, [e], without, homes)
    in_paris = [p for p in all_pools if homes[p.id] == "paris" or (p.scope and "paris" in p.scope)]
    in_ssd = [p for p in all_pools if homes[p.id] == "seine-saint-denis"
              or (p.scope and "seine-saint-denis" in p.scope)]  # fmt: skip
    # The pools the rule takes in: the seed's CDC, Franprix and Bureaux du cœur pools and the
    # family's shared one (by their scope), the family's Paris pool (its home); never a
    # national pool (scope None).
    assert {p.code.split("-20")[0] for p in in_paris} == {
        CDC, "franprix.cdi-progressif", "bureaux-du-coeur.mise-a-l-abri", "test-shared",
        "test-paris"}  # fmt: skip
    assert all(p.scope is not None for p in in_paris)
    paris_first = ["name-test-paris"] + [names[p.id] for p in in_paris if p.code != "test-paris"]
    assert got[str(a)] == tuple(paris_first)
    assert got[str(b)] == tuple([names[p.id] for p in in_ssd] + ["name-test-paris"])
    assert list(got[str(b)]).index("name-test-seine-saint-denis") == len(in_ssd) - 1
    assert str(c) not in got and str(d) not in got  # "any", and not waiting
    assert got[str(e)] == ("name-test-paris",)
    assert narrowed == {str(e): ()}  # stated, but nothing acceptable in this run
    with net.db.sessions() as s:
        assert preferences_for_run(s, [], names, homes) == {}


def test_preferences_for_run_asks_the_same_two_queries_for_any_number_of_candidates(net):
    pools = _pools(net)
    names, homes = _run_maps(net)
    ids = [_waiting(net) for _ in range(4)]
    for rid in ids:
        _record(
            net, rid, [{"territory": "paris"}, {"pool": pools["shared"].id}], _user(net, "admin")
        )

    def statements(rids: list[int]) -> tuple[int, dict]:  # type: ignore[type-arg]
        seen: list[str] = []

        def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
            seen.append(statement)

        with net.db.sessions() as s:
            s.connection()
            event.listen(net.db.engine, "before_cursor_execute", count)
            try:
                got = preferences_for_run(s, rids, names, homes)
            finally:
                event.remove(net.db.engine, "before_cursor_execute", count)
        return len(seen), got

    one, got_one = statements(ids[:1])
    many, got_many = statements(ids + list(range(10**6, 10**6 + 5000)))
    assert one == many == 2
    assert len(got_one) == 1 and len(got_many) == 4


def test_expand_choices_is_pure_and_skips_malformed_entries():
    places = [P.PoolPlace(3, "paris", ("paris",)), P.PoolPlace(1, None, ("paris", "ssd")),
              P.PoolPlace(2, None, None), P.PoolPlace(4, "ssd", ("ssd",))]  # fmt: skip
    assert P.expand_choices([{"territory": "paris"}], places) == [1, 3]
    assert P.expand_choices([{"pool": 4}, {"territory": "ssd"}, {"pool": 2}], places) == [4, 1, 2]
    assert P.expand_choices([{"pool": 9}, "x", {"pool": True}, {"pool": 1, "territory": "paris"},
                             {"territory": 5}, {"pool": 2}], places) == [2]  # fmt: skip


# --- mechanisms -------------------------------------------------------------------------------


def test_the_national_team_sets_a_family_mechanism_with_an_audit_row(net):
    with net.db.sessions() as s:
        mech = mechanism_by_offer(s)
        offer_ids = set(s.scalars(select(m.SlotPool.offer_id)))
    assert set(mech) == offer_ids and set(mech.values()) <= {"optimal", "stable"}
    oid = _pools(net)["shared"].offer_id
    start = mech[oid]
    target = "stable" if start == "optimal" else "optimal"
    admin = _user(net, "admin")
    with unit_of_work(net.db) as s:
        set_mechanism(s, oid, target, actor=Actor.of(admin), clock=net.clock, expected=start)
    with net.db.sessions() as s:
        assert mechanism_by_offer(s)[oid] == target
        audit = s.scalars(select(m.AuditLog).where(m.AuditLog.action == P.MECHANISM_AUDIT_ACTION,
                                                   m.AuditLog.object_id == str(oid))
                          .order_by(m.AuditLog.id.desc())).first()  # fmt: skip
        assert audit.details == {"from": start, "to": target} and audit.actor_user_id == admin.id
        n = s.scalar(select(func.count()).select_from(m.AuditLog).where(
            m.AuditLog.action == P.MECHANISM_AUDIT_ACTION))  # fmt: skip
    with unit_of_work(net.db) as s:  # the same again: nothing written
        set_mechanism(s, oid, target, actor=Actor.of(admin), clock=net.clock)
    with pytest.raises(StaleMechanism), unit_of_work(net.db) as s:  # a page showing the old one
        set_mechanism(s, oid, start, actor=Actor.of(admin), clock=net.clock, expected=start)
    with unit_of_work(net.db) as s:  # back as it was, for the other tests
        set_mechanism(s, oid, start, actor=Actor.of(admin), clock=net.clock, expected=target)
    with net.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.AuditLog).where(
            m.AuditLog.action == P.MECHANISM_AUDIT_ACTION)) == n + 1  # fmt: skip


@pytest.mark.parametrize(
    ("who", "error"),
    [("coordinator", Forbidden), ("officer", NotFound), ("cip", NotFound), ("partner", NotFound)],
)
def test_only_the_national_team_sets_a_mechanism(net, who, error):
    oid = _pools(net)["shared"].offer_id
    with net.db.sessions() as s:
        before = s.get(m.Offer, oid).allocation_mechanism
    with pytest.raises(error), unit_of_work(net.db) as s:
        set_mechanism(s, oid, "stable", actor=Actor.of(_user(net, who)), clock=net.clock)
    with net.db.sessions() as s:
        assert s.get(m.Offer, oid).allocation_mechanism == before


def test_a_mechanism_is_refused_for_an_unknown_value_or_an_offer_without_places(net):
    admin = Actor.of(_user(net, "admin"))
    oid = _pools(net)["shared"].offer_id
    with net.db.sessions() as s:
        direct = s.scalar(select(m.Offer.id).where(~m.Offer.slot_based,
                                                   ~m.Offer.id.in_(select(m.SlotPool.offer_id))))  # fmt: skip
    for offer_id, mechanism, error, words in (
        (oid, "boston", Refused, "mécanisme inconnu"),
        (oid, "", Refused, "mécanisme inconnu"),
        (direct, "stable", Refused, "n'a pas de places comptées"),
        (987654, "stable", NotFound, "offre introuvable"),
    ):
        with pytest.raises(error) as caught, unit_of_work(net.db) as s:
            set_mechanism(s, offer_id, mechanism, actor=admin, clock=net.clock)
        assert words in caught.value.message
