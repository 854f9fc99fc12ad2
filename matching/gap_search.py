"""The second search of the generalized-assignment portfolio, in a process of its own.

``python -m matching.gap_search DET WALL SEED`` reads a CP-SAT model in text format on its
standard input, runs ``second_search`` on it under those limits, and writes one JSON line:
status, cost, bound, deterministic time, true variables.

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
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

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


@dataclass(frozen=True)
class GapShape:
    """A model that is a generalized assignment and nothing else: Boolean variables, each in
    exactly one "exactly one" group (a candidate) and at most one capacity constraint
    (a pool: positive units, at most ``rhs``), a cost to minimise."""

    group: np.ndarray  # variable -> its group
    pool: np.ndarray  # variable -> its capacity constraint, -1 if none
    units: np.ndarray  # variable -> its units in that constraint
    cost: np.ndarray  # variable -> its objective coefficient
    rhs: np.ndarray  # capacity constraint -> its capacity


def gap_shape(proto: Any) -> GapShape | None:
    """The model's generalized-assignment structure, or None when it has anything else
    (floors, exclusions, enforcement, a maximisation or an offset in the objective)."""
    n = len(proto.variables)
    if not proto.has_objective() or n == 0:
        return None
    if any(list(v.domain) != [0, 1] for v in proto.variables):
        return None
    group = np.full(n, -1, dtype=np.int64)
    pool = np.full(n, -1, dtype=np.int64)
    units = np.zeros(n, dtype=np.int64)
    rhs: list[int] = []
    groups = 0
    for ct in proto.constraints:
        if len(ct.enforcement_literal):
            return None
        if ct.has_exactly_one():
            lits = np.array(list(ct.exactly_one.literals), dtype=np.int64)
            if (lits < 0).any() or (group[lits] >= 0).any():
                return None
            group[lits] = groups
            groups += 1
        elif ct.has_linear():
            vs = np.array(list(ct.linear.vars), dtype=np.int64)
            cs = np.array(list(ct.linear.coeffs), dtype=np.int64)
            dom = list(ct.linear.domain)
            if len(dom) != 2 or dom[0] > 0 or dom[1] < 0 or (cs <= 0).any() or (vs < 0).any():
                return None
            if len(set(vs.tolist())) != len(vs) or (pool[vs] >= 0).any():
                return None
            pool[vs], units[vs] = len(rhs), cs
            rhs.append(int(dom[1]))
        else:
            return None
    objective = proto.objective
    if (group < 0).any() or objective.offset != 0 or objective.scaling_factor not in (0, 1):
        return None
    ov = np.array(list(objective.vars), dtype=np.int64)
    if (ov < 0).any() or len(set(ov.tolist())) != len(ov):
        return None
    cost = np.zeros(n, dtype=np.int64)
    cost[ov] = np.array(list(objective.coeffs), dtype=np.int64)
    return GapShape(group, pool, units, cost, np.array(rhs, dtype=np.int64))


class Stopper:
    """Stops a search run in a thread (the portfolio's fallback where no process can be
    spawned): the running CP-SAT solve at once, the neighbourhood loop before its next step."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.solver: cp_model.CpSolver | None = None
        self._solving = threading.Event()

    def solve(self, model: cp_model.CpModel, solver: cp_model.CpSolver) -> Any:
        self.solver = solver
        self._solving.set()  # before the check: a stop after it is sent again (``_insist``)
        try:
            if self.stopped.is_set():  # stopped before this solve: it runs with no time at
                solver.parameters.max_time_in_seconds = 0.0  # all, to have a response to read
            return solver.solve(model)
        finally:
            self._solving.clear()

    def stop(self) -> None:
        self.stopped.set()
        threading.Thread(target=self._insist, daemon=True).start()

    def _insist(self) -> None:
        """Stops the running solve at once, and again every 10 ms until it returns: CP-SAT
        drops a stop sent before its solve has begun (``stop_search`` is a no-op until the
        solve's wrapper exists), so one sent between ``solve``'s check and that point was
        lost, and the solve ran to its limit."""
        while self._solving.is_set():
            solver = self.solver
            if solver is not None:
                solver.stop_search()
            time.sleep(0.01)


