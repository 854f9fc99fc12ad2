"""Allocation when an option takes several units (households in shelter places) with
territory floors: near-optimal, the whole time limit available, deterministic whatever the
input order, and an envy report whose causes are checked swap by swap.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from matching.allocation import (
    AllocationProblem,
    Candidate,
    Option,
    Pool,
    ProblemError,
    lexicographic_weights,
    solve,
)

TERRITORIES = 8


def household_problem(n: int = 500, slots: int = 220, alpha: float = 0.8, seed: int = 3,
                      time_limit_s: float = 10.0) -> AllocationProblem:  # fmt: skip
    """Shelter places counted per person: 2 national pools and 2 per territory; each
    candidate reaches the national ones and those of its own and the next territory."""
    rng = random.Random(seed)
    pools = [Pool("N0", slots // 4), Pool("N1", slots // 4)]
    for t in range(TERRITORIES):
        for j in range(2):
            pools.append(Pool(f"T{t}-{j}", max(2, slots // (4 * TERRITORIES)), f"T{t}"))
    cands, options = [], []
    for i in range(n):
        t = rng.randrange(TERRITORIES)
        prio = rng.choice([0, 8, 12, 20, 30]) + rng.randrange(0, 27)
        size = rng.choices([1, 2, 3, 4, 5], [45, 20, 15, 12, 8])[0]
        cid = f"C{i:04d}"
        cands.append(Candidate(cid, prio, f"T{t}"))
        reach = ["N0", "N1"] + [f"T{u % TERRITORIES}-{j}" for u in (t, t + 1) for j in (0, 1)]
        for pid in reach:
            if rng.random() < 0.5:
                options.append(Option(cid, pid, lexicographic_weights(prio, rng.randrange(3), 2),
                                      size))  # fmt: skip
    return AllocationProblem(pools=tuple(pools), candidates=tuple(cands), options=tuple(options),
                             territory_floor_alpha=alpha, time_limit_s=time_limit_s)  # fmt: skip


def _gap(result) -> float:  # type: ignore[no-untyped-def]
    return (result.bound - result.objective) / max(1, result.bound)


@pytest.fixture
def deterministic_limit_binds(monkeypatch):
    """The wall-clock guard (4 × the limit) lifted: on a loaded machine (the suite runs in
    as many processes as cores) it would stop a search the deterministic limit lets finish,
    and the test would measure the load. Measured: alpha 0 ended "feasible" whenever another
    CP-SAT test ran beside it."""
    import matching.allocation_cpsat as cpsat

    monkeypatch.setattr(cpsat, "WALL_SAFETY", 50.0)


@pytest.mark.parametrize("alpha", [0.0, 0.8, 1.0])
def test_floors_with_households_reach_the_optimum(alpha, deterministic_limit_binds):
    result = solve(household_problem(alpha=alpha))
    assert result.solver == "cp_sat"
    assert result.status == "optimal" and _gap(result) <= 0.02
    assert result.stats["floors_unmet"] == 0
    # At the optimum no envy can be a solver shortfall: every pair has a checked cause.
    assert {e.cause for e in result.envy} <= {"consumption", "floor", "pin", "weights"}


def test_a_run_stopped_by_its_limit_is_the_same_whatever_the_input_order(
    deterministic_limit_binds,
):
    base = household_problem(n=1500, slots=500, time_limit_s=0.3)
    rng = random.Random(1)
    shuffled = replace(base, candidates=tuple(rng.sample(base.candidates, len(base.candidates))),
                       options=tuple(rng.sample(base.options, len(base.options))),
                       pools=tuple(rng.sample(base.pools, len(base.pools))))  # fmt: skip
    first, again, other = solve(base), solve(base), solve(shuffled)
    assert first.assignments == again.assignments == other.assignments
    assert first.objective == other.objective
    # It stopped on its deterministic limit, not on the wall guard: nothing to warn about.
    assert first.status == "feasible"
    assert first.stats["wall_guard_stops"] == 0 and first.message == ""


def test_a_run_the_wall_guard_stopped_says_so_in_french(monkeypatch):
    """A machine far slower than the limit's units assume: the guard (here 0.1 % of the
    limit) stops the search before its deterministic limit, so the answer may differ from run
    to run, and the result says so instead of passing for a reproducible one."""
    import matching.allocation_cpsat as cpsat

    monkeypatch.setattr(cpsat, "WALL_SAFETY", 0.001)
    result = solve(household_problem(n=1500, slots=500, time_limit_s=5.0))
    assert result.status == "feasible" and result.assignments  # still an answer
    assert result.stats["wall_guard_stops"] == 1
    assert "garde de temps réel (0,001 × la limite de temps)" in result.message
    assert "peut donner une autre attribution" in result.message


def test_envy_causes_are_checked_by_trying_every_swap():
    """Each non-"shortfall" label is true: no swap (one assignee with fewer points out,
    the candidate in) is both feasible and improving. Checked by brute force here."""
    problem = household_problem(n=300, slots=120, time_limit_s=0.05)
    result = solve(problem)
    assigned = dict(result.assignments)
    cand = {c.id: c for c in problem.candidates}
    cap = {p.id: p.capacity for p in problem.pools}
    opt = {(o.candidate, o.pool): o for o in problem.options}
    used: dict[str, int] = {}
    for c, p in assigned.items():
        used[p] = used.get(p, 0) + opt[(c, p)].consumption
    for e in result.envy:
        o = opt[(e.candidate, e.pool)]
        feasible_improving = False
        for d, p in assigned.items():
            if p != e.pool or cand[d].priority >= cand[e.candidate].priority:
                continue
            frees = cap[p] - used.get(p, 0) + opt[(d, p)].consumption
            same_group = cand[d].territory == cand[e.candidate].territory
            floor_ok = e.cause != "floor" or same_group  # floors are checked by the solver
            if o.consumption <= frees and floor_ok and o.weight > opt[(d, p)].weight:
                feasible_improving = True
        if e.cause == "consumption":
            assert not feasible_improving, e
        if e.cause == "shortfall":
            assert feasible_improving, e


def test_a_model_cp_sat_refuses_is_an_error_not_a_feasible_run():
    problem = AllocationProblem(
        pools=(Pool("a", 10),), candidates=(Candidate("c", 1), Candidate("d", 2)),
        options=(Option("c", "a", 5, 2**62), Option("d", "a", 5, 3)),
    )  # fmt: skip
    with pytest.raises(ProblemError, match="refusé par le solveur"):
        solve(problem)


def _gap_problem(seed: int, m: int = 3, n: int = 7) -> AllocationProblem:
    rng = random.Random(seed)
    pools = tuple(Pool(f"A{i}", rng.randint(6, 12)) for i in range(m))
    cands = tuple(Candidate(f"J{j}") for j in range(n))
    options = tuple(Option(f"J{j}", f"A{i}", -rng.randint(10, 50), rng.randint(1, 6))
                    for j in range(n) for i in range(m))  # fmt: skip
    return AllocationProblem(pools=pools, candidates=cands, options=options, assign_all=True,
                             time_limit_s=5)  # fmt: skip


def _brute_force_gap(problem: AllocationProblem) -> int | None:
    """Best total weight placing everyone, by enumeration (tiny instances only)."""
    import itertools

    pools = [p.id for p in problem.pools]
    opt = {(o.candidate, o.pool): o for o in problem.options}
    best = None
    for choice in itertools.product(pools, repeat=len(problem.candidates)):
        used = dict.fromkeys(pools, 0)
        for c, p in zip(problem.candidates, choice, strict=True):
            used[p] += opt[(c.id, p)].consumption
        if all(used[p.id] <= p.capacity for p in problem.pools):
            total = sum(
                opt[(c.id, p)].weight for c, p in zip(problem.candidates, choice, strict=True)
            )
            best = total if best is None else max(best, total)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_assign_all_places_everyone_at_the_optimum_or_says_it_cannot(seed):
    problem = _gap_problem(seed)
    expected = _brute_force_gap(problem)
    result = solve(problem)
    if expected is None:
        assert result.status == "infeasible" and not result.assignments
        assert "placer tout le monde" in result.message
    else:
        assert result.status == "optimal" and result.objective == expected
        assert len(result.assignments) == len(problem.candidates)


def test_assign_all_with_a_candidate_without_option_is_infeasible_in_french():
    problem = replace(_gap_problem(1), candidates=(*_gap_problem(1).candidates, Candidate("seul")))
    result = solve(problem)
    assert result.status == "infeasible" and "« seul » n'a aucune option" in result.message


def test_more_workers_than_cores_are_capped():
    import os

    from matching.allocation_cpsat import worker_count

    assert worker_count(1_000) == (os.cpu_count() or 1)
    assert worker_count(1) == 1


def test_assign_all_builds_the_plain_models_variable_order_whatever_the_input_order():
    """The generalized assignment model follows the plain model's trajectory only if its
    variables come pool by pool (then candidate by candidate), from sorted ids."""
    import numpy as np

    from matching.allocation import _compile
    from matching.allocation_cpsat import _ordered, _pool_major

    base = _gap_problem(2, m=3, n=5)
    rng = random.Random(4)
    shuffled = replace(base, candidates=tuple(rng.sample(base.candidates, 5)),
                       options=tuple(rng.sample(base.options, 15)),
                       pools=tuple(rng.sample(base.pools, 3)))  # fmt: skip
    orders = []
    for problem in (base, shuffled):
        ix = _compile(problem).ix  # type: ignore[union-attr]
        options = _ordered(ix, np.arange(len(ix.opt_c)))
        pools, cands = [p.id for p in problem.pools], [c.id for c in problem.candidates]
        orders.append([(pools[ix.opt_p[options[k]]], cands[ix.opt_c[options[k]]])
                       for k in _pool_major(ix, options)])  # fmt: skip
    expected = [(f"A{i}", f"J{j}") for i in range(3) for j in range(5)]
    assert orders[0] == orders[1] == expected


@pytest.mark.parametrize("seed", range(3))
def test_assign_all_reports_its_bound_and_the_same_answer_whatever_the_input_order(seed):
    base = _gap_problem(seed)
    rng = random.Random(seed)
    shuffled = replace(base, candidates=tuple(rng.sample(base.candidates, len(base.candidates))),
                       options=tuple(rng.sample(base.options, len(base.options))),
                       pools=tuple(rng.sample(base.pools, len(base.pools))))  # fmt: skip
    first, other = solve(base), solve(shuffled)
    if first.status == "optimal":
        assert first.bound == first.objective == _brute_force_gap(base)
    assert first.assignments == other.assignments and first.objective == other.objective


def _chu_beasley_c(seed: int, m: int, n: int, time_limit_s: float) -> AllocationProblem:
    """A type-C generalized assignment instance (Chu & Beasley): capacities at 80 %."""
    rng = random.Random(seed)
    units = [[rng.randint(5, 25) for _ in range(n)] for _ in range(m)]
    pools = tuple(Pool(f"A{i:02d}", int(0.8 * sum(units[i]) / m)) for i in range(m))
    cands = tuple(Candidate(f"J{j:03d}") for j in range(n))
    options = tuple(Option(f"J{j:03d}", f"A{i:02d}", -rng.randint(10, 50), units[i][j])
                    for j in range(n) for i in range(m))  # fmt: skip
    return AllocationProblem(pools=pools, candidates=cands, options=options, assign_all=True,
                             time_limit_s=time_limit_s)  # fmt: skip


@pytest.fixture(params=["process", "thread"])
def second_search(request, monkeypatch):
    """The portfolio's second search runs in a process of its own, or in a thread where no
    process can be spawned: both ways."""
    import matching.allocation_cpsat as cpsat

    monkeypatch.setattr(cpsat, "_separate_process", lambda: request.param == "process")
    return request.param


@pytest.mark.parametrize("seed", range(4))
def test_two_workers_return_the_one_worker_answer_whenever_it_proves(seed, second_search):
    """The portfolio's answer is, by definition, the plain search's proof whenever it proves
    within its limit: the very assignment one worker returns, whichever search ends first."""
    problem = _chu_beasley_c(seed, 5, 40, time_limit_s=20)
    one = solve(problem)
    twice = [solve(replace(problem, num_workers=2)) for _ in range(2)]
    assert one.status == "optimal"
    for two in twice:
        assert two.status == "optimal" and two.bound == two.objective == one.objective
        assert two.assignments == one.assignments


def test_two_workers_stopped_on_their_limit_give_the_same_answer_over_runs_and_orders(
    second_search, monkeypatch
):
    """Neither search proves the optimum of 10 × 100 in 0.3 deterministic units: the answer
    is the better of the two at the limit, whatever the load and the input order (the wall
    guard is lifted here so that the deterministic limit binds even on a busy machine)."""
    import matching.allocation_cpsat as cpsat

    monkeypatch.setattr(cpsat, "WALL_SAFETY", 50.0)
    base = _chu_beasley_c(7, 10, 100, time_limit_s=0.3)
    rng = random.Random(3)
    shuffled = replace(base, candidates=tuple(rng.sample(base.candidates, len(base.candidates))),
                       options=tuple(rng.sample(base.options, len(base.options))),
                       pools=tuple(rng.sample(base.pools, len(base.pools))))  # fmt: skip
    answers = [solve(replace(p, num_workers=2)) for p in (base, base, shuffled, base)]
    assert answers[0].status == "feasible"
    assert {(r.assignments, r.objective, r.bound) for r in answers} == {
        (answers[0].assignments, answers[0].objective, answers[0].bound)
    }
    one = solve(base)
    assert answers[0].objective >= one.objective  # never worse than the plain search alone


def test_when_the_second_search_starts_never_changes_the_answer(second_search, monkeypatch):
    """B starts a little after A (or when A ends without a proof); its trajectory depends on
    its limit only, so starting it at once or only after A has ended gives the same answer.
    A run whose first search proves the optimum before B's start never starts B at all."""
    import matching.allocation_cpsat as cpsat

    monkeypatch.setattr(cpsat, "WALL_SAFETY", 50.0)
    started: list[float] = []
    real_start = cpsat._Search.start

    def spy(self, done):  # type: ignore[no-untyped-def]
        started.append(self.det)
        return real_start(self, done)

    monkeypatch.setattr(cpsat._Search, "start", spy)
    stopped = replace(_chu_beasley_c(7, 10, 100, time_limit_s=0.3), num_workers=2)
    answers = []
    for delay in (0.0, 1000.0):  # B with A; B only once A has ended on its limit
        monkeypatch.setattr(cpsat, "GAP_SECOND_DELAY", delay)
        started.clear()
        answers.append(solve(stopped))
        assert len(started) == 2  # A did not prove: B ran, whenever it started
    assert answers[0].status == answers[1].status == "feasible"
    assert answers[0].assignments == answers[1].assignments
    assert answers[0].objective == answers[1].objective

    proven = _chu_beasley_c(1, 5, 40, time_limit_s=20)
    one = solve(proven)
    started.clear()
    result = solve(replace(proven, num_workers=2))  # B's start still 1000 s away
    assert one.status == result.status == "optimal" and result.assignments == one.assignments
    assert started == [20.0]  # only A: it proved first, B was never started


