"""The second search of the generalized-assignment portfolio, in a process of its own.

``python -m matching.gap_search DET WALL LINEARIZATION SEED`` reads a CP-SAT model in text
format on its standard input, solves it on one worker under those limits and parameters,
and writes one JSON line: status, cost, bound, deterministic time, true variables.

Why a fresh process (not a fork, not a thread): two CP-SAT searches in threads of one
process slowed each other down by 43 %, in two processes by 6 %; a fork must happen while
the parent has a single thread (a child forked beside a running CP-SAT search waited forever
on a lock it had inherited), so it had to be made before the first search started, and cost
every run its 30 ms even when the first search proved the optimum at once. A spawned process
can start at any time, from any thread (a server's too), and only when it is needed. It
imports CP-SAT alone (about 0.1 s, on the other core).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from matching.solver_import import cp_model


def single_search(det: float, wall: float, linearization: int, seed: int) -> cp_model.CpSolver:
    """The portfolio's single-worker search, the same in this process and in a thread of the
    caller (``allocation_cpsat._Search``): one definition, so both run one trajectory."""
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = det
    solver.parameters.max_time_in_seconds = wall
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    solver.parameters.interleave_search = False
    solver.parameters.linearization_level = linearization
    return solver


def outcome(solver: cp_model.CpSolver, status: Any) -> dict[str, Any]:
    """Status (as an int), cost, bound, deterministic time and true variables of a search."""
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    values = solver.response_proto.solution if found else []
    return {
        "status": int(status),
        "cost": int(solver.objective_value) if found else 0,
        "bound": int(solver.best_objective_bound) if found else 0,
        "det": solver.response_proto.deterministic_time,
        "true": [k for k, v in enumerate(values) if v],
    }


def main(argv: list[str]) -> int:
    det, wall, linearization, seed = float(argv[0]), float(argv[1]), int(argv[2]), int(argv[3])
    model = cp_model.CpModel()
    model.proto.parse_text_format(sys.stdin.read())
    solver = single_search(det, wall, linearization, seed)
    sys.stdout.write(json.dumps(outcome(solver, solver.solve(model))) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a process by allocation_cpsat
    sys.exit(main(sys.argv[1:]))
