"""Benchmark of the stable mechanism (matching.stable) against the optimal one (solve).

Why: the issue asks for the efficiency cost of stability, side by side: each run's weight
(grid points) and people served under deferred acceptance and under the optimum, and how
unstable the optimum is (its blocking pairs). Each instance runs in a fresh subprocess so
peak RSS is the instance's own.

Usage: .venv/bin/python bench/bench_stable.py [--quick]  -> bench/results/stable.json

Instances: bench_allocation's generator (14 territories, national and territorial pools,
published points grid, lexicographic weights). Preferences: "any" (everyone accepts every
eligible pool, ordered by weight), or "stated": half of the candidates state a random order
over a random non-empty subset of their eligible pools, the others say "any". The optimum
uses the stated preferences as eligibility (``restrict_to_preferences``). ``households``:
bench_allocation's shelter instance (3,000 candidates, 58 pools, households of 1–5 needing
that many places), where a stable matching may not exist.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_allocation import CASES, make_household_instance, make_instance  # noqa: E402
from common import write  # noqa: E402

from matching.allocation import AllocationProblem, solve  # noqa: E402
from matching.stable import (  # noqa: E402
    blocking_pairs,
    restrict_to_preferences,
    stable_allocation,
)


def stated_preferences(problem: AllocationProblem, seed: int = 11) -> dict[str, list[str]]:
    """Half of the candidates rank a random non-empty subset of their eligible pools."""
    t = problem.option_table
    assert t is not None
    rng = np.random.default_rng(seed)
    order = np.argsort(t.candidate_index, kind="stable")
    c_sorted, p_sorted = t.candidate_index[order], t.pool_index[order]
    starts = np.searchsorted(c_sorted, np.arange(len(problem.candidates) + 1))
    prefs: dict[str, list[str]] = {}
    for ci in np.flatnonzero(rng.random(len(problem.candidates)) < 0.5).tolist():
        pools = p_sorted[starts[ci] : starts[ci + 1]]
        if len(pools) == 0:
            continue
        keep = rng.permutation(pools)[: int(rng.integers(1, len(pools) + 1))]
        prefs[problem.candidates[ci].id] = [problem.pools[int(pi)].id for pi in keep]
    return prefs


def run_case(name: str, prefs_mode: str, alpha: float) -> dict:
    t0 = time.perf_counter()
    if name == "households":
        problem = make_household_instance(alpha, time_limit_s=20.0)
    else:
        problem = make_instance(CASES[name], alpha=alpha)
    prefs = stated_preferences(problem) if prefs_mode == "stated" else None
    gen_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    stable = stable_allocation(problem, prefs)
    stable_s = time.perf_counter() - t1

    t2 = time.perf_counter()
    restricted = restrict_to_preferences(problem, prefs)
    restrict_s = time.perf_counter() - t2
    t3 = time.perf_counter()
    optimal = solve(restricted)
    optimal_s = time.perf_counter() - t3

    t4 = time.perf_counter()
    blocking_optimal = blocking_pairs(problem, prefs, optimal.assignments)
    blocking_s = time.perf_counter() - t4
    blocking_stable = blocking_pairs(problem, prefs, stable.assignments)

    points = {c.id: c.priority for c in problem.candidates}
    table = problem.option_table
    assert table is not None
    return {
        "case": name,
        "preferences": prefs_mode,
        "alpha": alpha,
        "candidates": len(problem.candidates),
        "pools": len(problem.pools),
        "units": sum(p.capacity for p in problem.pools),
        "options": int(len(table.weight)),
        "stated_preferences": len(prefs or {}),
        "generate_s": round(gen_s, 3),
        "stable_s": round(stable_s, 3),
        "stable_rounds": stable.rounds,
        "stable_weight": stable.weight,
        "stable_served": stable.served,
        "stable_points_served": sum(points[c] for c, _ in stable.assignments),
        "stable_blocking_pairs": len(blocking_stable),
        "restrict_s": round(restrict_s, 3),
        "optimal_s": round(optimal_s, 3),
        "optimal_status": optimal.status,
        "optimal_solver": optimal.solver,
        "optimal_weight": optimal.objective,
        "optimal_served": len(optimal.assignments),
        "optimal_points_served": sum(points[c] for c, _ in optimal.assignments),
        "optimal_blocking_pairs": len(blocking_optimal),
        "optimal_blocking_candidates": len({c for c, _ in blocking_optimal}),
        "blocking_pairs_s": round(blocking_s, 3),
        "weight_ratio": round(stable.weight / optimal.objective, 5) if optimal.objective else None,
        "served_ratio": (
            round(stable.served / len(optimal.assignments), 5) if optimal.assignments else None
        ),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def in_subprocess(name: str, prefs_mode: str, alpha: float) -> dict:
    cmd = [sys.executable, __file__, "--case", name, "--prefs", prefs_mode, "--alpha", str(alpha)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--case")
    parser.add_argument("--prefs", default="any", choices=["any", "stated"])
    parser.add_argument("--alpha", type=float, default=0.0)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.prefs, args.alpha)))
        return
    sizes = ["quick"] if args.quick else ["5k", "50k"]
    plan = [
        (size, prefs, alpha)
        for size in sizes
        for prefs, alpha in (("any", 0.0), ("stated", 0.0), ("stated", 0.8))
    ]
    if not args.quick:
        plan.append(("households", "stated", 0.8))
    results = []
    for name, prefs_mode, alpha in plan:
        res = in_subprocess(name, prefs_mode, alpha)
        print(json.dumps(res), flush=True)
        results.append(res)
    path = write("stable", {"quick": args.quick, "results": results})
    print(f"written {path}")


if __name__ == "__main__":
    main()