# The second search where the model is not a plain generalized assignment (floors,
# exclusions): the same model and seed under CP-SAT's linearization level 2 (every constraint
# in the LP relaxation, more cuts), a search that differs from the plain one by its relaxation
# rather than by chance. It was the second search of every model until the neighbourhood
# search below replaced it on plain ones; measured then at 7 units beside the plain search's
# 10 on 29 Chu–Beasley instances that end on their limit, the better of the two improved on
# the plain search on 11 (gains adding up to 3.10 % of the costs), against 8 (1.41 %) with
# CP-SAT's interleaved search (its own large-neighbourhood search) in its place.
SECOND_LINEARIZATION = 2
# The second search's start: the plain search for this many deterministic units (its first
# solutions; the neighbourhoods need a complete assignment to improve).
LNS_START = 0.5
# One neighbourhood: the candidates of NEIGHBOURHOOD_POOLS pools chosen at random (more when
# several steps in a row improve nothing, up to NEIGHBOURHOOD_POOLS_MAX), re-assigned among
# those pools by CP-SAT, hinted with the current assignment, within NEIGHBOURHOOD_DET units.
NEIGHBOURHOOD_POOLS = 3
NEIGHBOURHOOD_POOLS_MAX = 6
NEIGHBOURHOOD_DET = 0.05
# CP-SAT's deterministic time leaves out a solve's set-up and this loop's own work: each step
# is counted STEP_UNITS more, plus VARIABLE_UNITS per variable of its model. Set from one
# profile (OR-Library c20200, steps of 4 pools, AMD EPYC VM): a step's solve took 5.6–10.5 ms
# of wall time for 0.4–0.7 ms of deterministic time, and building its model 1–2 ms. Steps
# that reach NEIGHBOURHOOD_DET still run slower than the whole model's search per unit; the
# second search's share of the limit (allocation_cpsat.GAP_SECOND_SHARE) allows for it.
STEP_UNITS = 0.004
VARIABLE_UNITS = 0.00002


def _neighbourhood(shape: GapShape, chosen: np.ndarray, pools: np.ndarray) -> np.ndarray:
    """The variables of the neighbourhood: every option, on the given pools, of the groups
    currently placed on one of them (their pools' load is then all free)."""
    # Boolean masks, not np.isin/np.unique (whose first call imports numpy.ma, 0.03 s).
    chosen_pools = np.zeros(len(shape.rhs) + 1, dtype=bool)  # the last entry: no pool (-1)
    chosen_pools[pools] = True
    on = chosen_pools[shape.pool]
    freed = np.zeros(int(shape.group.max()) + 1, dtype=bool)
    freed[shape.group[chosen[on[chosen]]]] = True
    return np.flatnonzero(on & freed[shape.group])


def _step_model(shape: GapShape, sub: np.ndarray, current: np.ndarray, pools: np.ndarray):  # type: ignore[no-untyped-def]
    model = cp_model.CpModel()
    xs = [model.new_bool_var("") for _ in range(len(sub))]
    groups = shape.group[sub]
    order = np.argsort(groups, kind="stable")
    cuts = np.flatnonzero(np.diff(groups[order])) + 1
    for block in np.split(order, cuts):
        model.add_exactly_one([xs[i] for i in block.tolist()])
    on = shape.pool[sub]
    for p in pools.tolist():
        idx = np.flatnonzero(on == p).tolist()
        if idx:
            model.add(cp_model.LinearExpr.weighted_sum([xs[i] for i in idx],
                                                       shape.units[sub[idx]].tolist())
                      <= int(shape.rhs[p]))  # fmt: skip
    model.minimize(cp_model.LinearExpr.weighted_sum(xs, shape.cost[sub].tolist()))
    for i, v in enumerate(current[sub].tolist()):
        model.add_hint(xs[i], bool(v))
    return model


