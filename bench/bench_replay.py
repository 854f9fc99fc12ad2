"""The year replay: ``now``, ``hold`` and greedy first-come against the hindsight optimum.

Why: the ``hold`` policy (``matching/replay.py``) must serve at least 98 % of the priority the
hindsight optimum serves on a year of the scale-1 simulated network, where giving every free
unit at once (``now``, today's behaviour) and first come, first served (the greedy baseline)
are measured in the same run on the same year. The year is built like ``make demo``'s: the
network seeded on 1 January 2024 with its entrants held back, then ``simulate_year`` 2024
(SQLite, in a temporary folder); ``--db URL`` reuses a database that already holds it.

For each seed of the units' arrival days (``--seeds``, the replay's only random input besides
the scenarios), and for evenly spread units: the four outcomes, their ratio to the hindsight
optimum, people served, waits, solves and time, and the ratio per pool. For the first seed,
two ablations of ``hold`` say where its gain comes from: without forecast arrivals (only who
waits and the units to come) and without holding at all (``max_hold_days=0``).

Usage: .venv/bin/python bench/bench_replay.py [--quick] [--db URL] [--seeds 42 1 7]
       -> bench/results/replay.json
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import write  # noqa: E402

from engine.allocation.replay import load_year  # noqa: E402
from engine.domain.clock import Clock  # noqa: E402
from engine.network.seed import seed_network  # noqa: E402
from engine.network.simulate import simulate_year  # noqa: E402
from engine.store.db import Database  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.settings import Settings  # noqa: E402
from matching.replay import HoldParams, ReplayOutcome, ReplayYear, hindsight, ratio, replay  # noqa: E402

YEAR = 2024
TARGET = 0.98


def build(url: str, scale: float, seed: int) -> dict[str, float]:
    """Seed the network on 1 January (entrants held back) and simulate the year."""
    upgrade(url)
    db = Database(url)
    t0 = time.perf_counter()
    seed_network(db, scale=scale, seed=seed, clock=Clock.on_day(date(YEAR, 1, 1), running=False),
                 entrants=True)  # fmt: skip
    t1 = time.perf_counter()
    simulate_year(db, Settings(database_url=url), year=YEAR, seed=seed,
                  clock=Clock.on_day(date(YEAR, 12, 31), hour=20, running=False))  # fmt: skip
    t2 = time.perf_counter()
    db.dispose()
    return {"seed_s": round(t1 - t0, 1), "simulate_s": round(t2 - t1, 1)}


def per_pool(year: ReplayYear, out: ReplayOutcome, best: ReplayOutcome) -> dict[str, Any]:
    rows = {}
    for p in year.pools:
        got = sum(s.priority for s in out.services if s.pool == p.id)
        top = sum(s.priority for s in best.services if s.pool == p.id)
        rows[p.id] = round(got / top, 4) if top else None
    return rows


def summary(out: ReplayOutcome, best: ReplayOutcome, year: ReplayYear) -> dict[str, Any]:
    r = ratio(out, best)
    return {
        **out.as_dict(),
        "ratio_to_hindsight": None if r is None else round(r, 4),
        "ratio_by_pool": per_pool(year, out, best),
    }


def one_year(year: ReplayYear, params: HoldParams, ablations: bool) -> dict[str, Any]:
    best = hindsight(year)
    result: dict[str, Any] = {
        "people": len(year.arrivals),
        "units": len(year.units),
        "pools": {p.id: sum(1 for u in year.units if u.pool == p.id) for p in year.pools},
        "hindsight": best.as_dict(),
    }
    for policy in ("now", "greedy", "hold"):
        out = replay(year, policy, params)
        result[policy] = summary(out, best, year)
        print(f"  {policy}: {result[policy]['ratio_to_hindsight']} "
              f"({out.time_s:.1f} s, {out.solves} solves)", flush=True)  # fmt: skip
    if ablations:
        for name, variant in (
            ("hold_without_arrival_forecast", replace(params, history_days=0, min_history_days=1)),
            ("hold_without_holding", replace(params, max_hold_days=0)),
        ):
            out = replay(year, "hold", variant)
            result[name] = summary(out, best, year)
            print(f"  {name}: {result[name]['ratio_to_hindsight']}", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="scale 0.1, one seed, 4 scenarios")
    ap.add_argument("--db", help="a database that already holds the simulated year")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, nargs="*", default=[42, 1, 7])
    args = ap.parse_args()
    scale = 0.1 if args.quick else args.scale
    seeds = args.seeds[:1] if args.quick else args.seeds
    params = HoldParams(scenarios=4) if args.quick else HoldParams()
    tmp = Path(tempfile.mkdtemp(prefix="aiguillage-bench-replay-"))
    try:
        built: dict[str, float] = {}
        url = args.db
        if url is None:
            url = f"sqlite:///{tmp / 'replay.db'}"
            print(f"[replay] seeding and simulating {YEAR} at scale {scale}", flush=True)
            built = build(url, scale, 42)
        db = Database(url)
        runs = []
        for seed in seeds:
            for spread in ("random",) + (("even",) if seed == seeds[0] else ()):
                data = load_year(db, year=YEAR, seed=seed, units=spread)
                print(f"[replay] units {spread}, seed {seed}: {len(data.year.arrivals)} people, "
                      f"{len(data.year.units)} units", flush=True)  # fmt: skip
                run = one_year(data.year, params, ablations=seed == seeds[0] and spread == "random")
                runs.append({"units_seed": seed, "units": spread, **run})
        db.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    holds = [r["hold"]["ratio_to_hindsight"] for r in runs]
    nows = [r["now"]["ratio_to_hindsight"] for r in runs]
    greedy = [r["greedy"]["ratio_to_hindsight"] for r in runs]
    write(
        "replay",
        {
            "year": YEAR,
            "scale": scale,
            "quick": args.quick,
            "database": "given" if args.db else "built",
            "build": built,
            "params": params.__dict__,
            "target_hold_ratio": TARGET,
            "target_met": all(h is not None and h >= TARGET for h in holds),
            "headline": {
                "hold_ratio_min": min(holds),
                "now_ratio_min": min(nows),
                "now_ratio_max": max(nows),
                "greedy_ratio_max": max(greedy),
            },
            "runs": runs,
        },
    )
    print(f"[replay] hold {holds} now {nows} greedy {greedy}")


if __name__ == "__main__":
    main()
