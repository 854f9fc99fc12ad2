"""CP-SAT allocation for what min-cost flow cannot express exactly.

Why: options that consume several units (a household needing several beds) and territory
floors that cannot all be met make the problem a knapsack-like integer programme. CP-SAT
solves it on each independent component of the candidate-pool graph (components share no
pool and no candidate, so their optima add up), always under a time limit, and reports the
proven bound.

Floors are lexicographically first: phase 1 maximises the floor units met (sum over
(pool, territory) of min(fill, floor)); when every floor can be met, phase 2 states them as
hard constraints (far stronger for CP-SAT than "the sum of the levels is reached"),
otherwise it keeps the level reached; then it maximises the weight with all the time left
and, when that optimum is proven, breaks its ties by the pair hash in a small third solve
(not with ``assign_all``, where it only cost time; see solve_component).
No big-M coefficient, so nothing can overflow. ``hint`` (the repaired flow solution) is only
the fallback answer when CP-SAT finds nothing in time.

Search. CP-SAT's interleaved portfolio runs even on one worker (``interleave_search``): on one
worker the default search has no large-neighbourhood search, and on the household instance
of the bench it stopped 66 % below the bound where the interleaved one proves the optimum in
9 s. With ``assign_all`` (everyone placed: the generalized assignment problem) the model is
the textbook one, variables pool by pool and the cost minimised, under CP-SAT's default
single search and seed: it then follows, step for step, the trajectory of the plain model it
is benchmarked against (``bench/bench_gap.py``), which no variant measured beat on every
instance; with two workers or more, a second seed runs on a second core under a rule that
keeps the answer reproducible (``_gap_portfolio``). Limits are *deterministic* time (CP-SAT's
work units, about one per second of one core here), shared between phases and components
in those units, with a wall-clock guard of ``WALL_SAFETY`` times the limit: a run that stops on
its limit gives the same answer for the same input, on any machine and under any load the
guard allows; a run that the guard stopped says so (``ComponentOutcome.guarded``, then the
result's ``stats["wall_guard_stops"]`` and message). The model is built in sorted id order,
so the input's order does not matter either.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from matching.allocation_flow import Indexed, tie_break, unique_sorted
from matching.gap_search import Stopper, outcome, second_search, single_search
from matching.solver_import import cp_model

_STATUS: dict[Any, str] = {
    cp_model.OPTIMAL: "optimal",
    cp_model.FEASIBLE: "feasible",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.UNKNOWN: "unknown",
}
# The wall-clock guard, as a multiple of the limit: it only stops a search that a machine far
# slower or busier than usual would let run on, so that it never binds on a run whose answer
# must be reproducible. Measured, in deterministic units per wall second of one search (the
# GAP searches of bench_gap at 10 units): 0.57–1.30 on an AMD EPYC VM; 0.42–0.74 alone and
# down to 0.30 beside the second search on an Intel Xeon VM at 2.1 GHz (Chu–Beasley c20200),
# where the former guards (1.5 ×, and 2 × with assign_all) cut c20200, d10200 and e20200
# short of their 10 units: their answers then depended on the machine's speed (c20200: 2,435
# at the guard, 20.7 s, against 2,434 at its 10 units, the answer on the EPYC VM too, in
# 25–30 s). 4 × holds down to 0.25 units per second.
WALL_SAFETY = 4.0
# assign_all (generalized assignment): deterministic units granted per second of the user's
# limit. Measured on the 18 Chu–Beasley instances of bench/bench_gap.py (2 cores, one worker,
# the plain model's trajectory, which is followed here) on the AMD EPYC VM: 0.62–1.30
# deterministic units per wall second, median 0.8; a rate of 1.3 with a 1.1 × guard gained
# nothing reproducible: most runs then ended on the guard. The limit is in units, not in the
# machine's seconds: the same file gives the same answer on every machine (on the Intel VM,
# a run that ends on its limit took up to 2.4 × it alone, 2.9 × beside the second search).
GAP_DET_RATE = 1.0


class ModelInvalid(ValueError):
    """CP-SAT refused the model (a parameter or a coefficient out of its range)."""


def worker_count(requested: int) -> int:
    """Never more workers than cores: extra workers only steal time from each other."""
    return max(1, min(int(requested), os.cpu_count() or 1))


@dataclass(frozen=True)
class ComponentOutcome:
    """Chosen option indices of one component, its status, upper bound (raw weight) and the
    deterministic time it used (the rest of the run's budget goes to the next components);
    ``guarded``: the wall-clock guard stopped a search whose answer counts, so the same input
    may give another answer on another run."""

    chosen: np.ndarray
    status: str
    bound: int
    det_time: float = 0.0
    guarded: bool = False


def cut_short(status: Any, det_used: float, det_limit: float) -> bool:
    """Whether a search ended on the wall-clock guard: without a proof and before its
    deterministic limit (CP-SAT stops on that limit only once it is reached)."""
    proven = status in (cp_model.OPTIMAL, cp_model.INFEASIBLE)
    return not proven and det_used < det_limit * 0.999


def _solver_cut_short(solver: cp_model.CpSolver, status: Any) -> bool:
    """``cut_short`` for a search that ran in this thread, from its own limit and response."""
    return cut_short(status, solver.response_proto.deterministic_time,
                     solver.parameters.max_deterministic_time)  # fmt: skip


def _gap_wall(det: float) -> float:
    """The wall-clock guard of a generalized-assignment search of ``det`` units."""
    return det * WALL_SAFETY / GAP_DET_RATE


def components(ix: Indexed) -> list[np.ndarray]:
    """Option indices of each connected component of the candidate-pool graph.

    Why on pools only: a candidate links all the pools it has options on, so the components
    are those of the pool graph whose edges chain each candidate's pools; that graph is far
    smaller than the bipartite one. An exclusion ("IML excludes ALT" between a person's
    referrals) chains the pools of its options too, so it never spans two components. A
    union-find over its distinct edges (networkx would cost 0.4 s of import for this
    alone). Components are ordered by smallest pool.
    """
    parent = list(range(ix.n_pools))

    def root(p: int) -> int:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    if len(ix.opt_c):
        order = np.lexsort((ix.opt_p, ix.opt_c))
        c_sorted, p_sorted = ix.opt_c[order], ix.opt_p[order]
        same = c_sorted[1:] == c_sorted[:-1]
        # Distinct edges as one key each (not ``np.unique(axis=0)``, whose first call imports
        # numpy.ma: 0.03 s of allocate-file's start-up).
        heads, tails = p_sorted[:-1][same].astype(np.int64), p_sorted[1:][same]
        keys = unique_sorted(heads * ix.n_pools + tails)
        pairs = [divmod(k, ix.n_pools) for k in keys.tolist()]
        # An exclusion couples its options: their pools belong to one component.
        for ex in ix.exclusions:
            ps = unique_sorted(ix.opt_p[ex]).tolist()
            pairs.extend(zip(ps[:-1], ps[1:], strict=True))
        for a, b in pairs:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    used = unique_sorted(ix.opt_p).tolist()
    roots = sorted({root(p) for p in used})
    comp_index = {r: k for k, r in enumerate(roots)}  # roots are each component's smallest pool
    comp_of_pool = np.full(ix.n_pools, -1, dtype=np.int64)
    for p in used:
        comp_of_pool[p] = comp_index[root(p)]
    opt_comp = comp_of_pool[ix.opt_p]
    order = np.argsort(opt_comp, kind="stable")
    bounds = np.searchsorted(opt_comp[order], np.arange(len(roots) + 1))
    return [np.sort(order[bounds[k] : bounds[k + 1]]) for k in range(len(roots))]


def _solver(
    time_limit_s: float, num_workers: int, *, wall_cap: float | None = None
) -> cp_model.CpSolver:
    """The interleaved search of the optional-placement phases (the generalized assignment
    has its own: ``gap_search.single_search``)."""
    solver = cp_model.CpSolver()
    limit = max(0.01, time_limit_s)
    solver.parameters.max_deterministic_time = limit
    # WALL_SAFETY is read now, not bound at import: tests lift it.
    solver.parameters.max_time_in_seconds = max(limit * WALL_SAFETY, wall_cap or 0.0)
    solver.parameters.num_workers = worker_count(num_workers)
    solver.parameters.random_seed = 0
    solver.parameters.interleave_search = True
    return solver


def _run(model: cp_model.CpModel, solver: cp_model.CpSolver) -> Any:
    status = solver.solve(model)
    if status == cp_model.MODEL_INVALID:
        raise ModelInvalid(model.validate() or "modèle refusé par CP-SAT")
    return status


TIE_BREAK_SHARE = 0.1  # tie-break phase: at most this share of the weight phase's work


def _break_ties(model, x, options, ix, picked, optimum, solver, left, wall_left, num_workers):  # type: ignore[no-untyped-def]
    """Among the optima of the weight, the one the pair hash prefers (the same order as
    min-cost flow's), in a second, small solve: the weight fixed at its proven optimum, the hash as
    objective, hinted with the optimum found. Its budget is a share of the weight phase's
    *deterministic* time, so the answer stays reproducible; whatever it does not finish,
    the weight optimum found stands. Returns the pick and whether the wall guard stopped it."""
    budget = min(left, max(0.05, TIE_BREAK_SHARE * solver.response_proto.deterministic_time))
    if budget <= 0.01:
        return picked, False
    weights = [int(ix.opt_w[o]) for o in options.tolist()]
    ties = tie_break(ix.mix[options], ix.bits).tolist()
    model.add(sum(w * v for w, v in zip(weights, x, strict=True)) >= optimum)
    model.maximize(sum(int(t) * v for t, v in zip(ties, x, strict=True)))
    chosen = set(picked)
    for k, v in enumerate(x):
        model.add_hint(v, k in chosen)
    # Wall guard: the time left of the run, not 1.5 × this small budget. Measured: with a
    # budget of 0.05 units (a 60-candidate household problem) the 0.075 s guard was reached
    # whenever the machine was loaded, and the same file gave three different (equally
    # weighted) assignments in ten runs; the deterministic budget must be the binding limit.
    tb = _solver(budget, num_workers, wall_cap=wall_left)
    status = _run(model, tb)
    guarded = _solver_cut_short(tb, status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return picked, guarded
    again = [k for k, v in enumerate(x) if tb.boolean_value(v)]
    score = lambda ks: sum(ties[k] for k in ks)  # noqa: E731
    return (again if score(again) > score(picked) else picked), guarded


def exclusions_of(ix: Indexed) -> dict[int, list[int]]:
    """Option index -> the exclusions (indices into ``ix.exclusions``) it belongs to."""
    out: dict[int, list[int]] = {}
    for e, ex in enumerate(ix.exclusions):
        for o in ex.tolist():
            out.setdefault(int(o), []).append(e)
    return out


def _greedy_complete(ix: Indexed, options: np.ndarray, start: list[int]) -> np.ndarray:
    """``start`` plus the heaviest options that still fit (one pool per candidate, at most
    one option per exclusion: a ``start`` option breaking one is dropped)."""
    cap = ix.capacity.astype(np.int64).copy()
    taken = np.zeros(ix.n_candidates, dtype=bool)
    excl = exclusions_of(ix) if ix.exclusions else {}
    used_ex: set[int] = set()
    chosen = []
    for o in start:
        if any(e in used_ex for e in excl.get(o, ())):
            continue
        used_ex.update(excl.get(o, ()))
        cap[ix.opt_p[o]] -= ix.opt_cons[o]
        taken[ix.opt_c[o]] = True
        chosen.append(o)
    for o in options[np.argsort(-ix.scaled[options], kind="stable")].tolist():
        c, p, k = int(ix.opt_c[o]), int(ix.opt_p[o]), int(ix.opt_cons[o])
        if not taken[c] and cap[p] >= k and not any(e in used_ex for e in excl.get(o, ())):
            used_ex.update(excl.get(o, ()))
            taken[c] = True
            cap[p] -= k
            chosen.append(o)
    return np.array(sorted(chosen), dtype=np.int64)


def _ordered(ix: Indexed, options: np.ndarray) -> np.ndarray:
    """Options in (candidate id, pool id) order: the model does not depend on input order."""
    if ix.cand_key is None or ix.pool_key is None:
        return np.sort(options)
    return options[np.lexsort((ix.pool_key[ix.opt_p[options]], ix.cand_key[ix.opt_c[options]]))]


def _pool_major(ix: Indexed, options: np.ndarray) -> list[int]:
    """Positions in ``options`` (candidate-major) sorted by (pool id, candidate id)."""
    keys = np.arange(len(options))
    if ix.cand_key is None or ix.pool_key is None:
        return np.lexsort((keys, ix.opt_p[options])).tolist()
    pk, ck = ix.pool_key[ix.opt_p[options]], ix.cand_key[ix.opt_c[options]]
    return np.lexsort((keys, ck, pk)).tolist()


def _base_model(ix: Indexed, options: np.ndarray, assign_all: bool = False):  # type: ignore[no-untyped-def]
    """Variables, one pool per candidate (exactly one with ``assign_all``), capacities, at
    most one option per exclusion; and the floors' option lists.

    With ``assign_all`` the variables are created pool by pool (x[pool][candidate]), as the
    textbook generalized-assignment model does: CP-SAT's search depends on the variable
    order, and this one is the trajectory ``bench/bench_gap.py``'s plain model follows."""
    model = cp_model.CpModel()
    if assign_all:
        x: list[Any] = [None] * len(options)
        for k in _pool_major(ix, options):
            x[k] = model.new_bool_var(f"x{int(options[k])}")
    else:
        x = [model.new_bool_var(f"x{o}") for o in options.tolist()]
    by_cand: dict[int, list[int]] = {}
    by_pool: dict[int, list[int]] = {}
    for k, o in enumerate(options.tolist()):
        by_cand.setdefault(int(ix.opt_c[o]), []).append(k)
        by_pool.setdefault(int(ix.opt_p[o]), []).append(k)
    for ks in by_cand.values():
        if assign_all:
            model.add_exactly_one(x[k] for k in ks)
        elif len(ks) > 1:
            model.add_at_most_one(x[k] for k in ks)
    key = ix.pool_key
    for p in sorted(by_pool, key=lambda p: int(key[p]) if key is not None else p):
        ks = by_pool[p]
        model.add(sum(int(ix.opt_cons[options[k]]) * x[k] for k in ks) <= int(ix.capacity[p]))
    if ix.exclusions:
        pos = {int(o): k for k, o in enumerate(options.tolist())}
        for ex in ix.exclusions:  # in model order (compiled sorted), never across components
            ks = [pos[o] for o in ex.tolist() if o in pos]
            if len(ks) > 1:
                model.add_at_most_one(x[k] for k in ks)
    floors: list[tuple[int, list[int]]] = []
    for f in range(len(ix.floor_p)):
        p, g, need = int(ix.floor_p[f]), int(ix.floor_g[f]), int(ix.floor_units[f])
        ks = [k for k in by_pool.get(p, []) if ix.cand_group[ix.opt_c[options[k]]] == g]
        if ks:
            floors.append((need, ks))
    return model, x, floors


# B's deterministic limit, as a share of A's: B should end before A, so that a run that ends
# on its limit takes A's wall time, the plain model's. With B under linearization level 2
# the share was 0.7 (a unit of B took 0.89–1.46 × the wall time of one of A's). The
# neighbourhood search's units take longer still: its steps are small CP-SAT solves whose
# set-up deterministic time does not count (``gap_search.STEP_UNITS`` counts part of it).
# Measured beside A at 10 units on the AMD EPYC VM (December 7), on 25 instances (the bench's
# 11 generated that end on their limit, OR-Library's 8 published C and D that do, six others
# of types C, D, E, generator seeds 5000 + m + n; 23 ended on their limit): at 0.7 B ended
# after A on several (c10200 12.5 s against 11.2 s, d5100 15.6 against 15.4 s); at 0.5 it
# ended 2.1–14.7 s before A on all 23, and its answer was better than A's on 20, by up to
# 1.27 % (e20200: 20,332 against 20,594; gains adding up to 10.1 % of the costs), worse on
# three (c10200 by 1, OR-Library d05100 by 8 and d05200 by 1: with 5 pools, a neighbourhood
# of 3 is most of the problem).
GAP_SECOND_SHARE = 0.5


# B starts this share of A's limit (in seconds) after A, or when A ends unproven: when A
# proves the optimum first, B would only have shared the machine (and been spawned for
# nothing: measured in bench_gap at 10 s, a B forked with A made allocate-file on two
# cores 1.05 × slower than on one on OR-Library's instances, proved in 0.01–0.8 s). The
# answer never depends on it: B's trajectory depends on its limit only. B beside A costs
# a proof 1–5 % (AMD EPYC VM, 2 vCPUs, medians of 7 alternated runs, B's start at 0.05
# against one worker: c20100 1.41 s against 1.36 s, OR-Library c05200 2.40 against 2.28,
# e5200 2.34 against 2.23, c5200 3.68 against 3.64), most likely through the shared
# caches: pinning each search to its own core changed nothing, and a B that only ran its
# first phase (the whole model for LNS_START units) or only its neighbourhoods each cost
# a part of it. At 0.1 (1 s at 10 units) B is never started on the proofs that take A
# less than that (c5100, e5100, OR-Library's gap1–gap12 and c05100), only in their last
# 0.1–0.3 s on c20100's, and it still ends before A where A ends on its limit: 0.5–0.66 s
# before it on c10200, whose A runs its 10 units fastest (7.3 s; at 0.15, 0.06–0.11 s),
# 1.6–1.9 s before it on d5100.
GAP_SECOND_DELAY = 0.1


class _Search:
    """One search of the portfolio, in a thread of this process or in a process of its own
    (``matching.gap_search``): A, the plain single-worker search; B, ``gap_search``'s second
    search. Once ended (or cancelled before it started): its status, cost, bound,
    deterministic time and solution. ``start`` runs it, ``cancel`` ends one that has not
    started, ``stop`` one that has (a separate process is killed: a stopped search's answer
    is never used)."""

    def __init__(self, model: cp_model.CpModel, det: float, second: bool, separate: bool) -> None:
        self.model, self.det, self.second, self.separate = model, det, second, separate
        self.status: Any = None
        self.started = self._stopped = False
        self.cost = self.bound = 0
        self.det_time = 0.0
        self.true: set[int] = set()
        self.failure: BaseException | None = None
        self._wall = _gap_wall(det)
        self._stopper = Stopper()
        self._proc: Any = None

    def boolean_value(self, v: Any) -> bool:
        return v.index in self.true

    def _take(self, status: Any, cost: int, bound: int, det: float, true: list[int]) -> None:
        self.cost, self.bound, self.det_time, self.true = cost, bound, det, set(true)
        self.status = status

    def _take_outcome(self, got: dict[str, Any]) -> None:
        self._take(cp_model.CpSolverStatus(got["status"]), got["cost"], got["bound"],
                   got["det"], got["true"])  # fmt: skip

    def run_here(self) -> None:
        """Runs the search in the calling thread."""
        if self.second:
            self._take_outcome(second_search(self.model, self.det, self._wall, 1, self._stopper))
            return
        solver = single_search(self.det, self._wall, linearization=1, seed=1)
        self._take_outcome(outcome(solver, self._stopper.solve(self.model, solver)))

    def _run_process(self) -> None:
        import json
        import subprocess
        import sys

        args = [str(self.det), str(self._wall), "1"]
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "matching.gap_search", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        if self._stopped:  # stopped while it was being spawned
            self._proc.kill()
        try:
            # A guard on a child that would hang: its own wall-clock cap, and some slack.
            out, _ = self._proc.communicate(str(self.model.proto), timeout=self._wall + 30.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            raise TimeoutError("la seconde recherche ne répond plus") from None
        except BrokenPipeError:  # killed by ``stop`` before it read the model
            out = ""
        if self._stopped:
            self._take(cp_model.UNKNOWN, 0, 0, 0.0, [])
            return
        if self._proc.returncode != 0 or not out.strip():
            raise RuntimeError(f"la seconde recherche a échoué (code {self._proc.returncode})")
        self._take_outcome(json.loads(out))

    def start(self, done: Any) -> None:
        import threading

        self.started = True

        def search() -> None:
            try:
                self._run_process() if self.separate else self.run_here()
            except BaseException as exc:  # noqa: BLE001 - re-raised by the portfolio
                self.failure, self.status = exc, cp_model.UNKNOWN
            done()

        threading.Thread(target=search, daemon=True).start()

    def cancel(self) -> None:
        """Never started: no solution."""
        self.status = cp_model.UNKNOWN

    def stop(self) -> None:
        self._stopped = True
        if not self.separate:
            self._stopper.stop()
        elif self._proc is not None:
            with contextlib.suppress(OSError):  # it has ended already
                self._proc.kill()


def _separate_process() -> bool:
    """The second search runs in a process of its own wherever one can be spawned."""
    import sys

    return bool(sys.executable)


def _gap_portfolio(model: cp_model.CpModel, det: float) -> tuple[_Search, Any, int, float, bool]:
    """Two single-worker searches on two cores, with an answer that does not depend on
    which one ends first (so a run stays reproducible, unlike CP-SAT's own parallel portfolio).

    Search A is the plain model's trajectory (seed 1); search B is ``gap_search``'s second
    search: a large-neighbourhood search that re-assigns the candidates of a few pools at a
    time (on a plain generalized assignment), else the same model under a stronger
    relaxation. B finds better solutions where the plain search ends on its limit. Each runs
    until it proves (the optimum, or that nobody can be placed) or reaches its limit:
    ``det`` units for A, GAP_SECOND_SHARE × ``det`` for B. The answer is, by definition:

    1. A's proof if A proves within its limit, else B's proof if B proves within its own;
    2. without a proof, the better of A's and B's solutions at their limits (A on a tie).

    Every branch depends on the two deterministic trajectories only, so a proof by A stops B
    at once, and anything else waits for both searches to end. B starts GAP_SECOND_DELAY ×
    ``det`` seconds after A (or as soon as A ends without a proof): its trajectory does not
    depend on when it starts, and a proof by A before then costs nothing. B therefore never
    makes a run slower than A alone (beyond sharing the machine), and gives its proof or its
    better solution where A has none. An earlier rule let a faster proof by B end the run (c10100:
    1.35 s against 2.16 s), but deciding it exactly meant stopping the other search at an
    estimated point and replaying it from scratch when it had stopped short — a smaller
    limit changes CP-SAT's trajectory — which made runs where A proves first up to twice
    as long (e5200: 4.9 s against 2.5 s). Nor would it pay to end a run on B's proof with
    A's first solution of that cost (as reproducible as A's proof): A finds its optimum
    just before it proves it (measured alone on the model-207 Intel VM: c10100 at 2.11 s
    of its 2.18 s, c5200 4.41 of 4.66 s, e5200 2.78 of 2.87 s). Returns the search holding
    the answer, the status, the proven lower bound of the cost, the deterministic time of
    the answer and whether the wall guard stopped a search whose outcome the answer depends
    on.

    B runs in a process of its own (``matching.gap_search``): two CP-SAT searches in
    threads of one process slowed each other down (Chu–Beasley e20200, 8 deterministic
    units: 9.6 s alone, 13.8 s beside the other search in a thread, 10.2 s beside it in
    another process). In a thread only where no process can be spawned.
    """
    import threading

    limits = (det, det * GAP_SECOND_SHARE)
    separate = _separate_process()
    searches = [_Search(model, limits[r], second=r == 1, separate=separate and r == 1)
                for r in (0, 1)]  # fmt: skip
    changed = threading.Condition()

    def done() -> None:
        with changed:
            changed.notify_all()

    searches[0].start(done)

    def proof_time(role: int) -> float:
        proven = searches[role].status in (cp_model.OPTIMAL, cp_model.INFEASIBLE)
        return searches[role].det_time if proven else math.inf

    # B starts after GAP_SECOND_DELAY × A's limit, or as soon as A ends without a proof. A
    # proof by A decides at once (B is cancelled or stopped); anything else needs both to
    # their end.
    a, b = searches

    def decided() -> bool:  # A's end makes B useless: a proof, a failure, a refused model
        return (a.failure is not None or proof_time(0) < math.inf
                or a.status == cp_model.MODEL_INVALID)  # fmt: skip

    with changed:
        changed.wait_for(lambda: a.status is not None, timeout=GAP_SECOND_DELAY * det)
    if a.status is None or not decided():
        b.start(done)
    with changed:
        changed.wait_for(lambda: a.status is not None)
    if decided():
        if b.started:
            b.stop()
        else:
            b.cancel()
    with changed:
        changed.wait_for(lambda: all(s.status is not None for s in searches))
    # The answer depends on A, and on B unless A's proof stopped it (or B never ran, or failed).
    counted = [a] + ([b] if b.started and b.failure is None and not decided() else [])
    guarded = any(cut_short(s.status, s.det_time, s.det) for s in counted)
    if a.failure is not None:
        raise a.failure
    if b.failure is not None:
        # B is an addition: where it could not run (a process refused, killed, hung), the
        # answer is A's alone, as on one worker; said in the log (no personal data here).
        import logging

        logging.getLogger(__name__).warning("second search failed: %r", b.failure)
        b.status, b.failure = cp_model.UNKNOWN, None
    statuses = [s.status for s in searches]
    if cp_model.MODEL_INVALID in statuses:
        raise ModelInvalid(model.validate() or "modèle refusé par CP-SAT")
    times = [proof_time(0), proof_time(1)]
    for role in (0, 1):
        if times[role] < math.inf:
            w = searches[role]
            if w.status == cp_model.INFEASIBLE:
                return w, w.status, 0, times[role], guarded
            return w, cp_model.OPTIMAL, w.cost, times[role], guarded
    found = [s.status in (cp_model.OPTIMAL, cp_model.FEASIBLE) for s in searches]
    if not any(found):
        return searches[0], cp_model.UNKNOWN, 0, det, guarded
    use_b = found[1] and (not found[0] or searches[1].cost < searches[0].cost)
    bounds = [s.bound for s, ok in zip(searches, found, strict=True) if ok]
    return searches[1 if use_b else 0], cp_model.FEASIBLE, max(bounds), det, guarded


def solve_component(
    ix: Indexed,
    options: np.ndarray,
    hint: np.ndarray,
    *,
    time_limit_s: float,
    num_workers: int,
    assign_all: bool = False,
) -> ComponentOutcome:
    """Solve one component; ``options`` and ``hint`` (the fallback) are option indices.

    Raises ModelInvalid when CP-SAT refuses the model (never reported as "feasible")."""
    started = time.perf_counter()
    options = _ordered(ix, options)
    cons = [int(ix.opt_cons[o]) for o in options.tolist()]

    def units(x, ks):  # type: ignore[no-untyped-def]
        return sum(cons[k] * x[k] for k in ks)

    hinted = set(hint.tolist())
    start = [o for o in options.tolist() if o in hinted]
    level: tuple[str, int] | None = None
    floors: list[tuple[int, list[int]]] = []
    spent = 0.0  # deterministic time used by phase 1
    guarded = False  # the wall guard stopped a search the answer depends on
    if len(ix.floor_p):
        # Phase 1 (its own model): the floor level, lexicographically first, ≤ 40 % of the time.
        model, x, floors = _base_model(ix, options, assign_all)
    if floors:
        mets = []
        for need, ks in floors:
            met = model.new_int_var(0, need, "")
            model.add(met <= units(x, ks))
            mets.append(met)
        model.maximize(sum(mets))
        solver = _solver(time_limit_s * 0.4, num_workers)
        status = _run(model, solver)
        spent = solver.response_proto.deterministic_time
        guarded = _solver_cut_short(solver, status)
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            reached = int(solver.objective_value)
            level = ("hard", reached) if reached == sum(n for n, _ in floors) else ("sum", reached)
            # Hint: the assignments phase 1 needs for the floors, heaviest first, then a
            # greedy completion by weight (phase 1's own solution ignores weights).
            chosen1 = {int(options[k]) for k, v in enumerate(x) if solver.boolean_value(v)}
            keep: list[int] = []
            for need, ks in floors:
                got = 0
                for o in sorted(
                    (int(options[k]) for k in ks if int(options[k]) in chosen1),
                    key=lambda o: (-int(ix.scaled[o]), o),
                ):
                    if got >= need:
                        break
                    keep.append(o)
                    got += int(ix.opt_cons[o])
            start = sorted(set(keep))
        # else: no level found in time; floors stay unmet, the flow hint is kept.
    # Phase 2 (a fresh model): the weight, floors as reached, with all the time left.
    model, x, floors = _base_model(ix, options, assign_all)
    if level is not None and level[0] == "hard":
        for need, ks in floors:
            model.add(units(x, ks) >= need)
    elif level is not None:
        mets = []
        for need, ks in floors:
            met = model.new_int_var(0, need, "")
            model.add(met <= units(x, ks))
            mets.append(met)
        model.add(sum(mets) >= level[1])
    # No hint, in either phase: measured on the household bench instance, any hint (the
    # flow's repaired solution, phase 1's completed greedily) kept CP-SAT near it, 9–21 %
    # below the optimum that it proves in 9 s without one.
    # The weight itself, as a plain model states it: folding the tie-break into the
    # coefficients (up to 20 more bits each) weakened the relaxation and CP-SAT proved
    # optima later than the plain model (Chu–Beasley c5200, c10200, e5200 in bench_gap).
    weights = [int(ix.opt_w[o]) for o in options.tolist()]
    # Deterministic time left: a limit computed from the wall clock would move the stopping
    # point of a run that ends on its limit from one run to the next (measured: the same
    # 10 × 100 generalized assignment file gave costs 1,407 and 1,427 at 0.3 s).
    left = time_limit_s - spent
    if assign_all:
        # Generalized assignment: exactly the plain model (bench/bench_gap.py), i.e. the cost
        # minimised with its terms pool by pool, CP-SAT's default single search and its
        # default seed, so the search follows the plain model's trajectory step for step (same
        # solutions at the same deterministic time, checked on 18 Chu–Beasley instances).
        # Measured against it at equal deterministic time (8 units, seeds 2000–2005), none
        # better on all 18: maximising −cost with candidate-major variables and seed 0 (the
        # former model) lost c20100, c5200, c10200, e10100, e20100; the interleaved
        # portfolio (with LNS) alone or after half the time, linearization level 2, each
        # lost several; costs reduced per candidate (c − min c) changed nothing (presolve
        # shifts the objective itself), and the Martello–Toth regret greedy could not place
        # everyone (capacities at 80 %), so it had no hint to give. Two more, at 10 units on
        # the 21 Chu–Beasley instances that end on their limit (the bench's 11, ten of seeds
        # 4000–4002): the last unit given to the interleaved search hinted with the best
        # solution of the first 9 was better on 10 and worse on 2 (12,539 against 12,500;
        # 21,323 against 21,313), and on half a unit lost c20200; CP-SAT's interleaved
        # search on two threads is deterministic and ran 10 units in 6.7–11.1 s, but
        # it lost to the portfolio below on 10 of the bench's 11 at 10 units, and on 6 at
        # 15 units (which took 13–20 s on the model-207 Intel VM).
        model.minimize(sum(-weights[k] * x[k] for k in _pool_major(ix, options)))
        det = max(left, time_limit_s * 0.1) * GAP_DET_RATE
        if worker_count(num_workers) >= 2:
            solver, status, proven, used, cut = _gap_portfolio(model, det)  # type: ignore[assignment]
            guarded |= cut
        else:
            # One worker: search A of the portfolio alone, defined once (gap_search).
            det = max(0.01, det)
            solver = single_search(det, _gap_wall(det), linearization=1, seed=1)
            status, proven = _run(model, solver), None
            used = solver.response_proto.deterministic_time
            guarded |= _solver_cut_short(solver, status)
    else:
        model.maximize(sum(w * v for w, v in zip(weights, x, strict=True)))
        # Measured: the interleaved portfolio (with large-neighbourhood search) is what
        # solves the optional-placement problems (households, floors).
        solver = _solver(max(left, time_limit_s * 0.1), num_workers)
        status, proven = _run(model, solver), None
        used = solver.response_proto.deterministic_time
        guarded |= _solver_cut_short(solver, status)
    name = _STATUS.get(status, "unknown")
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        picked = [k for k, v in enumerate(x) if solver.boolean_value(v)]
        sign = -1 if assign_all else 1  # assign_all minimises −weight
        bound = sign * (proven if proven is not None else int(solver.best_objective_bound))
        # No tie-break solve with assign_all: the trajectory is deterministic already, and
        # its ~10 % more time after a proof made allocate-file slower than the plain model
        # on c5200 (4.26 s against 3.96 s), e5200 (2.73 against 2.58) and e10100 (9.89
        # against 9.15) in bench_gap at 10 s.
        if status == cp_model.OPTIMAL and not assign_all:
            picked, cut = _break_ties(
                model,
                x,
                options,
                ix,
                picked,
                sign * int(solver.objective_value),
                solver,
                left - solver.response_proto.deterministic_time,
                time_limit_s * WALL_SAFETY - (time.perf_counter() - started),
                num_workers,
            )
            guarded |= cut
        chosen = options[picked]
    else:
        # Nothing found in time: a greedy completion of phase 1's floor assignments
        # (capacities and one pool per person hold; floors may not), said by the status.
        chosen = _greedy_complete(ix, options, start)
        bound = int(sum(w for w in weights if w > 0))
        name = "feasible" if name == "unknown" and level is None and not assign_all else name
    return ComponentOutcome(np.sort(chosen.astype(np.int64)), name, bound, spent + used, guarded)
