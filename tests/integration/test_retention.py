"""Data lifetime on SQLite and PostgreSQL: three simulated years (2022–2024) replayed with a
fixed clock, then the retention runs of 2025 — notices once, 30 days before; anonymisation
that leaves nothing of the person; the report of past years unchanged; a SIGKILL mid-run
that leaves nobody half-anonymised; a dry run that changes nothing; the legal hold.

The network is built once per database kind (a template) and each test works on a copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, delete, func, select, text, update
from sqlalchemy.exc import IntegrityError

from engine.domain.clock import Clock, as_utc
from engine.network.seed import seed_network
from engine.network.simulate import simulate_year
from engine.outbox.enqueue import enqueue_many
from engine.referrals.actions import Actor, transition
from engine.referrals.case_file import read_case_file
from engine.reporting.report import (
    build_report,
    ensure_final_snapshots,
    final_year_results,
    load,
    render,
)
from engine.retention.files import files
from engine.retention.policy import RetentionError, load_policy, set_territory_retention
from engine.retention.run import plan_retention, run_retention
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.migrate import upgrade
from engine.store.settings import Settings
from tests.conftest import PG_ADMIN_URL, _pg_available

BIN = Path(sys.executable).parent
BASE_URL = "http://aiguillage.test"
SCALE, SEED = 0.02, 3
YEARS = (2022, 2023, 2024)
D0 = date(2025, 1, 10)  # the first retention run: notices
D30 = D0 + timedelta(days=30)  # the day announced: anonymisation
HELD_ON = date(2024, 6, 3)  # the planted legal hold: a referral waitlisted that day


def _clock(day: date, hour: int = 4) -> Clock:
    return Clock.on_day(day, hour=hour, running=False)


def _settings(url: str, **kw: Any) -> Settings:
    return Settings(database_url=url, base_url=BASE_URL, **kw)


# --- the template: seeded, three years simulated, a few things planted -----------------


def _plant(db: Database, settings: Settings) -> None:
    """What the simulation does not write: notes, an event note and a refusal note naming
    the person, a recent pending mail about them, reads of their file, login attempts, and
    one referral waitlisted on a counted pool (the legal hold)."""
    policy_plan = plan_retention(db, settings, clock=_clock(D0))
    due = sorted(i for ids in policy_plan.to_notice.values() for i in ids)
    assert len(due) >= 12, "the scenario needs people due for anonymisation"
    with unit_of_work(db) as s:
        policy = load_policy(s, settings)
        last = {f.salarie_id: f.last_contact for f in files(s, policy, ids=due)}
        cip = s.scalar(
            select(m.StaffUser).where(m.StaffUser.role == "cip").order_by(m.StaffUser.id)
        )
        admin = s.scalar(select(m.StaffUser).where(m.StaffUser.role == "national_admin"))
        for sid in due[:8]:
            ident = s.get(m.SalarieIdentity, sid)
            at = datetime(last[sid].year, last[sid].month, last[sid].day, 9, tzinfo=UTC)
            s.add(m.CaseNote(
                salarie_id=sid, referral_id=None, author_user_id=cip.id, author_name=cip.display_name,
                at=at, body=f"Appelé {ident.first_name} {ident.last_name} au {ident.phone}, "
                f"courriel {ident.email}, né·e le {ident.birth_date:%d/%m/%Y}.",
            ))  # fmt: skip
            event = s.scalar(
                select(m.ReferralEvent).join(m.Referral)
                .where(m.Referral.salarie_id == sid).order_by(m.ReferralEvent.id)
            )  # fmt: skip
            if event is not None:
                event.note = f"Joindre {ident.first_name} {ident.last_name} ({ident.email})"
            refused = s.scalar(
                select(m.Referral).where(
                    m.Referral.salarie_id == sid, m.Referral.state == "refused"
                )
            )
            if refused is not None:
                refused.refusal_note = f"{ident.last_name} a déménagé"
            s.add(m.AccessLog(user_id=admin.id, reader=admin.display_name, salarie_id=sid,
                              at=datetime(2024, 12, 15, 10, tzinfo=UTC), purpose="consultation",
                              with_identity=True))  # fmt: skip
            s.add(m.AccessLog(user_id=admin.id, reader=admin.display_name, salarie_id=sid,
                              at=datetime(2023, 6, 15, 10, tzinfo=UTC), purpose="consultation",
                              with_identity=True))  # fmt: skip
        # A recent mail about one of them, still pending (rewritten, never purged).
        target = s.get(m.Salarie, due[0])
        chantier_cip = s.scalar(
            select(m.StaffUser).where(m.StaffUser.role == "cip",
                                      m.StaffUser.chantier_id == target.chantier_id)
        ) or cip  # fmt: skip
        enqueue_many(
            s,
            [{
                "kind": "outcome_due", "key": f"outcome_due:test:{target.id}",
                "to_address": chantier_cip.email, "recipient_user_id": chantier_cip.id,
                "context": {"recipient_name": chantier_cip.display_name,
                            "preferences_url": f"{BASE_URL}/preferences",
                            "reference": target.reference, "due_on": date(2025, 1, 20),
                            "url": f"{BASE_URL}/orientations/1"},
            }],
            base_url=BASE_URL, now=datetime(2025, 1, 5, 9, tzinfo=UTC),
        )  # fmt: skip
        for at in (datetime(2024, 11, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)):
            s.add(m.LoginAttempt(email="quelqu.un@exemple.fr", ip="127.0.0.1", at=at))
    _hold(db, settings)


def _hold(db: Database, settings: Settings) -> None:
    """Take and waitlist, on HELD_ON, an open referral of a person still in the programme."""
    clock = _clock(HELD_ON, hour=10)
    with unit_of_work(db) as s:
        admin = s.scalar(select(m.StaffUser).where(m.StaffUser.role == "national_admin"))
        # In a chantier with others (the notice that says "kept" goes with theirs).
        sizes = dict(s.execute(select(m.Salarie.chantier_id, func.count())
                               .group_by(m.Salarie.chantier_id)).all())  # fmt: skip
        candidates = s.execute(
            select(m.Referral.id, m.Referral.chantier_id)
            .join(m.Salarie, m.Salarie.id == m.Referral.salarie_id)
            .where(m.Referral.state.in_(("new", "triaging")), m.Salarie.exit_date.is_(None),
                   m.Referral.territory_id.is_not(None))
            .order_by(m.Referral.id)
        ).all()  # fmt: skip
        candidates = [rid for rid, chantier in sorted(candidates, key=lambda r: -sizes[r[1]])]
        for rid in candidates:
            case = read_case_file(s, admin, rid, now=clock.now())
            if case is None or not case.pools:
                continue
            actor = Actor.of(admin)
            if case.referral.state == "new":
                transition(s, settings, rid, "take", actor=actor, clock=clock)
            transition(s, settings, rid, "waitlist", actor=actor, clock=clock,
                       pool_id=case.pools[0].id)  # fmt: skip
            return
    raise AssertionError("no referral of the scenario feeds a counted pool")


def _build(url: str) -> None:
    upgrade(url)
    db = Database(url)
    settings = _settings(url)
    seed_network(db, scale=SCALE, seed=SEED, clock=_clock(date(2022, 1, 1)), entrants=True)
    for year in YEARS:
        simulate_year(db, settings, year=year, clock=Clock.on_day(date(year, 12, 31), hour=20,
                      running=False), seed=SEED)  # fmt: skip
    _plant(db, settings)
    # The final snapshots of the closed years, as the daily flows would have written them;
    # the main scenario deletes them to see the retention write them itself.
    ensure_final_snapshots(db, list(range(2021, 2025)), clock=_clock(date(2025, 1, 2)))
    db.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def template(request, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(kind, url) of the built network; copied for each test."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("retention") / "template.db"
        _build(f"sqlite:///{path}")
        yield "sqlite", str(path)
        return
    if not _pg_available():
        pytest.skip("PostgreSQL unreachable at 127.0.0.1:5432")
    name = f"retention_tpl_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        _build(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
        yield "postgres", name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Scenario:
    db: Database
    url: str
    settings: Settings


@pytest.fixture
def scenario(template, tmp_path) -> Iterator[Scenario]:
    kind, source = template
    if kind == "sqlite":
        path = tmp_path / "aiguillage.db"
        for suffix in ("", "-wal", "-shm"):
            if Path(source + suffix).exists():
                shutil.copyfile(source + suffix, str(path) + suffix)
        url = f"sqlite:///{path}"
        db = Database(url)
        yield Scenario(db, url, _settings(url))
        db.dispose()
        return
    name = f"retention_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    try:
        yield Scenario(db, url, _settings(url))
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- what the checks read --------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: int
    reference: str
    tokens: tuple[str, ...]  # strings that would re-identify them


def _people(db: Database, ids: list[int]) -> list[Person]:
    out = []
    with unit_of_work(db) as s:
        for sid in ids:
            p, i = s.get(m.Salarie, sid), s.get(m.SalarieIdentity, sid)
            tokens = [p.reference]
            if i is not None:
                tokens += [f"{i.first_name} {i.last_name}", f"{i.last_name} {i.first_name}"]
                tokens += [t for t in (i.email, i.phone) if t]
                if i.birth_date:
                    tokens += [i.birth_date.isoformat(), f"{i.birth_date:%d/%m/%Y}"]
            out.append(Person(sid, p.reference, tuple(tokens)))
    return out


def _dump(db: Database) -> dict[str, list[str]]:
    """Every row of every table as text."""
    out: dict[str, list[str]] = {}
    with db.engine.connect() as conn:
        for table in m.Base.metadata.sorted_tables:
            pk = list(table.primary_key.columns)
            rows = conn.execute(select(table).order_by(*pk)).all()
            out[table.name] = [repr(tuple(r)) for r in rows]
    return out


def _digest(db: Database) -> dict[str, str]:
    return {
        t: hashlib.sha256("\n".join(rows).encode()).hexdigest() for t, rows in _dump(db).items()
    }


def _reports(db: Database) -> dict[tuple[int, str | None, str | None], bytes]:
    """Every year of the scenario, network and one territory, each programme, as the report
    command gives them (a closed year's final snapshot, else computed; the files read once)."""
    data = load(db)
    out = {}
    for year in range(2017, 2025):
        for territory in (None, "paris"):
            for programme in (None, "cvg", "phc"):
                kept = final_year_results(db, year=year, territory=territory, programme=programme)
                results = (
                    kept
                    if kept is not None
                    else build_report(
                        db, year=year, territory=territory, programme=programme, data=data
                    )
                )
                out[(year, territory, programme)] = render(results, "json")
    return out


def _first_of_month(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, datetime):
        v = as_utc(value)
        return (v.day, v.hour, v.minute, v.second, v.microsecond) == (1, 0, 0, 0, 0)
    return value.day == 1


def _assert_anonymised(db: Database, people: list[Person]) -> None:
    """Nothing of these people is left: no identity, note, free text, exact day, old
    reference — checked by scanning every row of every table for what identified them."""
    ids = [p.id for p in people]
    dump = _dump(db)
    for table, rows in dump.items():
        blob = "\n".join(rows)
        for p in people:
            leaked = [t for t in p.tokens if t in blob]
            assert not leaked, f"{table} still holds {leaked[:3]} of person {p.id}"
    with unit_of_work(db) as s:
        S, R, E = m.Salarie, m.Referral, m.ReferralEvent
        assert not s.scalar(select(func.count()).select_from(m.SalarieIdentity)
                            .where(m.SalarieIdentity.salarie_id.in_(ids)))  # fmt: skip
        assert not s.scalar(select(func.count()).select_from(m.CaseNote)
                            .where(m.CaseNote.salarie_id.in_(ids)))  # fmt: skip
        for person in s.scalars(select(S).where(S.id.in_(ids))):
            assert person.anonymised_at is not None and person.reference.startswith("ANO-")
            assert person.external_ref is None and person.import_digest is None
            assert person.vulnerability_flags == "" and not person.rqth
            for value in (person.entry_date, person.exit_date, person.programme_end,
                          person.created_at):  # fmt: skip
                assert _first_of_month(value), (person.id, value)
        for ref in s.scalars(select(R).where(R.salarie_id.in_(ids))):
            assert ref.explanation == "" and ref.reasons == [] and ref.priority_breakdown == []
            assert ref.refusal_note in (None, "(anonymisé)")
            assert _first_of_month(ref.created_at)
        for event in s.scalars(select(E).join(R).where(R.salarie_id.in_(ids))):
            assert event.note is None and _first_of_month(event.at)
        for model, column in ((m.HousingChange, "on"), (m.HealthEvent, "on"),
                              (m.FollowUp, "answered_on"), (m.Frein, "identified_at")):  # fmt: skip
            for row in s.scalars(select(model).where(model.salarie_id.in_(ids))):  # type: ignore[attr-defined]
                assert _first_of_month(getattr(row, column)), (model.__name__, row.id)
        for row in s.scalars(select(m.AuditLog).where(m.AuditLog.object_type == "salarie",
                                                     m.AuditLog.object_id.in_([str(i) for i in ids]))):  # fmt: skip
            assert all(isinstance(v, int) for v in row.details.values()), row.details


def _anonymised_ids(db: Database) -> set[int]:
    with unit_of_work(db) as s:
        return set(s.scalars(select(m.Salarie.id).where(m.Salarie.anonymised_at.is_not(None))))


def _notices(db: Database) -> list[m.OutboxMessage]:
    with unit_of_work(db) as s:
        return list(s.scalars(select(m.OutboxMessage).where(m.OutboxMessage.kind == "retention_notice")
                              .order_by(m.OutboxMessage.id)))  # fmt: skip


# --- the scenario ----------------------------------------------------------------------


def test_notices_once_then_anonymisation_keeps_nothing_and_past_figures(
    scenario, monkeypatch, capsys
):
    db, settings = scenario.db, scenario.settings
    with unit_of_work(db) as s:
        s.execute(delete(m.IndicatorSnapshot))  # the run must write them itself
    before = _reports(db)
    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", scenario.url)
    from workflows.cli import main

    assert main(["report", "--year", "2023", "--format", "json"]) == 0
    cli_before = capsys.readouterr().out

    # D0: one notice per CIP/ESP of each chantier concerned, no identity in it.
    first = run_retention(db, settings, clock=_clock(D0))
    assert first.noticed >= 12 and first.anonymised == 0 and first.notices > 0
    notices = _notices(db)
    assert len(notices) == first.notices
    with unit_of_work(db) as s:
        noticed = list(s.scalars(select(m.Salarie.id).where(m.Salarie.retention_notice_on == D0)))
        cips = {
            u.id: u.chantier_id
            for u in s.scalars(select(m.StaffUser).where(m.StaffUser.role == "cip"))
        }
        per_chantier = dict(s.execute(
            select(m.Salarie.chantier_id, func.count()).where(m.Salarie.id.in_(noticed))
            .group_by(m.Salarie.chantier_id)).all())  # fmt: skip
    assert len(noticed) == first.noticed
    people = _people(db, noticed)
    assert len({r.recipient_user_id for r in notices}) == len(notices)  # one per CIP/ESP
    for row in notices:
        ctx = row.context
        assert (
            ctx["due_on"] == D30.isoformat() and ctx["url"] == f"{BASE_URL}/dossiers/anonymisation"
        )
        assert ctx["count"] == per_chantier[cips[row.recipient_user_id]]
        blob = json.dumps(ctx, ensure_ascii=False)
        assert not any(t in blob for p in people for t in p.tokens)

    # Exactly once: the same day again, the next day, the day before the date announced.
    for day in (D0, D0 + timedelta(days=1), D30 - timedelta(days=1)):
        again = run_retention(db, settings, clock=_clock(day))
        assert again.anonymised == 0
    assert sorted(_noticed_on(db, D0)) == sorted(noticed)
    later = _notices(db)[len(notices) :]
    assert [n.id for n in _notices(db)][: len(notices)] == [n.id for n in notices]
    assert all(n.idempotency_key.split(":")[2] != D0.isoformat() for n in later)

    # D30: the files announced on D0 are anonymised, in batches; past years stay the same.
    done = run_retention(db, settings, clock=_clock(D30))
    anonymised = _anonymised_ids(db)
    assert anonymised == set(noticed) and done.anonymised == len(noticed)
    assert done.snapshot_years and min(done.snapshot_years) <= 2022
    assert done.rows["identities"] == len(noticed) and done.rows["notes"] == 8
    _assert_anonymised(db, people)
    after = _reports(db)
    changed = [k for k in before if before[k] != after[k]]
    assert not changed, f"past figures moved: {changed[:4]}"
    assert main(["report", "--year", "2023", "--format", "json"]) == 0
    assert capsys.readouterr().out == cli_before

    with unit_of_work(db) as s:
        # The pending mail about one of them now names the anonymous reference.
        mail = s.scalar(
            select(m.OutboxMessage).where(
                m.OutboxMessage.idempotency_key.like("outcome_due:test:%")
            )
        )
        assert mail.status == "pending" and mail.context["reference"].startswith("ANO-")
        # Audit: one row per batch with counts, one per run.
        batches = s.scalars(
            select(m.AuditLog).where(m.AuditLog.action == "retention_anonymise")
        ).all()
        assert sum(b.details["people"] for b in batches) == len(anonymised)
        assert (
            s.scalar(
                select(func.count())
                .select_from(m.AuditLog)
                .where(m.AuditLog.action == "retention_run")
            )
            == 5
        )
        # Logs past their lifetime: reads over 12 months, attempts over 30 days, handled mails.
        assert not s.scalar(select(func.count()).select_from(m.AccessLog)
                            .where(m.AccessLog.at < datetime(2024, 1, 1, tzinfo=UTC)))  # fmt: skip
        assert s.scalar(select(func.count()).select_from(m.AccessLog)
                        .where(m.AccessLog.at >= datetime(2024, 12, 1, tzinfo=UTC))) == 8  # fmt: skip
        assert s.scalar(select(func.count()).select_from(m.LoginAttempt)) == 1
        old = s.scalars(select(m.OutboxMessage).where(m.OutboxMessage.status != "pending",
                                                     m.OutboxMessage.created_at < datetime(2024, 10, 1, tzinfo=UTC))).all()  # fmt: skip
        assert old and all(
            o.to_address == "" and o.context == {} and o.idempotency_key for o in old
        )
        # Referral states were never touched by the retention.
        states = dict(
            s.execute(select(m.Referral.state, func.count()).group_by(m.Referral.state)).all()
        )
    assert states.get("waitlisted", 0) == 1


def _noticed_on(db: Database, day: date) -> list[int]:
    with unit_of_work(db) as s:
        return list(s.scalars(select(m.Salarie.id).where(m.Salarie.retention_notice_on == day)))


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(scenario, monkeypatch, capsys):
    db = scenario.db
    run_retention(db, scenario.settings, clock=_clock(D0))  # notices, so D30 has work
    before = _digest(db)
    report = run_retention(db, scenario.settings, clock=_clock(D30), dry_run=True)
    assert report.anonymised > 0 and report.dry_run
    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", scenario.url)
    from workflows.cli import main

    code = main(["retention", "run", "--dry-run", "--no-prefect", "--today", D30.isoformat()])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "simulation : rien n'a été modifié" in out
    assert f"Dossiers à anonymiser aujourd'hui : {report.anonymised}." in out
    assert _digest(db) == before


def _consistent(db: Database) -> tuple[int, int]:
    """Each person is either untouched or entirely anonymised: (anonymised, untouched)."""
    with unit_of_work(db) as s:
        rows = s.execute(select(m.Salarie.id, m.Salarie.reference, m.Salarie.anonymised_at,
                                m.Salarie.entry_date)).all()  # fmt: skip
        identities = set(s.scalars(select(m.SalarieIdentity.salarie_id)))
        noted = set(s.scalars(select(m.CaseNote.salarie_id)))
        event_notes = set(s.scalars(select(m.Referral.salarie_id).join(m.ReferralEvent)
                                    .where(m.ReferralEvent.note.is_not(None))))  # fmt: skip
    done = untouched = 0
    for sid, reference, at, entry in rows:
        if at is not None:
            assert reference.startswith("ANO-") and sid not in identities and entry.day == 1
            assert sid not in noted and sid not in event_notes
            done += 1
        else:
            assert reference.startswith("SAL-") and sid in identities
            untouched += 1
    return done, untouched


def test_a_sigkill_mid_run_leaves_nobody_half_anonymised_and_the_next_run_finishes(scenario):
    db = scenario.db
    run_retention(db, scenario.settings, clock=_clock(D0))
    due = len(plan_retention(db, scenario.settings, clock=_clock(D30)).to_anonymise)
    assert due >= 8
    env = {**os.environ, "AIGUILLAGE_DATABASE_URL": scenario.url, "AIGUILLAGE_BASE_URL": BASE_URL,
           "AIGUILLAGE_RETENTION_BATCH_SIZE": "2", "AIGUILLAGE_RETENTION_BATCH_PAUSE_S": "0.4"}  # fmt: skip
    proc = subprocess.Popen(
        [str(BIN / "aiguillage"), "retention", "run", "--no-prefect", "--today", D30.isoformat()],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(_anonymised_ids(db)) < 2:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "the first batch never committed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at, _ = _consistent(db)
    assert 2 <= killed_at < due, "the kill did not land in the middle of the run"
    finished = run_retention(db, scenario.settings, clock=_clock(D30))
    assert finished.anonymised == due - killed_at
    assert _consistent(db)[0] == due
    again = run_retention(db, scenario.settings, clock=_clock(D30))
    assert again.anonymised == 0


def test_the_legal_hold_keeps_a_file_and_the_notice_says_so(scenario):
    db, settings = scenario.db, scenario.settings
    with unit_of_work(db) as s:
        held = s.scalar(select(m.Referral).where(m.Referral.state == "waitlisted"))
        sid, rid = held.salarie_id, held.id
        chantier = s.get(m.Chantier, held.chantier_id)
        territory = s.get(m.Territory, held.territory_id)
        # One month in this territory: the person, waiting since June, is long past it.
        set_territory_retention(s, None, territory.code, 1, clock=_clock(D0), actor_label="test")
    run_retention(db, settings, clock=_clock(D0))
    with unit_of_work(db) as s:
        person = s.get(m.Salarie, sid)
        assert person.retention_notice_on is None and person.anonymised_at is None
        cips = set(s.scalars(select(m.StaffUser.id).where(m.StaffUser.role == "cip",
                                                          m.StaffUser.chantier_id == chantier.id)))  # fmt: skip
    mine = [n for n in _notices(db) if n.recipient_user_id in cips]
    assert mine and all(n.context["held"] >= 1 for n in mine)
    run_retention(db, settings, clock=_clock(D30 + timedelta(days=20)))
    with unit_of_work(db) as s:
        assert s.get(m.Salarie, sid).anonymised_at is None
        assert s.get(m.Referral, rid).state == "waitlisted"
        assert s.get(m.SalarieIdentity, sid) is not None
        admin = s.scalar(select(m.StaffUser).where(m.StaffUser.role == "national_admin"))
        cancel_day = D30 + timedelta(days=21)
        transition(s, settings, rid, "cancel", actor=Actor.of(admin), clock=_clock(cancel_day, 10),
                   note="place plus nécessaire")  # fmt: skip
    # The hold is lifted: a notice (one month after the cancellation is within 30 days),
    # then the anonymisation on the day announced.
    notice_day = cancel_day + timedelta(days=3)
    run_retention(db, settings, clock=_clock(notice_day))
    with unit_of_work(db) as s:
        person = s.get(m.Salarie, sid)
        assert person.retention_notice_on == notice_day
        assert person.retention_due_on == notice_day + timedelta(days=30)
    run_retention(db, settings, clock=_clock(notice_day + timedelta(days=30)))
    with unit_of_work(db) as s:
        assert s.get(m.Salarie, sid).anonymised_at is not None
        assert s.get(m.Referral, rid).state == "cancelled"


def test_out_of_range_durations_are_refused_in_french(scenario, monkeypatch, capsys):
    db = scenario.db
    with unit_of_work(db) as s:
        for bad in (0, 37, "abc", "-3"):
            with pytest.raises(RetentionError, match="durée de conservation"):
                set_territory_retention(s, None, "paris", bad, clock=_clock(D0))
    with pytest.raises(IntegrityError), unit_of_work(db) as s:  # the database refuses it too
        s.execute(
            update(m.Territory).where(m.Territory.code == "paris").values(retention_months=40)
        )
    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", scenario.url)
    monkeypatch.setenv("AIGUILLAGE_RETENTION_ACCESS_LOG_MONTHS", "3")
    from workflows.cli import main

    assert main(["retention", "run", "--no-prefect", "--today", D0.isoformat()]) == 2
    err = capsys.readouterr().err
    assert "AIGUILLAGE_RETENTION_ACCESS_LOG_MONTHS" in err and "hors de la plage permise" in err
    monkeypatch.delenv("AIGUILLAGE_RETENTION_ACCESS_LOG_MONTHS")
    assert main(["retention", "set-territory", "paris", "48"]) == 2
    assert "1 à 36 mois" in capsys.readouterr().err
    assert main(["retention", "set-territory", "paris", "6"]) == 0
    assert "6 mois" in capsys.readouterr().out
    with unit_of_work(db) as s:
        assert (
            s.scalar(select(m.Territory.retention_months).where(m.Territory.code == "paris")) == 6
        )
        audit = s.scalar(select(m.AuditLog).where(m.AuditLog.action == "set_retention"))
        assert audit.details == {"before": None, "after": 6}


def test_the_retention_flow_runs_in_prefect_with_counts_only(template, scenario, monkeypatch):
    if template[0] != "sqlite":
        pytest.skip("one real Prefect run is enough")
    from workflows.flows import retention_flow

    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", scenario.url)
    monkeypatch.setenv("AIGUILLAGE_BASE_URL", BASE_URL)
    result = retention_flow(dry_run=False, now=_clock(D0).now().isoformat())
    assert result["noticed"] > 0 and result["dry_run"] is False
    blob = json.dumps(result)
    assert "SAL-" not in blob and "@" not in blob
