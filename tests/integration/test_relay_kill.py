"""Kill test: relay processes SIGKILLed at random moments lose nothing and duplicate little.

Why: the outbox promises that a crash can neither lose a message nor send it more than once
per crash. Only a real process killed mid-chunk — between the server's acceptance and the
row's acknowledgement, inside a claim transaction, half-way through DATA — tests that
promise. 1,000 messages are queued, relay workers (``python -m engine.outbox.worker``) are
started one after the other and killed after a seeded random delay, and a last worker
finishes once the dead workers' leases have expired. The real aiosmtpd server on loopback
is the witness: every Message-ID arrived, duplicates are at most one per kill, and every
outbox row ends ``sent``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from email import policy
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.domain.clock import Clock, as_utc, utcnow
from engine.outbox.enqueue import enqueue_many
from engine.outbox.relay import drain
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings
from notifications.render import message_id_for
from tests.support.smtp_server import SmtpTestServer

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://aiguillage.test"
MESSAGES = 1_000
LEASE_S = 1.0
CHUNK = 10
MAX_KILLS = 10
STOP_KILLING_BELOW = 80  # stop killing when this few rows are left: the last worker finishes
SEED = 20_250_115

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# The relay is real I/O against a real SMTP server and real worker processes: leases and
# backoff elapse in real time, so these tests use the system clock on purpose.
REAL_TIME = Clock.system()


def _queue(db: Database, n: int = MESSAGES) -> list[str]:
    keys = [f"kill:{i}" for i in range(n)]
    context = {"recipient_name": "Camille Martin", "preferences_url": f"{BASE}/preferences",
               "reference": "SAL-ABCDEF", "territory": "Convergence Paris"}  # fmt: skip
    with unit_of_work(db) as s:
        enqueue_many(
            s,
            [
                {"kind": "slot_validated", "key": key, "to_address": f"user{i}@example.org",
                 "context": {**context, "url": f"{BASE}/orientations/{i}"}, "mode": "immediate"}
                for i, key in enumerate(keys)
            ],
            base_url=BASE, now=REAL_TIME.now(),
        )  # fmt: skip
    assert _statuses(db) == Counter({"pending": n})
    return keys


def _statuses(db: Database) -> Counter[str]:
    with db.sessions() as s:
        O = m.OutboxMessage
        return Counter(dict(s.execute(select(O.status, func.count()).group_by(O.status)).all()))


def _latest_lease(db: Database) -> datetime | None:
    """When the last lease held on a still-pending row runs out (None if none is held)."""
    with db.sessions() as s:
        O = m.OutboxMessage
        latest = s.scalar(select(func.max(O.lease_until)).where(O.status == "pending"))
    return as_utc(latest) if latest is not None else None


def _message_ids(server: SmtpTestServer) -> Counter[str]:
    parser = BytesHeaderParser(policy=policy.compat32)
    return Counter(
        str(parser.parsebytes(msg.data)["Message-ID"]).strip() for msg in server.messages
    )


class Worker:
    """One ``python -m engine.outbox.worker`` process, started and awaited until ready."""

    def __init__(self, db: Database, server: SmtpTestServer, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIGUILLAGE_")}
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.outbox.worker", "--database-url", db.url,
             "--smtp-port", str(server.port), "--smtp-host", "127.0.0.1", "--base-url", BASE,
             "--lease-s", str(LEASE_S), "--chunk", str(CHUNK)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.log,
        )  # fmt: skip
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        assert first == b"ready\n", f"worker did not start: {first!r}, see {log}"

    def kill_if_running(self) -> bool:
        """SIGKILL the worker; True if it was still running (a real kill)."""
        running = self.proc.poll() is None
        if running:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._close()
        return running

    def finish(self) -> int:
        self.proc.wait(60)
        self._close()
        return self.proc.returncode

    def _close(self) -> None:
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.log.close()


def test_relay_killed_at_random_moments_loses_nothing(db, smtp_server, tmp_path):
    keys = _queue(db)
    log = tmp_path / "workers.log"
    rng = random.Random(SEED)

    kills = 0
    while kills < MAX_KILLS and _statuses(db)["pending"] > STOP_KILLING_BELOW:
        worker = Worker(db, smtp_server, log)
        time.sleep(rng.uniform(0.05, 0.6))
        kills += worker.kill_if_running()
    assert kills >= 3, f"only {kills} workers were killed mid-run: the test tested too little"

    # Rows claimed by the last dead workers stay leased until their lease runs out.
    latest = _latest_lease(db)
    if latest is not None and latest > utcnow():
        time.sleep((latest - utcnow()).total_seconds() + 0.1)
    assert Worker(db, smtp_server, log).finish() == 0, log.read_text(errors="replace")

    assert _statuses(db) == Counter({"sent": MESSAGES})
    received = _message_ids(smtp_server)
    domain = Settings.model_fields["mail_from"].default.rsplit("@", 1)[-1].rstrip(">")
    assert set(received) == {message_id_for(key, domain) for key in keys}
    duplicates = sum(received.values()) - len(received)
    assert duplicates <= kills, f"{duplicates} duplicates for {kills} kills"
    # The dead workers' unfinished rows were taken again after their lease expired.
    with db.sessions() as s:
        assert s.scalar(select(func.count()).where(m.OutboxMessage.attempts >= 2)) > 0


def test_relay_stops_sending_once_its_lease_has_run_out(db, smtp_server):
    """A relay slower than its lease must not go on sending rows another relay may now own."""
    keys = _queue(db, 3)
    settings = Settings(database_url=db.url, smtp_host="127.0.0.1", smtp_port=smtp_server.port,
                        base_url=BASE, smtp_timeout_s=5.0)  # fmt: skip
    smtp_server.stall_seconds = 1.0
    smtp_server.set_mode("stall")  # each message is accepted after a second
    report = drain(db, settings, worker="slow", chunk=3, lease_s=0.3, max_chunks=1, clock=REAL_TIME)
    assert (report.claimed, report.sent) == (3, 1)  # the first send outlived the lease
    assert _statuses(db) == Counter({"sent": 1, "pending": 2})
    smtp_server.set_mode("ok")
    assert drain(db, settings, worker="next", lease_s=60, clock=REAL_TIME).sent == 2
    domain = Settings.model_fields["mail_from"].default.rsplit("@", 1)[-1].rstrip(">")
    assert _message_ids(smtp_server) == Counter({message_id_for(key, domain): 1 for key in keys})
