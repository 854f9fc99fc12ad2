"""Every difference between SQLite and PostgreSQL the engine relies on, in one place.

Why one module: the two databases differ in a handful of ways that matter to us — the
``INSERT … ON CONFLICT DO NOTHING`` spelling, row locks (PostgreSQL has ``SELECT … FOR
UPDATE``; SQLite serialises writers with ``BEGIN IMMEDIATE`` instead, see
``engine.store.db.unit_of_work``), and how a datetime travels in bulk paths. Use cases ask
these questions here rather than testing the dialect's name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

Bind = Session | Connection | Engine


def name(bind: Bind) -> str:
    """ "sqlite" or "postgresql"."""
    target = bind.get_bind() if isinstance(bind, Session) else bind
    return target.dialect.name


def is_sqlite(bind: Bind) -> bool:
    return name(bind) == "sqlite"


def is_postgresql(bind: Bind) -> bool:
    return name(bind) == "postgresql"


def insert_ignoring(
    bind: Bind, table: Any, *, index_elements: list[str], index_where: Any = None
) -> Any:
    """``INSERT … ON CONFLICT (index_elements) DO NOTHING`` on either database."""
    ins = pg_insert if is_postgresql(bind) else sqlite_insert
    return ins(table).on_conflict_do_nothing(index_elements=index_elements, index_where=index_where)


def sqlite_stamp(value: datetime) -> str:
    """A datetime as SQLAlchemy stores it in SQLite (UTC, naive text), for driver-level SQL."""
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def bulk_stamp(value: datetime, *, sqlite: bool) -> object:
    """A datetime for a bulk statement that bypasses type processing: SQLite's own text,
    or the value as is for PostgreSQL."""
    return sqlite_stamp(value) if sqlite else value


def lock_for_update(session: Session) -> bool:
    """The ``with_for_update`` flag of a read that is about to be written: a row lock on
    PostgreSQL; on SQLite the unit of work already holds the only write lock."""
    return is_postgresql(session)


def get_locked(session: Session, model: type[Any], ident: int) -> Any:
    """``session.get`` that locks the row against a concurrent writer until commit."""
    return session.get(model, ident, with_for_update=lock_for_update(session))


__all__ = [
    "bulk_stamp",
    "sqlite_stamp",
    "get_locked",
    "insert_ignoring",
    "is_postgresql",
    "is_sqlite",
    "name",
]
