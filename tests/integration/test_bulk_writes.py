"""The bulk write paths (COPY through a staging table on PostgreSQL, executemany on SQLite)
keep the semantics of a plain insert: duplicates skipped, order kept, JSON intact."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from engine.outbox.enqueue import enqueue_many
from engine.store import dialect
from engine.store import models as m
from engine.store.db import unit_of_work

BASE = "http://aiguillage.test"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _mail(key: str, reference: str = "SAL-ABCDEF") -> dict:
    context = {"recipient_name": "Camille Martin", "preferences_url": f"{BASE}/preferences",
               "reference": reference, "territory": "Convergence Paris",
               "url": f"{BASE}/orientations/1"}  # fmt: skip
    return {"kind": "slot_validated", "key": key, "to_address": "camille@example.org",
            "context": context, "mode": "immediate"}  # fmt: skip


def test_enqueue_many_counts_only_new_messages_and_keeps_their_context(db):
    with unit_of_work(db) as s:
        assert enqueue_many(s, [_mail("a"), _mail("b"), _mail("a")], base_url=BASE, now=NOW) == 2
    with unit_of_work(db) as s:
        batch = [_mail("b"), _mail("c", reference="SAL-GHIJKL")]
        assert enqueue_many(s, batch, base_url=BASE, now=NOW) == 1
    with db.sessions() as s:
        stored = dict(
            s.execute(select(m.OutboxMessage.idempotency_key, m.OutboxMessage.context))
            .tuples()
            .all()
        )
        due = s.execute(select(m.OutboxMessage.due_at)).scalars().all()
    assert sorted(stored) == ["a", "b", "c"]
    assert (
        stored["c"]["reference"] == "SAL-GHIJKL" and stored["a"]["territory"] == "Convergence Paris"
    )
    assert all(d.replace(tzinfo=UTC) == NOW for d in due)


def test_copy_insert_returns_the_inserted_rows_in_order_and_refuses_incomplete_rows(pg_db):
    table = m.table_of(m.OutboxMessage)
    rows = [
        {"idempotency_key": key, "kind": "slot_validated", "recipient_user_id": None,
         "to_address": "x@example.org", "context": {"n": i}, "delivery": "immediate",
         "status": "pending", "due_at": NOW, "attempts": 0, "created_at": NOW}
        for i, key in enumerate(["k3", "k1", "k2"])
    ]  # fmt: skip
    with pg_db.engine.begin() as conn:
        first = dialect.copy_insert_ignoring(
            conn, table, rows[:2], index_elements=["idempotency_key"], returning=["idempotency_key"]
        )
        again = dialect.copy_insert_ignoring(
            conn, table, rows, index_elements=["idempotency_key"], returning=["idempotency_key"]
        )
    assert [r[0] for r in first] == ["k3", "k1"]
    assert [r[0] for r in again] == ["k2"]
    with pg_db.sessions() as s:
        by_key = dict(
            s.execute(select(m.OutboxMessage.idempotency_key, m.OutboxMessage.id)).tuples().all()
        )
        contexts = dict(
            s.execute(select(m.OutboxMessage.idempotency_key, m.OutboxMessage.context))
            .tuples()
            .all()
        )
    assert by_key["k3"] < by_key["k1"] < by_key["k2"]
    assert contexts == {"k3": {"n": 0}, "k1": {"n": 1}, "k2": {"n": 2}}
    incomplete = [{k: v for k, v in rows[0].items() if k != "to_address"}]
    with pytest.raises(RuntimeError, match="to_address"), pg_db.engine.begin() as conn:
        dialect.copy_rows(conn, table, incomplete)
