"""The outbox relay against a real aiosmtpd server on loopback that can fail on purpose."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select, update

from engine.domain.clock import Clock, as_utc, utcnow
from engine.outbox.enqueue import enqueue_many
from engine.outbox.relay import drain
from engine.store import models as m
from engine.store.db import unit_of_work
from engine.store.settings import Settings
from notifications.render import message_id_for

BASE = "http://aiguillage.test"

# The relay is real I/O against a real SMTP server and real worker processes: leases and
# backoff elapse in real time, so these tests use the system clock on purpose.
REAL_TIME = Clock.system()


def _settings(db, server, **kw) -> Settings:
    return Settings(database_url=db.url, smtp_host="127.0.0.1", smtp_port=server.port, base_url=BASE,
                    smtp_timeout_s=kw.pop("timeout", 2.0), **kw)  # fmt: skip


def _queue(db, n: int, prefix: str = "t") -> None:
    with unit_of_work(db) as s:
        enqueue_many(
            s,
            [
                {"kind": "slot_validated", "key": f"{prefix}:{i}", "to_address": f"user{i}@example.org",
                 "context": {"recipient_name": "Camille Martin", "preferences_url": f"{BASE}/preferences",
                             "reference": "SAL-ABCDEF", "territory": "Convergence Paris",
                             "url": f"{BASE}/orientations/{i}"}, "mode": "immediate"}
                for i in range(n)
            ],
            base_url=BASE, now=REAL_TIME.now(),
        )  # fmt: skip


def _statuses(db) -> Counter[str]:
    with db.sessions() as s:
        return Counter(
            dict(
                s.execute(
                    select(m.OutboxMessage.status, func.count()).group_by(m.OutboxMessage.status)
                ).all()
            )
        )


def _make_due(db) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            update(m.OutboxMessage)
            .where(m.OutboxMessage.status == "pending")
            .values(due_at=utcnow() - timedelta(seconds=1))
        )


def test_delivers_multipart_french_mail_with_stable_message_id(db, smtp_server):
    _queue(db, 5)
    report = drain(db, _settings(db, smtp_server), clock=REAL_TIME)
    assert report.sent == 5 and _statuses(db) == Counter({"sent": 5})
    msgs = smtp_server.messages
    assert len(msgs) == 5 and smtp_server.connections == 1
    mail = msgs[0].message
    assert mail.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    ids = {str(msg.message["Message-ID"]).strip() for msg in msgs}
    assert ids == {message_id_for(f"t:{i}", "convergence-france.example.org") for i in range(5)}
    assert "Place" in mail["Subject"]
    with db.sessions() as s:
        stamps = s.scalars(select(m.OutboxMessage.sent_at)).all()
        assert all(
            st is not None and abs((utcnow() - as_utc(st)).total_seconds()) < 120 for st in stamps
        )
    # Nothing to do on a second pass: nothing sent twice.
    assert drain(db, _settings(db, smtp_server), clock=REAL_TIME).claimed == 0
    assert len(smtp_server.messages) == 5


def test_451_is_retried_later_and_nothing_is_lost(db, smtp_server):
    _queue(db, 3)
    smtp_server.set_mode("refuse_451")
    report = drain(db, _settings(db, smtp_server), clock=REAL_TIME)
    assert report.retried == 3 and report.sent == 0
    with db.sessions() as s:
        rows = s.scalars(select(m.OutboxMessage)).all()
        assert all(
            r.status == "pending" and r.attempts == 1 and "451" in r.last_error for r in rows
        )
    smtp_server.set_mode("ok")
    assert (
        drain(db, _settings(db, smtp_server), clock=REAL_TIME).claimed == 0
    )  # backoff: not due yet
    _make_due(db)
    assert drain(db, _settings(db, smtp_server), clock=REAL_TIME).sent == 3
    assert len(smtp_server.messages) == 3


def test_550_is_parked_with_the_answer(db, smtp_server):
    _queue(db, 2)
    smtp_server.set_mode("reject_550")
    report = drain(db, _settings(db, smtp_server), clock=REAL_TIME)
    assert report.parked == 2
    with db.sessions() as s:
        assert all(
            "550" in r.last_error and r.status == "parked"
            for r in s.scalars(select(m.OutboxMessage)).all()
        )


def test_stall_drop_and_down_are_transient(db, smtp_server):
    _queue(db, 2, "stall")
    smtp_server.set_mode("stall")
    assert drain(db, _settings(db, smtp_server, timeout=0.5), clock=REAL_TIME).retried == 2
    smtp_server.set_mode("drop")
    _make_due(db)
    assert drain(db, _settings(db, smtp_server), clock=REAL_TIME).retried == 2
    smtp_server.set_mode("down")
    _make_due(db)
    assert drain(db, _settings(db, smtp_server), clock=REAL_TIME).sent == 0
    smtp_server.set_mode("up")
    _make_due(db)
    assert drain(db, _settings(db, smtp_server), clock=REAL_TIME).sent == 2
    keys = Counter(msg.message["Message-ID"] for msg in smtp_server.messages)
    assert len(keys) == 2 and _statuses(db) == Counter({"sent": 2})


def test_concurrent_relays_never_send_a_row_twice(pg_db, smtp_server):
    _queue(pg_db, 300)
    settings = _settings(pg_db, smtp_server)
    threads = [
        threading.Thread(
            target=drain,
            args=(pg_db, settings),
            kwargs={"worker": f"w{i}", "chunk": 20, "clock": REAL_TIME},
        )
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = Counter(msg.message["Message-ID"] for msg in smtp_server.messages)
    assert len(ids) == 300 and max(ids.values()) == 1
    assert _statuses(pg_db) == Counter({"sent": 300})


def _partner_mail(name: str, key: str) -> dict:
    return {"kind": "partner_orientation", "key": key, "to_address": "contact@example.org",
            "context": {"recipient_name": "Camille Martin", "preferences_url": f"{BASE}/preferences",
                        "partner_name": name, "reference": "SAL-ABCDEF", "territory": "Convergence Paris",
                        "action_url": f"{BASE}/partenaire/reponse/jeton", "expires_on": REAL_TIME.today()},
            "mode": "immediate"}  # fmt: skip


def test_a_partner_named_after_its_field_is_mailed_without_any_registry(db, smtp_server):
    """ "Addictions France" is accepted because the partner table says so, read per batch by
    the outbox and by the relay (no process-wide list to fill first); a lookalike is not."""
    import pytest

    from notifications.fields import ContextError

    with unit_of_work(db) as s:
        s.add(
            m.Partner(
                code="addictions-france", name="Addictions France", domain="sante", national=True
            )
        )
        s.flush()
        assert enqueue_many(s, [_partner_mail("Addictions France", "p:1")], base_url=BASE,
                            now=REAL_TIME.now()) == 1  # fmt: skip
    with pytest.raises(ContextError, match="sensitive"), unit_of_work(db) as s:
        enqueue_many(
            s, [_partner_mail("Addictions Paris", "p:2")], base_url=BASE, now=REAL_TIME.now()
        )
    report = drain(db, _settings(db, smtp_server), clock=REAL_TIME)
    assert report.sent == 1 and report.parked == 0
    assert "Addictions France" in smtp_server.messages[0].message.get_body(("plain",)).get_content()
