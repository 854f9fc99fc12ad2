"""Session-wide test harness: Prefect in a temporary home, databases on SQLite and PostgreSQL.

Why one harness: every integration test gets a migrated database of each kind, emptied after
the test; PostgreSQL is the real server at 127.0.0.1:5432 (a database per test session), and
with CI=true an unreachable server fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import tempfile
import uuid

# Before anything imports Prefect: telemetry off, a throw-away Prefect home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# One Prefect home per test process: pytest-xdist's workers inherit the controller's
# environment, and two embedded APIs on one SQLite file lock each other out.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER or "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix=f"aiguillage-prefect-{_WORKER or 'main'}-")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
# The embedded API server starts as a subprocess; a loaded CI machine needs more than the 20 s default.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from engine.store import models as m  # noqa: E402
from engine.store.db import Database  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "AIGUILLAGE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Property tests are judged on their examples, not on the speed of a shared machine: with two
# test processes on two cores, hypothesis's 200 ms deadline per example would decide by load.
settings.register_profile("aiguillage", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("aiguillage")


def _pg_available() -> bool:
    try:
        eng = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_url():
    """A fresh, migrated PostgreSQL database for this test session."""
    if not _pg_available():
        if IN_CI:
            pytest.fail(
                "PostgreSQL injoignable sur 127.0.0.1:5432 alors que CI=true", pytrace=False
            )
        pytest.skip("PostgreSQL unreachable at 127.0.0.1:5432")
    name = f"aiguillage_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'aiguillage.db'}"
    upgrade(url)
    return url


def _empty(db: Database) -> None:
    tables = [t.name for t in m.Base.metadata.sorted_tables]
    if db.is_postgres:
        with db.engine.begin() as conn:
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
        return
    # SQLite: with foreign keys enforced, each deleted row is checked against every child
    # table (7–99 s to empty a seeded network); with them off, an unconditional DELETE is
    # SQLite's truncate. Every table goes, children first, so nothing is left dangling.
    raw = db.engine.raw_connection()  # the driver in autocommit: the PRAGMA takes effect
    try:
        raw.execute("PRAGMA foreign_keys = OFF")
        try:
            raw.execute("BEGIN IMMEDIATE")
            for t in reversed(tables):
                raw.execute(f"DELETE FROM {t}")
            raw.execute("COMMIT")
        finally:
            raw.execute("PRAGMA foreign_keys = ON")
    finally:
        raw.close()


def _fresh(url: str):
    """A migrated database emptied before and after the test."""
    database = Database(url)
    _empty(database)
    yield database
    _empty(database)
    database.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request):
    """A migrated, empty database of each kind; emptied again after the test."""
    yield from _fresh(
        request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    )


@pytest.fixture
def pg_db(pg_url):
    yield from _fresh(pg_url)


@pytest.fixture
def sqlite_db(sqlite_url):
    yield from _fresh(sqlite_url)


from tests.support.smtp_server import smtp_server  # noqa: E402,F401  (shared fixture)


def pytest_collection_modifyitems(config, items):
    """Browser tests last: Playwright's sync API keeps an event loop running in the main
    thread while its browser is open, which asyncio.run() in later tests would trip on."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
