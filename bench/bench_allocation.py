"""Benchmark of the slot allocator (matching.allocation) on synthetic network-like data.

Why: the design promises proven optima in well under a second at 5k x 500 and a minute at
500k x 50k; this script measures it (each instance in a fresh subprocess so peak RSS is
the instance's own) and compares with a plain CP-SAT model and a greedy priority order.

Usage: .venv/bin/python bench/bench_allocation.py [--quick]  -> bench/results/allocation.json

Instances: 14 territories; 6 kinds of pools (2 national kinds shared by every territory,
4 territorial kinds); a candidate reaches the national pools and the territorial pools of
its own and the two neighbouring territories, and is eligible for each reachable pool
with probability ``density``; priorities follow the published points grid; weights are
lexicographic (priority x 5 + a fit bonus in 0..4).
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

from matching.allocation import (  # noqa: E402
    AllocationProblem,
    Candidate,
    OptionTable,
    Pool,
    lexicographic_weights,
    solve,
)

TERRITORIES = 14
NATIONAL_KINDS = 2
TERRITORIAL_KINDS = 4
MAX_FIT = 4
POOLS_PER_PERIOD = NATIONAL_KINDS + TERRITORIAL_KINDS * TERRITORIES
REACH_PER_PERIOD = NATIONAL_KINDS + TERRITORIAL_KINDS * 3

CASES = {
    "quick": {"candidates": 600, "slots": 60, "periods": 1, "density": 0.3},
    "5k": {"candidates": 5_000, "slots": 500, "periods": 1, "density": 0.3},
    "50k": {"candidates": 50_000, "slots": 5_000, "periods": 2, "density": 0.3},
    "500k": {"candidates": 500_000, "slots": 50_000, "periods": 10, "density": 0.14},
}


def grid_priorities(rng: np.random.Generator, n: int) -> np.ndarray:
    """Points drawn like the priority grid: housing, street months, resources, freins..."""
    housing = rng.choice([30, 20, 12, 8, 0], size=n, p=[0.15, 0.15, 0.2, 0.2, 0.3])
    street = np.where(housing == 30, rng.choice([0, 5, 10], size=n, p=[0.4, 0.35, 0.25]), 0)
    pts = housing + street
    pts += 10 * (rng.random(n) < 0.4)
    pts += 2 * rng.integers(0, 6, n)
    pts += 8 * (rng.random(n) < 0.3)
    pts += 10 * (rng.random(n) < 0.15)
    pts += 15 * (rng.random(n) < 0.1)
    pts += 10 * (rng.random(n) < 0.2)
    pts += rng.integers(0, 27, n)
    return pts.astype(np.int64)


def make_instance(case: dict, seed: int = 7, alpha: float = 0.0) -> AllocationProblem:
    """Vectorised generator (a Python loop per option would dominate at 10M options)."""
    rng = np.random.default_rng(seed)
    n, periods, density = case["candidates"], case["periods"], case["density"]
    n_pools = POOLS_PER_PERIOD * periods
    share = rng.random(n_pools) + 0.2
    share[np.arange(n_pools) % POOLS_PER_PERIOD < NATIONAL_KINDS] *= 10  # big shared pools
    capacity = np.floor(share / share.sum() * case["slots"]).astype(np.int64)
    capacity[: case["slots"] - int(capacity.sum())] += 1
    pools = []
    for i in range(n_pools):
        j = i % POOLS_PER_PERIOD
        terr = None if j < NATIONAL_KINDS else f"T{(j - NATIONAL_KINDS) // TERRITORIAL_KINDS:02d}"
        pools.append(Pool(f"P{i:06d}", int(capacity[i]), terr))
    terr_of = rng.integers(0, TERRITORIES, n)
    candidates = tuple(
        Candidate(f"C{i:07d}", int(p), f"T{t:02d}")
        for i, (p, t) in enumerate(
            zip(grid_priorities(rng, n).tolist(), terr_of.tolist(), strict=True)
        )
    )
    reach = REACH_PER_PERIOD * periods
    m = rng.binomial(reach, density, n)
    c = np.repeat(np.arange(n, dtype=np.int64), m)
    r = rng.integers(0, reach, len(c))
    period, j = r // REACH_PER_PERIOD, r % REACH_PER_PERIOD
    local = j - NATIONAL_KINDS
    terr = (terr_of[c] + local // TERRITORIAL_KINDS - 1) % TERRITORIES
    within = np.where(
        j < NATIONAL_KINDS, j, NATIONAL_KINDS + terr * TERRITORIAL_KINDS + local % TERRITORIAL_KINDS
    )
    p = period * POOLS_PER_PERIOD + within
    key = np.sort(c * n_pools + p)
    key = key[np.r_[True, key[1:] != key[:-1]]]
    c, p = key // n_pools, key % n_pools
    prio = np.array([x.priority for x in candidates], dtype=np.int64)
    fit = rng.integers(0, MAX_FIT + 1, len(c))
    weight = prio[c] * (MAX_FIT + 1) + fit
    assert weight[0] == lexicographic_weights(int(prio[c[0]]), int(fit[0]), MAX_FIT)
    return AllocationProblem(
        pools=tuple(pools),
        candidates=candidates,
        option_table=OptionTable(c, p, weight),
        territory_floor_alpha=alpha,
        time_limit_s=120.0,
    )


def make_household_instance(
    alpha: float, seed: int = 7, time_limit_s: float = 30.0
) -> AllocationProblem:
    """The engine's default run on shelter places: 3,000 candidates, 58 pools, 1,000 places
    counted per person (a household of 1–5 needs that many), territory floors at ``alpha``."""
    base = make_instance({"candidates": 3000, "slots": 1000, "periods": 1, "density": 0.3},
                         seed=seed, alpha=alpha)  # fmt: skip
    t = base.option_table
    assert t is not None
    rng = np.random.default_rng(seed + 1)
    household = rng.choice([1, 2, 3, 4, 5], size=len(base.candidates),
                           p=[0.45, 0.2, 0.15, 0.12, 0.08])  # fmt: skip
    table = OptionTable(t.candidate_index, t.pool_index, t.weight, household[t.candidate_index])
    return AllocationProblem(pools=base.pools, candidates=base.candidates, option_table=table,
                             territory_floor_alpha=alpha, time_limit_s=time_limit_s)  # fmt: skip


def greedy_objective(problem: AllocationProblem) -> int:
    """Priority order: each candidate, best first, takes its heaviest option with room."""
    t = problem.option_table
    assert t is not None
    left = np.array([p.capacity for p in problem.pools])
    prio = np.array([c.priority for c in problem.candidates])
    order = np.lexsort((-t.weight, -prio[t.candidate_index]))
    done = np.zeros(len(problem.candidates), dtype=bool)
    total = 0
    for o in order.tolist():
        ci, pi = int(t.candidate_index[o]), int(t.pool_index[o])
        if not done[ci] and left[pi] > 0:
            done[ci] = True
            left[pi] -= 1
            total += int(t.weight[o])
    return total


def plain_cpsat(problem: AllocationProblem, time_limit_s: float) -> dict:
    """The naive model: one boolean per option, no flow, no hint."""
    from ortools.sat.python import cp_model

    t = problem.option_table
    assert t is not None
    started = time.perf_counter()
    model = cp_model.CpModel()
    x = [model.new_bool_var("") for _ in range(len(t.weight))]
    by_c: dict[int, list] = {}
    by_p: dict[int, list] = {}
    for k, (ci, pi) in enumerate(
        zip(t.candidate_index.tolist(), t.pool_index.tolist(), strict=True)
    ):
        by_c.setdefault(ci, []).append(x[k])
        by_p.setdefault(pi, []).append(x[k])
    for vs in by_c.values():
        model.add_at_most_one(vs)
    for pi, vs in by_p.items():
        model.add(sum(vs) <= problem.pools[pi].capacity)
    model.maximize(sum(int(w) * v for w, v in zip(t.weight.tolist(), x, strict=True)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 2
    status = solver.solve(model)
    return {
        "time_s": round(time.perf_counter() - started, 3),
        "status": solver.status_name(status),
        "objective": int(solver.objective_value),
        "bound": int(solver.best_objective_bound),
    }


def run_case(name: str, alpha: float, compare: bool) -> dict:
    t0 = time.perf_counter()
    problem = make_instance(CASES[name], alpha=alpha)
    gen_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = solve(problem)
    solve_s = time.perf_counter() - t1
    out = {
        "case": name,
        "alpha": alpha,
        **CASES[name],
        "options": int(len(problem.option_table.weight)) if problem.option_table else 0,
        "pools": len(problem.pools),
        "generate_s": round(gen_s, 3),
        "solve_s": round(solve_s, 3),
        "status": result.status,
        "solver": result.solver,
        "objective": result.objective,
        "bound": result.bound,
        "assigned": len(result.assignments),
        "envy": len(result.envy),
        "envy_by_cause": {
            c: sum(e.cause == c for e in result.envy)
            for c in sorted({e.cause for e in result.envy})
        },
        "worst_fill_ratio": result.stats["worst_fill_ratio"],
        "worst_share_ratio": result.stats["worst_share_ratio"],
        "floors_unmet": result.stats["floors_unmet"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if compare:
        greedy = greedy_objective(problem)
        out["greedy_objective"] = greedy
        out["gain_over_greedy_pct"] = round(100 * (result.objective - greedy) / max(greedy, 1), 3)
        plain = plain_cpsat(problem, 60.0)
        out["plain_cp_sat"] = plain
        out["plain_cp_sat_time_ratio"] = round(plain["time_s"] / max(solve_s, 1e-9), 1)
    return out


def in_subprocess(name: str, alpha: float, compare: bool) -> dict:
    cmd = [sys.executable, __file__, "--case", name, "--alpha", str(alpha)]
    if compare:
        cmd.append("--compare")
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--case")
    parser.add_argument("--alpha", type=float, default=0.0)
    parser.add_argument("--compare", action="store_true")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.alpha, args.compare)))
        return
    plan = (
        [("quick", 0.0, True), ("quick", 0.8, False), ("quick", 1.0, False)]
        if args.quick
        else [
            ("5k", 0.0, True),
            ("5k", 0.8, False),
            ("5k", 1.0, False),
            ("50k", 0.0, False),
            ("50k", 0.8, False),
            ("500k", 0.0, False),
        ]
    )
    results = []
    for name, alpha, compare in plan:
        res = in_subprocess(name, alpha, compare)
        print(json.dumps(res), flush=True)
        results.append(res)
    target = ROOT / "bench" / "results" / "allocation.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"quick": args.quick, "cores": 2, "results": results}
    target.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    print(f"written {target}")


if __name__ == "__main__":
    main()
