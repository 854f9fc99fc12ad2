"""CP-SAT allocation for what min-cost flow cannot express exactly.

Why: options that consume several units (a household needing several beds) and territory
floors that cannot all be met make the problem a knapsack-like integer programme. CP-SAT
solves it on each independent component of the candidate-pool graph (components share no
pool and no candidate, so their optima add up), hinted with a repaired flow solution, always
under a time limit, and reports the proven bound.

Floors are soft here, lexicographically first: phase 1 maximises the floor units met
(sum over (pool, territory) of min(fill, floor)); phase 2 keeps that level and maximises
the scaled weight. So floors are met whenever they can be, and otherwise as much as
possible, without any big-M coefficient that could overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from ortools.sat.python import cp_model

from matching.allocation_flow import Indexed, unique_sorted

_STATUS = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.UNKNOWN: "unknown",
    cp_model.MODEL_INVALID: "unknown",
}


@dataclass(frozen=True)
class ComponentOutcome:
    """Chosen option indices of one component, its status and scaled upper bound."""

    chosen: np.ndarray
    status: str
    bound_scaled: int


def components(ix: Indexed) -> list[np.ndarray]:
    """Option indices of each connected component of the candidate-pool graph.

    Why networkx on pools only: a candidate links all the pools it has options on, so the
    components are those of the pool graph whose edges chain each candidate's pools; that
    graph is far smaller than the bipartite one. Components are ordered by smallest pool.
    """
    graph = nx.Graph()
    graph.add_nodes_from(unique_sorted(ix.opt_p).tolist())
    if len(ix.opt_c):
        order = np.lexsort((ix.opt_p, ix.opt_c))
        c_sorted, p_sorted = ix.opt_c[order], ix.opt_p[order]
        same = c_sorted[1:] == c_sorted[:-1]
        edges = np.unique(np.stack([p_sorted[:-1][same], p_sorted[1:][same]], axis=1), axis=0)
        graph.add_edges_from(edges.tolist())
    comp_of_pool = np.full(ix.n_pools, -1, dtype=np.int64)
    comps = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
    for k, pools in enumerate(comps):
        comp_of_pool[pools] = k
    opt_comp = comp_of_pool[ix.opt_p]
    order = np.argsort(opt_comp, kind="stable")
    bounds = np.searchsorted(opt_comp[order], np.arange(len(comps) + 1))
    return [np.sort(order[bounds[k] : bounds[k + 1]]) for k in range(len(comps))]


def _solver(time_limit_s: float, num_workers: int) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.01, time_limit_s)
    solver.parameters.num_workers = num_workers
    solver.parameters.random_seed = 0
    # Same answer for 1 and 2 workers: the optimum is unique (tie-break term), and the
    # interleaved search makes the parallel run itself reproducible.
    solver.parameters.interleave_search = num_workers > 1
    return solver


def solve_component(
    ix: Indexed,
    options: np.ndarray,
    hint: np.ndarray,
    *,
    time_limit_s: float,
    num_workers: int,
) -> ComponentOutcome:
    """Solve one component; ``options`` and ``hint`` are option indices."""
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{o}") for o in options.tolist()]
    hinted = set(hint.tolist())
    for var, o in zip(x, options.tolist(), strict=True):
        model.add_hint(var, o in hinted)

    by_cand: dict[int, list[int]] = {}
    by_pool: dict[int, list[int]] = {}
    for k, o in enumerate(options.tolist()):
        by_cand.setdefault(int(ix.opt_c[o]), []).append(k)
        by_pool.setdefault(int(ix.opt_p[o]), []).append(k)
    for ks in by_cand.values():
        if len(ks) > 1:
            model.add_at_most_one(x[k] for k in ks)
    for p, ks in by_pool.items():
        model.add(sum(int(ix.opt_cons[options[k]]) * x[k] for k in ks) <= int(ix.capacity[p]))

    floor_terms = []
    for f in range(len(ix.floor_p)):
        p, g, need = int(ix.floor_p[f]), int(ix.floor_g[f]), int(ix.floor_units[f])
        ks = [k for k in by_pool.get(p, []) if ix.cand_group[ix.opt_c[options[k]]] == g]
        if not ks:
            continue
        met = model.new_int_var(0, need, f"met{f}")
        model.add(met <= sum(int(ix.opt_cons[options[k]]) * x[k] for k in ks))
        floor_terms.append(met)

    weights = [int(ix.scaled[o]) for o in options.tolist()]
    deadline_share = time_limit_s
    if floor_terms:
        model.maximize(sum(floor_terms))
        solver = _solver(deadline_share / 2, num_workers)
        status = solver.solve(model)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            reached = int(solver.objective_value)
            model.add(sum(floor_terms) >= reached)
            model.clear_hints()
            for var in x:
                model.add_hint(var, bool(solver.boolean_value(var)))
            deadline_share /= 2
        else:
            # No floor level found in time: keep the flow hint, floors stay unmet.
            floor_terms = []
    model.maximize(sum(w * v for w, v in zip(weights, x, strict=True)))
    solver = _solver(deadline_share, num_workers)
    status = solver.solve(model)
    name = _STATUS.get(status, "unknown")
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        chosen = options[[k for k, v in enumerate(x) if solver.boolean_value(v)]]
        bound = int(solver.best_objective_bound)
    else:
        # Time ran out before CP-SAT proved anything: keep the repaired flow hint.
        chosen = hint
        bound = int(sum(w for w in weights if w > 0))
        name = "feasible" if name == "unknown" else name
    return ComponentOutcome(np.sort(chosen.astype(np.int64)), name, bound)
