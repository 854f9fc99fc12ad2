"""Reporting at scale: the reporting flow's snapshots over ≈1M referrals, and the Impact page
served from them.

Why: the pages read snapshots so that a year of a million referrals is not recomputed on each
request; this measures what the daily flow costs (time, peak memory) and what a page costs
once it is written. The network is seeded and routed at ``--scale`` (50: 278,650 people,
1,000,296 referrals); a simulated year at that scale would take hours, so the figures are
those of a routed network (every referral counted, few pathway facts).

Usage: python bench/bench_reporting.py [--scale 50] [--requests 60] [--quick]
Writes bench/results/reporting.json.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from common import ROUTE_STEP, SEED_STEP, run_measured, write

SNAPSHOTS = """
from engine.store.db import Database
from engine.domain.clock import Clock
from engine.reporting.report import write_snapshots
clock = Clock.system()
r = write_snapshots(Database(URL), year=clock.today().year, clock=clock)
result = dict(r)
"""

PAGES = """
import statistics, time
from fastapi.testclient import TestClient
from engine.domain.clock import Clock
from engine.store.db import Database
from engine.store.settings import Settings
from engine.network.seed import DEMO_PASSWORD, MAIL_DOMAIN
from tests.web.world import login
from web.app import create_app
settings = Settings(database_url=URL, secret_key="x" * 40)
app = create_app(settings, Database(URL), Clock.system())
year = Clock.system().today().year
result = {}
for who, path in (("admin", f"/impact?annee={year}"),
                  ("coordination.paris.1", f"/impact?annee={year}"),
                  ("admin", f"/pilotage?annee={year}")):
    client = TestClient(app)
    login(client, f"{who}@{MAIL_DOMAIN}", DEMO_PASSWORD)
    assert client.get(path).status_code == 200
    times = []
    for _ in range(N):
        t0 = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200
    times.sort()
    result[f"{who} {path.split('?')[0]}"] = {
        "requests": N, "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(0.95 * (N - 1))], 1), "max_ms": round(times[-1], 1)}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=50)
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    scale = 1.0 if args.quick else args.scale
    n = 10 if args.quick else args.requests
    tmp = Path(tempfile.mkdtemp(prefix="aiguillage-bench-"))
    try:
        url = f"sqlite:///{tmp / 'reporting.db'}"
        out = {"scale": scale}
        out["seed"] = run_measured(f"URL={url!r}; SCALE={scale}\n" + SEED_STEP, timeout=3600)
        out["route"] = run_measured(f"URL={url!r}\n" + ROUTE_STEP, timeout=3600)
        out["snapshots"] = run_measured(f"URL={url!r}\n" + SNAPSHOTS, timeout=7200)
        out["pages_from_snapshots"] = run_measured(f"URL={url!r}; N={n}\n" + PAGES, timeout=3600)
        path = write("reporting", out)
        print(path.read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