def test_a_second_search_that_fails_leaves_the_one_worker_answer(monkeypatch, caplog):
    """The second search is an addition: a process that dies (here: a crash before it
    answers) costs its contribution, not the run. The answer is then one worker's."""
    import matching.allocation_cpsat as cpsat

    monkeypatch.setattr(cpsat, "WALL_SAFETY", 50.0)
    monkeypatch.setattr(cpsat, "GAP_SECOND_DELAY", 0.0)

    def crash(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("la seconde recherche a échoué (code -9)")

    monkeypatch.setattr(cpsat._Search, "_run_process", crash)
    base = _chu_beasley_c(7, 10, 100, time_limit_s=0.3)
    two = solve(replace(base, num_workers=2))
    one = solve(base)
    assert two.status == one.status == "feasible"
    assert two.assignments == one.assignments and two.objective == one.objective
    assert "second search failed" in caplog.text


def _plain_gap_model(problem: AllocationProblem):  # type: ignore[no-untyped-def]
    from matching.solver_import import cp_model

    model = cp_model.CpModel()
    pools = {p.id: p.capacity for p in problem.pools}
    x = [model.new_bool_var("") for _ in problem.options]
    for c in problem.candidates:
        model.add_exactly_one(
            v for v, o in zip(x, problem.options, strict=True) if o.candidate == c.id
        )
    for pid, cap in pools.items():
        model.add(sum(o.consumption * v for v, o in zip(x, problem.options, strict=True) if o.pool == pid)
                  <= cap)  # fmt: skip
    model.minimize(sum(-o.weight * v for v, o in zip(x, problem.options, strict=True)))
    return model


def test_the_portfolio_says_when_the_wall_guard_cut_a_search_short(second_search, monkeypatch):
    """Both searches stopped by the guard long before their deterministic limit: the answer
    depends on the machine's speed, and the portfolio says so; stopped by their limit, not."""
    import matching.allocation_cpsat as cpsat

    monkeypatch.setattr(cpsat, "GAP_SECOND_DELAY", 0.0)
    model = _plain_gap_model(_chu_beasley_c(7, 10, 100, time_limit_s=1))
    monkeypatch.setattr(cpsat, "WALL_SAFETY", 50.0)
    *_, guarded = cpsat._gap_portfolio(model, 0.2)
    assert not guarded
    monkeypatch.setattr(cpsat, "WALL_SAFETY", 0.002)  # 0.1 s of wall time for 50 units
    *_, guarded = cpsat._gap_portfolio(model, 50.0)
    assert guarded
