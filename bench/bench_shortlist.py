"""Commission shortlists: what a run with rang 1..k per unit costs over the plain run.

Why: a commission pool (social housing through a CALEOL) needs, per unit, a ranked list
of k candidates rather than one person; ranks 2..k are filled round by round by the same
exact min-cost flow (``matching/shortlist.py``). This bench measures the run with lists
against the plain run on the same instance, and checks the lists' invariants on the way
(nobody on two lists, rang 1 = the run's assignment).

Instance: ``bench_allocation.make_instance`` (the network-like generator: 14 territories,
national and territorial pools, grid priorities, lexicographic weights), 5,000 candidates
and 500 places over two periods (116 pools), of which the 100 first territorial pools are
commission pools with k = 3. ``--quick``: 600 candidates, 60 places, 20 commission pools.
Each configuration is solved ``--repeat`` times (default 3) in this process; the median is
reported.

Usage: .venv/bin/python bench/bench_shortlist.py [--quick] [--repeat 3]
       -> bench/results/shortlist.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_allocation import NATIONAL_KINDS, POOLS_PER_PERIOD, make_instance  # noqa: E402
from common import write  # noqa: E402

from matching.allocation import AllocationProblem, AllocationResult, solve  # noqa: E402

CASES = {
    "quick": ({"candidates": 600, "slots": 60, "periods": 2, "density": 0.3}, 20),
    "5k": ({"candidates": 5_000, "slots": 500, "periods": 2, "density": 0.3}, 100),
}
K = 3


def commission(problem: AllocationProblem, n: int) -> dict[str, int]:
    """The first ``n`` territorial pools (national ones stay plain)."""
    ids = [p.id for i, p in enumerate(problem.pools) if i % POOLS_PER_PERIOD >= NATIONAL_KINDS]
    return dict.fromkeys(ids[:n], K)


def timed(problem: AllocationProblem, repeat: int) -> tuple[float, list[float], AllocationResult]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = solve(problem)
        times.append(round(time.perf_counter() - t0, 4))
    assert result is not None
    return statistics.median(times), times, result


def check(result: AllocationResult) -> None:
    """The lists' invariants (the bench refuses to report figures of a wrong answer)."""
    seen: list[str] = []
    for pool, units in result.shortlists.items():
        run = sorted(c for c, p in result.assignments if p == pool)
        assert sorted(u[0] for u in units if u) == run, pool
        assert all(len(u) <= K for u in units)
        seen.extend(c for u in units for c in u)
    assert len(seen) == len(set(seen)), "a candidate on two lists"


def run_case(name: str, repeat: int) -> dict:
    shape, n_commission = CASES[name]
    plain = replace(make_instance(shape), time_limit_s=60.0)
    listed = replace(plain, shortlist=commission(plain, n_commission))
    plain_s, plain_runs, base = timed(plain, repeat)
    list_s, list_runs, result = timed(listed, repeat)
    check(result)
    assert result.assignments == base.assignments  # the lists never change the run
    st = result.stats["shortlists"]
    by_len = [0] * (K + 1)
    for units in result.shortlists.values():
        for u in units:
            by_len[len(u)] += 1
    row = {
        "case": name,
        **shape,
        "pools": len(plain.pools),
        "options": int(len(plain.option_table.weight)) if plain.option_table else 0,
        "commission_pools": st["pools"],
        "k": K,
        "units": st["units"],
        "units_listed": st["units_listed"],
        "units_by_list_length": {str(n): c for n, c in enumerate(by_len)},
        "candidates_listed": st["listed"],
        "rounds": st["rounds"],
        "plain_solve_s": plain_s,
        "shortlist_solve_s": list_s,
        "overhead_s": round(list_s - plain_s, 4),
        "ratio": round(list_s / plain_s, 2) if plain_s > 0 else None,
        "plain_runs_s": plain_runs,
        "shortlist_runs_s": list_runs,
        "status": result.status,
        "solver": result.solver,
    }
    print(
        f"[shortlist] {name}: {st['units']} units on {st['pools']} commission pools, "
        f"{st['listed']} candidates listed ({row['units_by_list_length']} units by list "
        f"length); plain {plain_s:.3f} s, with lists {list_s:.3f} s ({row['ratio']}x)",
        flush=True,
    )
    return row


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    names = ["quick"] if args.quick else ["quick", "5k"]
    rows = [run_case(name, args.repeat) for name in names]
    path = write("shortlist", {"k": K, "cases": rows})
    print(f"[shortlist] {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
