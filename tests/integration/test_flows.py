"""A real Prefect run of each flow (embedded ephemeral API, temporary PREFECT_HOME)."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import func, select

from engine.domain.clock import Clock
from engine.network.demo import simulate_activity
from engine.network.seed import seed_network
from engine.store import models as m
from engine.store.settings import Settings

TODAY = date(2026, 11, 26)


def test_intake_allocation_and_notifications_flows_run_in_prefect(
    sqlite_db, smtp_server, monkeypatch
):
    from prefect.testing.utilities import prefect_test_harness  # noqa: F401  (import check only)

    from workflows.flows import allocation_flow, intake_flow, notifications_flow

    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", sqlite_db.url)
    monkeypatch.setenv("AIGUILLAGE_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("AIGUILLAGE_BASE_URL", "http://aiguillage.test")
    seed_network(sqlite_db, scale=0.05, seed=2, clock=Clock.on_day(TODAY, running=False))

    clock = Clock.on_day(TODAY, running=False)
    routed = intake_flow(chunk_size=200, now=clock.now().isoformat())
    with sqlite_db.sessions() as s:
        assert routed["routed"] == s.scalar(select(func.count()).select_from(m.Frein)) > 0
    # Flow results carry counts only: nothing that looks like a person.
    blob = json.dumps(routed)
    assert "SAL-" not in blob and "@" not in blob

    simulate_activity(
        sqlite_db,
        Settings(database_url=sqlite_db.url, base_url="http://aiguillage.test"),
        seed=2,
        clock=clock,
    )
    # Each flow runs at its own later instant, as on a real day: a replayed flow's clock
    # starts at the instant it is given and runs, so a drain replayed at the allocation's
    # own start would find the proposals it wrote seconds later not yet due.
    alloc = allocation_flow(dry_run=False, now=(clock.now() + timedelta(minutes=5)).isoformat())
    assert alloc["status"] == "optimal" and sum(alloc["proposals_by_pool"].values()) > 0

    sent = notifications_flow(chunk=50, now=(clock.now() + timedelta(minutes=30)).isoformat())
    assert sent["relay"]["sent"] > 0
    assert sent["relay"]["parked"] == 0
    # A mail the relay could not hand over (a transient SMTP failure, e.g. on a loaded machine)
    # waits for its backoff (at most an hour); the next scheduled run sends it.
    again = notifications_flow(chunk=50, now=(clock.now() + timedelta(hours=3)).isoformat())
    assert again["relay"]["parked"] == 0
    assert sent["relay"]["sent"] + again["relay"]["sent"] == len(smtp_server.messages)
    with sqlite_db.sessions() as s:
        pending = s.scalar(
            select(func.count())
            .select_from(m.OutboxMessage)
            .where(m.OutboxMessage.status == "pending", m.OutboxMessage.delivery == "immediate")
        )
        left = s.execute(
            select(
                m.OutboxMessage.kind,
                m.OutboxMessage.due_at,
                m.OutboxMessage.attempts,
                m.OutboxMessage.last_error,
            )
            .where(m.OutboxMessage.status == "pending", m.OutboxMessage.delivery == "immediate")
            .limit(5)
        ).all()
        assert pending == 0, (left, sent, again)


def test_reporting_flow_writes_snapshots_in_prefect(sqlite_db, monkeypatch):
    from workflows.flows import reporting_flow

    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", sqlite_db.url)
    clock = Clock.on_day(TODAY, running=False)
    seed_network(sqlite_db, scale=0.05, seed=4, clock=clock)
    result = reporting_flow(now=clock.now().isoformat())
    assert result["rows_written"] > 0
    with sqlite_db.sessions() as s:
        periods = set(s.scalars(select(m.IndicatorSnapshot.period).distinct()).all())
    assert periods == {str(TODAY.year), *(f"{TODAY.year}-{k:02d}" for k in range(1, 12))}
    # Counts only in Prefect's result: no person, no text.
    assert set(result) == {"rows_written", "periods_kept"}
