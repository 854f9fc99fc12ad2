"""Database engine and unit of work.

Why: SQLite is the default (one file under var/, WAL so readers never block the writer,
busy_timeout so concurrent writers wait instead of failing, foreign keys on) and PostgreSQL
is used when ``AIGUILLAGE_DATABASE_URL`` says so; everything else talks to a ``Database``
and opens one transaction per use case through ``unit_of_work``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from engine.store import dialect


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given without a driver."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # pysqlite opens transactions lazily; let SQLAlchemy emit BEGIN itself (see below).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
    dbapi_conn.create_function(dialect.SQLITE_FOLD, 1, dialect.fold_text, deterministic=True)


def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: a failed statement's message never carries the row's values
        # (routing explanations, housing situation, notes) into a log.
        engine = create_engine(url, echo=echo, hide_parameters=True, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url, echo=echo, hide_parameters=True, pool_size=10, max_overflow=20, pool_pre_ping=True
    )


class Database:
    """An engine plus its session factory; one per process (or per test)."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return dialect.is_sqlite(self.engine)

    @property
    def is_postgres(self) -> bool:
        return dialect.is_postgresql(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def analyze(db: Database) -> None:
    """Refresh the planner's statistics after a bulk load.

    Why: SQLite never gathers statistics by itself, and without them it sorts a million
    open referrals for the national queue instead of reading the right index (measured
    4–9 s a page instead of 1 ms); PostgreSQL's autovacuum would catch up, but later.
    """
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


@contextmanager
def unit_of_work(db: Database, *, immediate: bool = False) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception.

    ``immediate`` takes SQLite's write lock at BEGIN (``BEGIN IMMEDIATE``), for use cases
    that read then write and must not interleave with another writer.
    """
    session = db.sessions()
    if immediate and db.is_sqlite:
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
