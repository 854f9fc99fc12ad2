"""Login under attack: 8 concurrent clients sending bad passwords, and what a real user feels.

Why: argon2 costs tens of milliseconds of CPU per check. Run on the event loop, 8 anonymous
login clients stalled every other request (a static file waited 6 s). With the check in a
thread pool the loop keeps serving. Measured in one run, on one uvicorn worker:

- baseline: latency of a static file (``/static/style.css``) and of the login page with no
  login load;
- attack: the same latencies while 8 clients post wrong passwords as fast as they can, each
  from rotating loopback addresses (127.0.1.x) so that the per-IP limit does not turn them
  into cheap 429s — the worst case for the CPU; login attempts per second are reported.

Usage: .venv/bin/python bench/bench_login.py [--seconds 20] [--quick]  -> bench/results/login.json
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench_web import free_port, start_server, stop_server
from common import write

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.access.auth import create_user  # noqa: E402
from engine.domain.clock import Clock  # noqa: E402
from engine.store import models as m  # noqa: E402
from engine.store.db import Database, unit_of_work  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ATTACKERS = 8


def _prepare(url: str) -> None:
    upgrade(url)
    db = Database(url)
    with unit_of_work(db) as s:
        s.add(m.Territory(code="paris", name="Convergence Paris", kind="convergence"))
    create_user(db, email="agent@example.org", display_name="Agent", role="officer",
                password="un-mot-de-passe-solide", territory_code="paris", domain="logement",
                clock=Clock.system())  # fmt: skip
    db.dispose()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1) if ms else None,
            "p95_ms": round(_pct(ms, 0.95), 1), "max_ms": round(max(ms), 1) if ms else None}  # fmt: skip


async def _probe(base: str, path: str, stop: float, out: list[float]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            r = await c.get(path)
            r.raise_for_status()
            out.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.05)


async def _attacker(base: str, n: int, stop: float, counts: dict[int, int]) -> None:
    i = 0
    while time.monotonic() < stop:
        ip = f"127.0.{1 + n}.{1 + i % 250}"
        transport = httpx.AsyncHTTPTransport(local_address=ip)
        async with httpx.AsyncClient(base_url=base, timeout=60, transport=transport) as c:
            page = await c.get("/connexion")
            token = CSRF.search(page.text)
            assert token
            for _ in range(3):  # 3 tries per address: well under every limit
                if time.monotonic() >= stop:
                    break
                r = await c.post("/connexion", data={"csrf_token": token.group(1),
                                                     "email": f"inconnu{i}@example.org",
                                                     "password": "mauvais"})  # fmt: skip
                counts[r.status_code] = counts.get(r.status_code, 0) + 1
        i += 1


async def _phase(base: str, seconds: float, attack: bool) -> dict[str, object]:
    stop = time.monotonic() + seconds
    static: list[float] = []
    page: list[float] = []
    counts: dict[int, int] = {}
    tasks = [
        _probe(base, "/static/style.css", stop, static),
        _probe(base, "/connexion", stop, page),
    ]
    if attack:
        tasks += [_attacker(base, n, stop, counts) for n in range(ATTACKERS)]
    t0 = time.perf_counter()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    out: dict[str, object] = {"static_file": _summary(static), "login_page": _summary(page)}
    if attack:
        out["login_attempts"] = counts
        out["login_attempts_per_s"] = round(sum(counts.values()) / wall, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    seconds = 4 if args.quick else args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'login.db'}"
        _prepare(url)
        port = free_port()
        proc = start_server(url, port, 1, Path(tmp) / "uvicorn.log")
        base = f"http://127.0.0.1:{port}"
        try:
            baseline = asyncio.run(_phase(base, seconds, attack=False))
            attack = asyncio.run(_phase(base, seconds, attack=True))
        finally:
            stop_server(proc)
    b, a = baseline["static_file"], attack["static_file"]
    ratio = round(a["p95_ms"] / b["p95_ms"], 2) if b["p95_ms"] else None  # type: ignore[index,operator]
    result = {"seconds_per_phase": seconds, "workers": 1, "attackers": ATTACKERS,
              "baseline": baseline, "under_attack": attack,
              "static_p95_ratio_attack_vs_baseline": ratio}  # fmt: skip
    path = write("login", result)
    print(
        f"login: {attack.get('login_attempts_per_s')} bad logins/s; static file p95 "
        f"{b['p95_ms']} ms → {a['p95_ms']} ms under attack (× {ratio}); {path}"
    )  # type: ignore[index]
    return 0


if __name__ == "__main__":
    sys.exit(main())
