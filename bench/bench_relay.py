"""Benchmark: the outbox relay end to end against a bare aiosmtplib loop.

Why: the relay claims rows, renders each template, builds the email, sends it and marks the
row sent before the next one goes out — the price of "never lose, never duplicate". This
measures what that price is against the floor: a bare aiosmtplib loop sending the same,
pre-built messages over one connection (target: relay time at most 1.5× the bare loop's).
The SMTP server (aiosmtpd, counting and discarding) runs in its own process so it does not
compete with the client for the GIL; the outbox is a fresh, migrated SQLite database.
Writes bench/results/relay.json.

Run: .venv/bin/python bench/bench_relay.py [--quick] [--messages N] [--rounds R] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import multiprocessing as mp
import os
import platform
import pstats
import socket
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiosmtplib  # noqa: E402
from sqlalchemy import func, select, update  # noqa: E402

from engine.domain.clock import Clock  # noqa: E402
from engine.outbox.enqueue import enqueue_many  # noqa: E402
from engine.outbox.relay import drain  # noqa: E402
from engine.store import models as m  # noqa: E402
from engine.store.db import Database, unit_of_work  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.settings import Settings  # noqa: E402
from notifications.render import build_email, message_id_for, render  # noqa: E402

HOST = "127.0.0.1"
BASE = "http://aiguillage.test"
KIND = "slot_validated"

# The relay is real I/O against a real SMTP server and real worker processes: leases and
# backoff elapse in real time, so these tests use the system clock on purpose.
REAL_TIME = Clock.system()


from common import serve_counting_smtp as _serve  # noqa: E402


def contexts(n: int) -> list[dict[str, Any]]:
    """Distinct contexts (one link per message), so no render can be reused across rows."""
    return [
        {
            "recipient_name": "Camille Martin",
            "preferences_url": f"{BASE}/preferences",
            "reference": f"SAL-{i:06d}",
            "territory": "Convergence Paris",
            "url": f"{BASE}/orientations/{i}",
        }
        for i in range(n)
    ]


def queue(db: Database, ctxs: list[dict[str, Any]]) -> None:
    with unit_of_work(db) as s:
        enqueue_many(
            s,
            [
                {
                    "kind": KIND,
                    "key": f"bench:{i}",
                    "to_address": f"user{i % 500}@example.org",
                    "context": ctx,
                    "mode": "immediate",
                }
                for i, ctx in enumerate(ctxs)
            ],
            base_url=BASE,
            now=REAL_TIME.now(),
        )


def requeue(db: Database) -> None:
    """Put every row back to pending, as if just queued (for the next round)."""
    O = m.OutboxMessage
    with db.engine.begin() as conn:
        conn.execute(
            update(O).values(
                status="pending", sent_at=None, lease_until=None, leased_by=None, attempts=0
            )
        )


def count_sent(db: Database) -> int:
    with db.sessions() as s:
        O = m.OutboxMessage
        return int(s.scalar(select(func.count()).where(O.status == "sent")) or 0)


def prebuilt(settings: Settings, ctxs: list[dict[str, Any]]) -> list[EmailMessage]:
    """The same emails the relay sends, built ahead of time for the bare loop."""
    domain = settings.mail_from.rsplit("@", 1)[-1].rstrip(">")
    return [
        build_email(
            render(KIND, ctx, base_url=BASE),
            to=f"user{i % 500}@example.org",
            from_=settings.mail_from,
            message_id=message_id_for(f"bench:{i}", domain),
        )
        for i, ctx in enumerate(ctxs)
    ]


async def bare_loop(port: int, messages: list[EmailMessage]) -> None:
    async with aiosmtplib.SMTP(hostname=HOST, port=port, start_tls=False, timeout=30) as smtp:
        for msg in messages:
            await smtp.send_message(msg)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1,000 messages, one round")
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--chunk", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one drain")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "relay.json"))
    args = parser.parse_args()
    n = args.messages or (1_000 if args.quick else 10_000)
    rounds = args.rounds or (1 if args.quick else 2)

    with socket.socket() as s:
        s.bind((HOST, 0))
        port = int(s.getsockname()[1])
    received, ready, stop = mp.Value("l", 0), mp.Event(), mp.Event()
    server = mp.Process(target=_serve, args=(port, received, ready, stop), daemon=True)
    server.start()
    tmp = tempfile.TemporaryDirectory(prefix="aiguillage-bench-relay-")
    url = f"sqlite:///{tmp.name}/outbox.db"
    upgrade(url)
    db = Database(url)
    settings = Settings(
        database_url=url, smtp_host=HOST, smtp_port=port, base_url=BASE, smtp_timeout_s=30
    )
    try:
        if not ready.wait(10):
            raise RuntimeError("bench SMTP server did not start")
        ctxs = contexts(n)
        queue(db, ctxs)
        started = time.perf_counter()
        messages = prebuilt(settings, ctxs)
        build_seconds = time.perf_counter() - started
        gc.collect()
        gc.freeze()  # keep the prebuilt messages out of the timed GC passes
        asyncio.run(bare_loop(port, messages[:200]))  # warm-up: connection, imports, caches
        timings: dict[str, list[float]] = {"relay_drain": [], "bare_aiosmtplib": []}
        cpu: dict[str, list[float]] = {"relay_drain": [], "bare_aiosmtplib": []}
        for r in range(rounds):
            if r:
                requeue(db)
            before = received.value
            started, cpu_started = time.perf_counter(), time.process_time()
            report = drain(db, settings, worker="bench", chunk=args.chunk, clock=REAL_TIME)
            timings["relay_drain"].append(time.perf_counter() - started)
            cpu["relay_drain"].append(time.process_time() - cpu_started)
            if report.sent != n or received.value - before != n or count_sent(db) != n:
                raise RuntimeError(
                    f"relay: {report.as_dict()}, server got {received.value - before}"
                )
            before = received.value
            started, cpu_started = time.perf_counter(), time.process_time()
            asyncio.run(bare_loop(port, messages))
            timings["bare_aiosmtplib"].append(time.perf_counter() - started)
            cpu["bare_aiosmtplib"].append(time.process_time() - cpu_started)
            if received.value - before != n:
                raise RuntimeError(f"bare loop: server got {received.value - before} messages")
        if args.profile:
            requeue(db)
            profiler = cProfile.Profile()
            profiler.runcall(drain, db, settings, worker="bench", chunk=args.chunk)
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
            print(out.getvalue())
    finally:
        stop.set()
        server.join(10)
        db.dispose()
        tmp.cleanup()

    def summary(name: str) -> dict[str, float]:
        best = min(timings[name])
        return {
            "best_seconds": round(best, 3),
            "median_seconds": round(statistics.median(timings[name]), 3),
            "messages_per_second": round(n / best, 1),
            # CPU of this (client) process only: steadier than wall time on a shared machine.
            "client_cpu_ms_per_message": round(min(cpu[name]) / n * 1000, 3),
        }

    paired = [
        d / b for d, b in zip(timings["relay_drain"], timings["bare_aiosmtplib"], strict=True)
    ]
    result = {
        "benchmark": "relay",
        "messages": n,
        "rounds": rounds,
        "chunk": args.chunk,
        "database": "sqlite (temporary file, WAL)",
        "message_bytes": len(messages[0].as_bytes()),
        "python": platform.python_version(),
        "aiosmtplib": aiosmtplib.__version__,
        "variants": {name: summary(name) for name in timings},
        # What the relay does per message that the bare loop does not: render + build_email.
        "render_and_build_ms_per_message": round(build_seconds / n * 1000, 3),
        # Time ratio relay / bare (lower is better); "paired" compares within each round.
        "ratio_relay_vs_bare": round(
            min(timings["relay_drain"]) / min(timings["bare_aiosmtplib"]), 3
        ),
        "ratio_relay_vs_bare_paired_median": round(statistics.median(paired), 3),
        "ratio_client_cpu_relay_vs_bare": round(
            min(cpu["relay_drain"]) / min(cpu["bare_aiosmtplib"]), 3
        ),
        "target_ratio_max": 1.5,
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }
    result["meets_target"] = result["ratio_relay_vs_bare_paired_median"] <= 1.5
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
