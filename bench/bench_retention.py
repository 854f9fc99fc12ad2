"""The retention run at scale 50 with 30 % of the people past the limit: time and peak memory.

Usage: python bench/bench_retention.py [--scale 50] [--quick] [--db sqlite|postgres]
Writes bench/results/retention.json.

Why this shape (issue #14): the daily ``retention`` flow must stay within minutes on the
biggest network we simulate. The bench seeds the network at scale S on a fixed day D0 and
routes it (every contact is then D0), then gives 70 % of the people a later contact (their
file's creation a year later) so that exactly the other 30 % fall due 24 months after D0.
Each step runs in a fresh process (its own peak RSS):

1. ``dry_run`` on the notice day (due − 30 days): what would happen, nothing written;
2. ``notices`` on the notice day: the files announced, one notice per CIP/ESP;
3. ``snapshots``: the final indicator snapshots of the closed years those files touch — what
   the first run on a database without them writes before anonymising anything (measured
   apart: written once per year, not per run);
4. ``anonymise`` on the due day: the announced files anonymised in batches (one transaction
   each), the logs purged.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from common import create_pg_database, drop_pg_database, run_measured, write

D0 = date(2025, 3, 3)  # the seeded network's day: every contact happens on it
DUE = date(2027, 3, 3)  # 24 months later: the 30 % fall due
NOTICE_DAY = DUE - timedelta(days=30)

BUILD = """
from engine.domain.clock import Clock
from engine.intake.run import run_intake
from engine.network.seed import seed_network
from engine.store.db import Database
from engine.store.migrate import upgrade
from engine.store.settings import Settings
from datetime import date
from sqlalchemy import text
upgrade(URL)
db = Database(URL)
clock = Clock.on_day(date.fromisoformat(D0))
s = seed_network(db, scale=SCALE, seed=42, clock=clock)
run_intake(db, Settings(database_url=URL), clock=clock)
# 70 % of the people had a later contact: their file's creation a year after D0.
with db.engine.begin() as conn:
    later = conn.execute(
        text("UPDATE salarie SET created_at = :at WHERE id % 10 >= 3"),
        {"at": f"{int(D0[:4]) + 1}{D0[4:]} 09:00:00+00:00"},
    ).rowcount
    conn.exec_driver_sql("ANALYZE")
result = {"people": sum(s.people.values()), "freins": sum(s.freins_by_domain.values()),
          "later_contact": later}
"""

SNAPSHOTS = """
from datetime import date
from engine.domain.clock import Clock
from engine.reporting.report import ensure_final_snapshots
from engine.retention.run import plan_retention
from engine.store.db import Database
from engine.store.settings import Settings
db = Database(URL)
clock = Clock.on_day(date.fromisoformat(DAY))
plan = plan_retention(db, Settings(database_url=URL), clock=clock)
years = sorted(plan.touched_years)
done = ensure_final_snapshots(db, years, clock=clock)
result = {"years": years, **done}
"""

RUN = """
from datetime import date
from engine.domain.clock import Clock
from engine.retention.run import run_retention
from engine.store.db import Database
from engine.store.settings import Settings
db = Database(URL)
r = run_retention(db, Settings(database_url=URL), clock=Clock.on_day(date.fromisoformat(DAY)),
                  dry_run=DRY)
result = r.as_dict()
"""


def _step(code: str, url: str, **values: Any) -> dict[str, Any]:
    head = f"URL = {url!r}\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items())
    return run_measured(head + code, timeout=7200)


def measure(kind: str, scale: float, tmp: Path) -> dict[str, Any]:
    name = f"aiguillage_bench_retention_{os.getpid()}"
    url = f"sqlite:///{tmp / 'retention.db'}" if kind == "sqlite" else create_pg_database(name)
    try:
        out: dict[str, Any] = {"scale": scale, "d0": D0.isoformat(), "notice_day":
                               NOTICE_DAY.isoformat(), "due_day": DUE.isoformat()}  # fmt: skip
        t0 = time.perf_counter()
        out["build"] = _step(BUILD, url, D0=D0.isoformat(), SCALE=scale)
        print(f"[{kind}] built: {json.dumps(out['build'])}", flush=True)
        for label, day, dry in (("dry_run", NOTICE_DAY, True), ("notices", NOTICE_DAY, False),
                                ("snapshots", DUE, None), ("anonymise", DUE, False)):  # fmt: skip
            if dry is None:
                out[label] = _step(SNAPSHOTS, url, DAY=day.isoformat())
                print(f"[{kind}] {label}: {json.dumps(out[label])}", flush=True)
                continue
            out[label] = _step(RUN, url, DAY=day.isoformat(), DRY=dry)
            brief = {k: out[label].get(k) for k in ("notices", "noticed", "held", "anonymised",
                                                    "batches", "wall_s", "peak_rss_mb")}  # fmt: skip
            print(f"[{kind}] {label}: {json.dumps(brief)}", flush=True)
        people = out["build"]["people"]
        out["anonymised_share"] = round(out["anonymise"]["anonymised"] / people, 4)
        out["total_s"] = round(time.perf_counter() - t0, 1)
        return out
    finally:
        if kind == "postgres":
            drop_pg_database(name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=50)
    ap.add_argument("--quick", action="store_true", help="scale 1")
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="sqlite")
    args = ap.parse_args()
    scale = 1.0 if args.quick else args.scale
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="aiguillage-bench-retention-") as tmp:
        for kind in kinds:
            results[kind] = measure(kind, scale, Path(tmp))
    path = write(
        "retention",
        {
            "what": "retention at scale S with 30 % of people past the limit (bench docstring)",
            "databases": results,
        },
    )
    print(f"written {path}")


if __name__ == "__main__":
    main()
