"""Benchmark: SmtpSender against a bare aiosmtplib loop, one connection each.

Why: SmtpSender adds outcome classification and reconnection around every send;
this measures what that costs (target: at most 1.5× the bare loop's time) on
10,000 small messages sent to a local aiosmtpd that runs in its own process so
the server does not compete with the client for the GIL. Also reports how fast
messages are rendered and built. Writes bench/results/smtp.json.

Run: .venv/bin/python bench/bench_smtp.py [--messages 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiosmtplib  # noqa: E402

from notifications.render import build_email, message_id_for, render  # noqa: E402
from notifications.samples import sample_context  # noqa: E402
from notifications.smtp import SmtpConfig, SmtpSender  # noqa: E402

HOST = "127.0.0.1"


from common import serve_counting_smtp as _serve  # noqa: E402


def build_messages(n: int) -> tuple[list[EmailMessage], float]:
    """Render and build ``n`` messages; return them and the seconds it took."""
    ctx = sample_context("new_referrals")
    started = time.perf_counter()
    messages = [
        build_email(
            render("new_referrals", {**ctx, "count": 1 + i % 9}),
            to=f"charge{i % 50}@convergence.test",
            from_="Aiguillage <ne-pas-repondre@aiguillage.test>",
            message_id=message_id_for(f"bench:{i}", "aiguillage.test"),
        )
        for i in range(n)
    ]
    return messages, time.perf_counter() - started


async def bare_loop(port: int, messages: list[EmailMessage]) -> None:
    async with aiosmtplib.SMTP(hostname=HOST, port=port, start_tls=False, timeout=30) as smtp:
        for msg in messages:
            await smtp.send_message(msg)


async def sender_loop(port: int, messages: list[EmailMessage]) -> None:
    async with SmtpSender(SmtpConfig(HOST, port, timeout=30)) as sender:
        for msg in messages:
            outcome = await sender.send(msg)
            if not outcome.sent:
                raise RuntimeError(outcome)


VARIANTS = {"bare_aiosmtplib": bare_loop, "smtp_sender": sender_loop}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "smtp.json"))
    args = parser.parse_args()

    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        port = int(s.getsockname()[1])
    received, ready, stop = mp.Value("l", 0), mp.Event(), mp.Event()
    server = mp.Process(target=_serve, args=(port, received, ready, stop), daemon=True)
    server.start()
    try:
        if not ready.wait(10):
            raise RuntimeError("bench SMTP server did not start")
        messages, build_seconds = build_messages(args.messages)
        gc.collect()
        gc.freeze()  # keep the 10k prebuilt messages out of the timed GC passes
        asyncio.run(bare_loop(port, messages[:200]))  # warm-up
        timings: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.rounds):
            for name, variant in VARIANTS.items():
                before = received.value
                started = time.perf_counter()
                asyncio.run(variant(port, messages))
                timings[name].append(time.perf_counter() - started)
                if received.value - before != len(messages):
                    raise RuntimeError(f"{name}: server got {received.value - before} messages")
    finally:
        stop.set()
        server.join(10)

    def summary(seconds: list[float]) -> dict[str, float]:
        best = min(seconds)
        return {
            "best_seconds": round(best, 3),
            "median_seconds": round(statistics.median(seconds), 3),
            "messages_per_second": round(args.messages / best, 1),
        }

    def paired(name: str) -> float:
        ratios = [v / b for v, b in zip(timings[name], timings["bare_aiosmtplib"], strict=True)]
        return round(statistics.median(ratios), 3)

    results = {name: summary(t) for name, t in timings.items()}
    bare = min(timings["bare_aiosmtplib"])
    report = {
        "benchmark": "smtp",
        "messages": args.messages,
        "rounds": args.rounds,
        "message_bytes": len(messages[0].as_bytes()),
        "python": platform.python_version(),
        "aiosmtplib": aiosmtplib.__version__,
        "render_and_build": {
            "seconds": round(build_seconds, 3),
            "messages_per_second": round(args.messages / build_seconds, 1),
        },
        "variants": results,
        # Time ratios (lower is better). "paired" compares the variants within each
        # round (run back to back), which resists load from other processes.
        "ratio_smtp_sender_vs_bare": round(min(timings["smtp_sender"]) / bare, 3),
        "ratio_smtp_sender_vs_bare_paired_median": paired("smtp_sender"),
        "target_ratio_max": 1.5,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }
    report["meets_target"] = report["ratio_smtp_sender_vs_bare_paired_median"] <= 1.5
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
