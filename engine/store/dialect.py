"""Every difference between SQLite and PostgreSQL the engine relies on, in one place.

Why one module: the two databases differ in a handful of ways that matter to us — the
``INSERT … ON CONFLICT DO NOTHING`` spelling, row locks (PostgreSQL has ``SELECT … FOR
UPDATE``; SQLite serialises writers with ``BEGIN IMMEDIATE`` instead, see
``engine.store.db.unit_of_work``), how a datetime travels in bulk paths, and how many rows
go in at once (PostgreSQL's ``COPY``). Use cases ask these questions here rather than testing
the dialect's name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Engine, Row, String, Table, column, select
from sqlalchemy import table as table_clause
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

Bind = Session | Connection | Engine

# Names are searched without their accents ("heloise" finds Héloïse): the same table in SQL
# (PostgreSQL's translate, no extension needed) and in Python (SQLite's registered function).
ACCENTED = "àâäáãåçéèêëíìîïñóòôöõúùûüýÿÀÂÄÁÃÅÇÉÈÊËÍÌÎÏÑÓÒÔÖÕÚÙÛÜÝŸ"
PLAIN = "aaaaaaceeeeiiiinooooouuuuyyaaaaaaceeeeiiiinooooouuuuyy"
_FOLD = str.maketrans(ACCENTED, PLAIN)
SQLITE_FOLD = "aig_fold"


def fold_text(text: str | None) -> str | None:
    """Lower case without accents, exactly as ``folded`` does in SQL."""
    return None if text is None else text.translate(_FOLD).lower()


class folded(FunctionElement[str]):
    """``folded(column)``: the column in lower case without accents, in SQL, on either
    database (see ``fold_text``)."""

    type = String()
    name = "folded"
    inherit_cache = True


@compiles(folded, "sqlite")
def _folded_sqlite(element: folded, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_FOLD}({compiler.process(element.clauses, **kw)})"


@compiles(folded)
def _folded_default(element: folded, compiler: Any, **kw: Any) -> str:
    arg = compiler.process(element.clauses, **kw)
    return f"lower(translate({arg}, '{ACCENTED}', '{PLAIN}'))"


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


def check_bulk_rows(table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """A bulk path (executemany through a raw view, COPY) applies no model default: its rows
    must carry every column that is NOT NULL without a server default."""
    required = {
        c.name
        for c in table.columns
        if not c.nullable and not c.primary_key and c.server_default is None
    }
    missing = required - set(rows[0]) if rows else set()
    if missing:
        raise RuntimeError(f"bulk rows of {table.name} miss required columns {sorted(missing)}")


def copy_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL: stream ``rows`` into ``table`` with ``COPY … FROM STDIN`` (psycopg 3), in
    the connection's transaction. JSON columns take text already serialised, or a value
    serialised here; every row has the keys of the first."""
    if not rows:
        return
    check_bulk_rows(table, rows)
    columns = list(rows[0])
    _copy(conn, table.name, columns, _json_positions(table, columns), rows)


def copy_insert_ignoring(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    index_elements: list[str],
    index_where: Any = None,
    returning: Sequence[str],
) -> list[Row[Any]]:
    """PostgreSQL: ``INSERT … ON CONFLICT DO NOTHING RETURNING`` for many rows, through a
    temporary staging table filled with ``COPY`` and one ``INSERT … SELECT``; the rows really
    inserted, in the order of ``rows``.

    Why: an executemany with RETURNING goes through insertmanyvalues, which builds one
    statement of some 20,000 parameters per thousand rows that psycopg then parses on the
    client — intake at scale 50 spent three quarters of its time there.
    """
    if not rows:
        return []
    check_bulk_rows(table, rows)
    columns = list(rows[0])
    staging = f"{table.name}_staging"
    listed = ", ".join(f'"{c}"' for c in columns)
    conn.exec_driver_sql(
        f'CREATE TEMPORARY TABLE "{staging}" ON COMMIT DROP AS '
        f'SELECT 0::bigint AS staging_order, {listed} FROM "{table.name}" WITH NO DATA'
    )
    numbered = [{**row, "staging_order": i} for i, row in enumerate(rows)]
    json_at = [j + 1 for j in _json_positions(table, columns)]
    _copy(conn, staging, ["staging_order", *columns], json_at, numbered)
    source = table_clause(staging, column("staging_order"), *(column(c) for c in columns))
    ordered = select(*(source.c[c] for c in columns)).order_by(source.c.staging_order)
    stmt = (
        pg_insert(table)
        .from_select(columns, ordered)
        .on_conflict_do_nothing(index_elements=index_elements, index_where=index_where)
        .returning(*(table.c[c] for c in returning))
    )
    inserted = list(conn.execute(stmt).all())
    conn.exec_driver_sql(f'DROP TABLE "{staging}"')
    return inserted


def _json_positions(table: Table, columns: list[str]) -> list[int]:
    return [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]


def _copy(
    conn: Connection,
    target: str,
    columns: list[str],
    json_at: list[int],
    rows: Sequence[dict[str, Any]],
) -> None:
    """COPY the rows' values of ``columns`` into ``target``. JSON values at ``json_at`` are
    serialised unless already text."""
    listed = ", ".join(f'"{c}"' for c in columns)
    pick = itemgetter(*columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f'COPY "{target}" ({listed}) FROM STDIN') as copy:
        for row in rows:
            values = list(pick(row)) if len(columns) > 1 else [pick(row)]
            for j in json_at:
                if values[j] is not None and not isinstance(values[j], str):
                    values[j] = json.dumps(values[j])
            copy.write_row(values)


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
    "check_bulk_rows",
    "copy_insert_ignoring",
    "copy_rows",
    "sqlite_stamp",
    "get_locked",
    "insert_ignoring",
    "is_postgresql",
    "is_sqlite",
    "name",
]
