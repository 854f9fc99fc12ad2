"""It runs by itself: a real ``prefect server start`` and ``aiguillage flows serve`` route new
freins and deliver mails on their schedules, without anyone calling a command."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from engine.domain.clock import Clock
from engine.network.seed import seed_network
from engine.store import models as m
from engine.store.db import Database
from engine.store.migrate import upgrade
from tests.conftest import PG_ADMIN_URL, _pg_available

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def prefect_server(request, tmp_path):  # type: ignore[no-untyped-def]
    """A Prefect server on a free loopback port with its own home; its database is SQLite,
    or a fresh PostgreSQL database when the test asks for ``"postgres"`` (indirect)."""
    kind = getattr(request, "param", "sqlite")
    port = _free_port()
    if kind == "postgres":
        if not _pg_available():
            pytest.skip("PostgreSQL unreachable at 127.0.0.1:5432")  # CI fails earlier, on pg_db
        name = f"prefect_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        database = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        connection_url = database.replace("+psycopg", "+asyncpg")
    else:
        database = f"sqlite:///{tmp_path / 'prefect.db'}"
        connection_url = database.replace("sqlite:", "sqlite+aiosqlite:")
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": connection_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait(lambda: _healthy(url) or server.poll() is not None, 180, "the Prefect server")
        assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
        yield {"url": url, "env": env, "database": database}
    finally:
        _stop(server)
        log.close()
        if kind == "postgres":
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def _stored_by_prefect(database: str) -> bytes:
    """Everything Prefect's database holds, as bytes to search: the SQLite file, or every
    row of every PostgreSQL table as text."""
    if database.startswith("sqlite"):
        return Path(database.removeprefix("sqlite:///")).read_bytes()
    engine = create_engine(database)
    with engine.connect() as conn:
        tables = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
        dump = [
            row
            for table in list(tables)
            for row in conn.execute(text(f'SELECT t::text FROM "{table}" t')).scalars()
        ]
    engine.dispose()
    return "\n".join(dump).encode()


def _names_of_people(db: Database) -> list[str]:
    with db.sessions() as s:
        return [n for (n,) in s.execute(select(m.SalarieIdentity.last_name).limit(50)).all()]


def _assert_no_name_stored_by_prefect(db: Database, database: str) -> None:
    """Prefect stores parameters, results and logs: no personal value may be among them."""
    stored = _stored_by_prefect(database)
    leaked = [n for n in _names_of_people(db) if n.encode() in stored]
    assert not leaked, f"names found in Prefect's database: {leaked[:5]}"


def test_flows_serve_routes_and_mails_on_their_schedules(prefect_server, smtp_server, tmp_path):
    url = f"sqlite:///{tmp_path / 'aiguillage.db'}"
    upgrade(url)
    db = Database(url)
    seed_network(db, scale=0.05, seed=5, clock=Clock.system())
    with db.sessions() as s:
        freins = s.scalar(select(func.count()).select_from(m.Frein))
    env = {
        **prefect_server["env"],
        "PREFECT_API_URL": prefect_server["url"],
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "AIGUILLAGE_DATABASE_URL": url,
        "AIGUILLAGE_SMTP_PORT": str(smtp_server.port),
        "AIGUILLAGE_BASE_URL": "http://aiguillage.test",
        "AIGUILLAGE_SCHEDULE_INTAKE": "5s",
        "AIGUILLAGE_SCHEDULE_NOTIFICATIONS": "5s",
        "AIGUILLAGE_SCHEDULE_ALLOCATION": "off",
        "AIGUILLAGE_SCHEDULE_REPORTING": "off",
        "AIGUILLAGE_SCHEDULE_RETENTION": "off",
    }
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [str(BIN / "aiguillage"), "flows", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )

    def routed() -> bool:
        with db.sessions() as s:
            return s.scalar(select(func.count()).select_from(m.Referral)) == freins

    try:
        _wait(lambda: routed() or serve.poll() is not None, 240, "the scheduled intake")
        assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        _wait(lambda: len(smtp_server.messages) > 0, 240, "mails sent by the scheduled relay")
    finally:
        _stop(serve)
        log.close()
    status = subprocess.run(
        [str(BIN / "aiguillage"), "flows", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    # The last runs: finished, or still running / cancelled by the stop of `flows serve`.
    assert re.search(r"^intake : (terminé|en cours|annulé) \(début ", status.stdout, re.M), (
        status.stdout
    )
    assert re.search(r"^notifications : (terminé|en cours|annulé) \(début ", status.stdout, re.M), (
        status.stdout
    )
    assert "allocation : jamais exécuté ; aucun passage planifié" in status.stdout
    _assert_no_name_stored_by_prefect(db, prefect_server["database"])
    db.dispose()


def test_a_bad_schedule_is_refused_in_french_before_anything_starts(tmp_path):
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path),
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
        "AIGUILLAGE_SCHEDULE_INTAKE": "tous les jours",
    }
    done = subprocess.run(
        [str(BIN / "aiguillage"), "flows", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "AIGUILLAGE_SCHEDULE_INTAKE" in done.stderr and "cron" in done.stderr


@pytest.mark.parametrize("prefect_server", ["postgres"], indirect=True)
def test_two_workers_of_a_work_pool_drain_one_outbox_without_sending_twice(
    pg_db, prefect_server, smtp_server, tmp_path
):
    """The scale-out setup, all on PostgreSQL (Prefect's database and Aiguillage's):
    `flows deploy --pool` then two `prefect worker start`; scheduled runs land on either
    worker, overlapping relays share the outbox through leases, and no mail goes out twice."""
    db, url = pg_db, pg_db.url
    seed_network(db, scale=0.05, seed=6, clock=Clock.system())
    with db.sessions() as s:
        freins = s.scalar(select(func.count()).select_from(m.Frein))
    env = {
        **prefect_server["env"],
        "PREFECT_API_URL": prefect_server["url"],
        "AIGUILLAGE_DATABASE_URL": url,
        "AIGUILLAGE_SMTP_PORT": str(smtp_server.port),
        "AIGUILLAGE_BASE_URL": "http://aiguillage.test",
        "AIGUILLAGE_SCHEDULE_INTAKE": "5s",
        "AIGUILLAGE_SCHEDULE_NOTIFICATIONS": "5s",
        "AIGUILLAGE_SCHEDULE_ALLOCATION": "off",
        "AIGUILLAGE_SCHEDULE_REPORTING": "off",
        "AIGUILLAGE_SCHEDULE_RETENTION": "off",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    deployed = subprocess.run(
        [str(BIN / "aiguillage"), "flows", "deploy", "--pool", "aiguillage-test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "5 déploiements enregistrés" in deployed.stdout
    logs = [(tmp_path / f"worker-{i}.log").open("w") for i in (1, 2)]
    workers = [
        subprocess.Popen(
            [
                str(BIN / "prefect"),
                "worker",
                "start",
                "--pool",
                "aiguillage-test",
                "--name",
                f"worker-{i}",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for i, log in zip((1, 2), logs, strict=True)
    ]

    def routed() -> bool:
        with db.sessions() as s:
            return s.scalar(select(func.count()).select_from(m.Referral)) == freins

    try:
        _wait(routed, 300, "the intake run by a worker")
        _wait(lambda: len(smtp_server.messages) >= 5, 300, "mails sent by the workers' relays")
        time.sleep(15)  # more overlapping notification runs
    finally:
        for w in workers:
            _stop(w)
        for log in logs:
            log.close()
    ids = [str(msg.message["Message-ID"]) for msg in smtp_server.messages]
    assert len(ids) == len(set(ids)), "a message was sent twice"
    with db.sessions() as s:
        sent = s.scalar(
            select(func.count())
            .select_from(m.OutboxMessage)
            .where(m.OutboxMessage.status == "sent")
        )
    assert sent <= len(
        ids
    )  # a row marked sent was delivered (one in flight at the stop may not be marked)
    _assert_no_name_stored_by_prefect(db, prefect_server["database"])