def neighbourhood_search(model: cp_model.CpModel, shape: GapShape, det: float, wall: float,
                         seed: int, stopper: Stopper | None = None) -> dict[str, Any]:  # fmt: skip
    """A large-neighbourhood search of a generalized assignment, deterministic: the plain
    search for LNS_START units, then steps that free every candidate of a few pools and
    re-assign them among those pools by CP-SAT (an exact move of many candidates at once,
    which the whole model's search does not find in its time), kept when no worse. Every step
    depends on the seed and the deterministic limits only. Its bound is the start's."""
    stopper = stopper or Stopper()
    started = time.perf_counter()
    first = single_search(min(det, LNS_START), wall, 1, seed)
    status = stopper.solve(model, first)
    got = outcome(first, status)
    if status != cp_model.FEASIBLE:  # proven, refused, or nothing found yet
        if status == cp_model.UNKNOWN and not stopper.stopped.is_set() and det > LNS_START:
            left = max(0.0, wall - (time.perf_counter() - started))
            rest = single_search(det - got["det"], left, SECOND_LINEARIZATION, seed)
            got = outcome(rest, stopper.solve(model, rest))
            got["det"] += first.response_proto.deterministic_time
        return got
    used = got["det"]
    current = np.zeros(len(shape.group), dtype=bool)
    current[got["true"]] = True
    rng = np.random.default_rng(seed)
    n_pools = len(shape.rhs)
    size, idle = min(NEIGHBOURHOOD_POOLS, n_pools), 0
    while used < det and not stopper.stopped.is_set():
        left = wall - (time.perf_counter() - started)
        if left <= 0:
            break  # the wall guard: ``det`` says the limit was not reached
        pools = np.sort(rng.choice(n_pools, size=size, replace=False))
        sub = _neighbourhood(shape, np.flatnonzero(current), pools)
        step = single_search(min(NEIGHBOURHOOD_DET, det - used), left, 1, seed)
        step.parameters.cp_model_probing_level = 0
        found = stopper.solve(_step_model(shape, sub, current, pools), step)
        used += step.response_proto.deterministic_time + STEP_UNITS + VARIABLE_UNITS * len(sub)
        better = False
        if found in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            values = np.array(step.response_proto.solution, dtype=bool)
            gain = int(shape.cost[sub][current[sub]].sum()) - int(shape.cost[sub][values].sum())
            if gain >= 0:  # no worse: kept (a sideways move is a new start)
                current[sub], better = values, gain > 0
        idle = 0 if better else idle + 1
        if idle > 2 * n_pools and size < min(n_pools, NEIGHBOURHOOD_POOLS_MAX):
            size, idle = size + 1, 0
    true = np.flatnonzero(current)
    return {"status": int(cp_model.FEASIBLE), "cost": int(shape.cost[true].sum()),
            "bound": got["bound"], "det": used, "true": true.tolist()}  # fmt: skip


def second_search(model: cp_model.CpModel, det: float, wall: float, seed: int,
                  stopper: Stopper | None = None) -> dict[str, Any]:  # fmt: skip
    """The portfolio's second search: the neighbourhood search on a generalized assignment,
    else (floors, exclusions) the plain search under a stronger relaxation."""
    shape = gap_shape(model.proto)
    if shape is not None:
        return neighbourhood_search(model, shape, det, wall, seed, stopper)
    solver = single_search(det, wall, SECOND_LINEARIZATION, seed)
    return outcome(solver, (stopper or Stopper()).solve(model, solver))


def main(argv: list[str]) -> int:
    det, wall, seed = float(argv[0]), float(argv[1]), int(argv[2])
    model = cp_model.CpModel()
    model.proto.parse_text_format(sys.stdin.read())
    sys.stdout.write(json.dumps(second_search(model, det, wall, seed)) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a process by allocation_cpsat
    # Ends without the interpreter's shutdown (about 0.04 s), which the portfolio would wait
    # for where the answer needs this search's end.
    code = main(sys.argv[1:])
    try:
        sys.stdout.flush()
    except OSError:  # the portfolio stopped it and closed the pipe: nothing is read
        code = 1
    os._exit(code)
