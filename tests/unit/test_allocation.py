"""Behaviour of the slot allocator: exact optima, determinism, envy, floors, pins, reasons."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.allocation import (
    AllocationProblem,
    Candidate,
    Option,
    OptionTable,
    Pin,
    Pool,
    ProblemError,
    lexicographic_weights,
    solve,
)

TERRITORIES = ["A", "B", None]


@st.composite
def small_problems(draw, unit: bool = False, alpha: float | None = None):
    n_pools = draw(st.integers(1, 3))
    n_cands = draw(st.integers(1, 5))
    pools = tuple(
        Pool(f"p{j}", draw(st.integers(0, 4)), draw(st.sampled_from(TERRITORIES)))
        for j in range(n_pools)
    )
    cands = tuple(
        Candidate(f"c{i}", draw(st.integers(0, 30)), draw(st.sampled_from(TERRITORIES)))
        for i in range(n_cands)
    )
    options = []
    for c in cands:
        for p in pools:
            if draw(st.booleans()):
                cons = 1 if unit else draw(st.integers(1, 3))
                options.append(Option(c.id, p.id, draw(st.integers(-3, 20)), cons))
    a = draw(st.sampled_from([0.0, 0.5, 1.0])) if alpha is None else alpha
    return AllocationProblem(pools, cands, tuple(options), territory_floor_alpha=a, time_limit_s=20)


def feasible_assignments(problem: AllocationProblem):
    """Every assignment (one pool or none per candidate) that fits the capacities."""
    by_cand = {
        c.id: [o for o in problem.options if o.candidate == c.id] for c in problem.candidates
    }
    cap = {p.id: p.capacity for p in problem.pools}
    for choice in itertools.product(*[[None, *opts] for opts in by_cand.values()]):
        chosen = [o for o in choice if o is not None]
        used: dict[str, int] = {}
        for o in chosen:
            used[o.pool] = used.get(o.pool, 0) + o.consumption
        if all(u <= cap[p] for p, u in used.items()):
            yield chosen


def floors_of(problem: AllocationProblem) -> dict[tuple[str, str | None], int]:
    """Independent re-statement of the documented floor rule."""
    terr = {c.id: c.territory for c in problem.candidates}
    out = {}
    for p in problem.pools:
        demand: dict[str | None, int] = {}
        for o in problem.options:
            if o.pool == p.id:
                demand[terr[o.candidate]] = demand.get(terr[o.candidate], 0) + o.consumption
        total = sum(demand.values())
        if len(demand) < 2:
            continue
        for t, d in demand.items():
            f = min(d, int(problem.territory_floor_alpha * p.capacity * d / total + 1e-9))
            if f > 0:
                out[(p.id, t)] = f
    return out


def floor_fill(problem: AllocationProblem, chosen: list[Option]) -> int:
    terr = {c.id: c.territory for c in problem.candidates}
    total = 0
    for (pid, t), f in floors_of(problem).items():
        got = sum(o.consumption for o in chosen if o.pool == pid and terr[o.candidate] == t)
        total += min(f, got)
    return total


def chosen_options(problem: AllocationProblem, result) -> list[Option]:
    index = {(o.candidate, o.pool): o for o in problem.options}
    return [index[a] for a in result.assignments]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problems())
def test_optimum_matches_brute_force_floor_first_then_weight(problem):
    result = solve(problem)
    assert result.status == "optimal"
    best = max(
        (floor_fill(problem, ch), sum(o.weight for o in ch)) for ch in feasible_assignments(problem)
    )
    chosen = chosen_options(problem, result)
    assert (floor_fill(problem, chosen), result.objective) == best
    assert result.objective == sum(o.weight for o in chosen)
    assert result.bound >= result.objective
    used: dict[str, int] = {}
    for o in chosen:
        used[o.pool] = used.get(o.pool, 0) + o.consumption
    assert all(used[p.id] <= p.capacity for p in problem.pools if p.id in used)
    assert len({c for c, _ in result.assignments}) == len(result.assignments)


@settings(max_examples=80, deadline=None)
@given(small_problems(unit=True, alpha=0.0))
def test_unit_problems_use_min_cost_flow(problem):
    result = solve(problem)
    assert result.solver == "min_cost_flow"
    assert result.objective == max(
        sum(o.weight for o in ch) for ch in feasible_assignments(problem)
    )


@st.composite
def lexicographic_problems(draw):
    n_pools = draw(st.integers(1, 4))
    n_cands = draw(st.integers(1, 12))
    pools = tuple(Pool(f"p{j}", draw(st.integers(0, 3))) for j in range(n_pools))
    cands = tuple(Candidate(f"c{i}", draw(st.integers(0, 6))) for i in range(n_cands))
    max_fit = 5
    options = tuple(
        Option(
            c.id, p.id, lexicographic_weights(c.priority, draw(st.integers(0, max_fit)), max_fit)
        )
        for c in cands
        for p in pools
        if draw(st.booleans())
    )
    return AllocationProblem(pools, cands, options)


@settings(max_examples=150, deadline=None)
@given(lexicographic_problems())
def test_lexicographic_weights_leave_no_justified_envy(problem):
    result = solve(problem)
    assert result.envy == ()
    pri = {c.id: c.priority for c in problem.candidates}
    holder = dict(result.assignments)
    by_pool: dict[str, list[int]] = {}
    for c, p in result.assignments:
        by_pool.setdefault(p, []).append(pri[c])
    for o in problem.options:
        if o.candidate not in holder:
            assert all(q >= pri[o.candidate] for q in by_pool.get(o.pool, []))


def test_raw_weights_envy_is_reported_with_cause_weights():
    problem = AllocationProblem(
        pools=(Pool("p", 1),),
        candidates=(Candidate("haut", 50), Candidate("bas", 10)),
        options=(Option("haut", "p", 1), Option("bas", "p", 9)),
    )
    result = solve(problem)
    assert result.assignments == (("bas", "p"),)
    assert [(e.candidate, e.envied, e.cause) for e in result.envy] == [("haut", "bas", "weights")]


def test_lexicographic_weights_formula():
    assert lexicographic_weights(3, 4, 9) == 34
    assert lexicographic_weights(3, 9, 9) < lexicographic_weights(4, 0, 9)
    with pytest.raises(ValueError):
        lexicographic_weights(3, 10, 9)


def _random_problem(seed: int, n_cands: int, n_pools: int, max_cons: int) -> AllocationProblem:
    rng = random.Random(seed)
    pools = tuple(Pool(f"p{j}", rng.randint(2, 8), rng.choice("AB")) for j in range(n_pools))
    cands = tuple(Candidate(f"c{i}", rng.randint(0, 5), rng.choice("AB")) for i in range(n_cands))
    options = tuple(
        Option(c.id, p.id, rng.randint(1, 4), rng.randint(1, max_cons))
        for c in cands
        for p in pools
        if rng.random() < 0.4
    )
    return AllocationProblem(pools, cands, options, time_limit_s=20)


@pytest.mark.parametrize("max_cons", [1, 3])
def test_same_answer_over_runs_and_worker_counts(max_cons):
    problem = _random_problem(3, 60, 6, max_cons)
    answers = {
        (r.assignments, r.objective, r.status)
        for workers in (1, 2)
        for r in (solve(replace(problem, num_workers=workers)) for _ in range(5))
    }
    assert len(answers) == 1
    ((assignments, _, status),) = answers
    assert status == "optimal" and assignments


def test_ties_are_broken_by_stable_hash_not_input_order():
    pools = tuple(Pool(f"p{j}", 2) for j in range(5))
    cands = tuple(Candidate(f"c{i}", 1) for i in range(20))
    options = [Option(c.id, p.id, 7) for c in cands for p in pools]
    base = solve(AllocationProblem(pools, cands, tuple(options)))
    rng = random.Random(0)
    for _ in range(3):
        rng.shuffle(options)
        shuffled = AllocationProblem(
            tuple(rng.sample(pools, 5)), tuple(rng.sample(cands, 20)), tuple(options)
        )
        assert solve(shuffled).assignments == base.assignments
    assert len(base.assignments) == 10


def test_option_table_gives_the_same_answer_as_options():
    problem = _random_problem(5, 30, 4, 1)
    cidx = {c.id: i for i, c in enumerate(problem.candidates)}
    pidx = {p.id: i for i, p in enumerate(problem.pools)}
    table = OptionTable(
        np.array([cidx[o.candidate] for o in problem.options]),
        np.array([pidx[o.pool] for o in problem.options]),
        np.array([o.weight for o in problem.options]),
    )
    columnar = replace(problem, options=(), option_table=table)
    assert solve(columnar).assignments == solve(problem).assignments


def test_floors_reserve_a_share_for_the_smaller_territory():
    # Territory A outranks B everywhere; at alpha=1 B still gets its proportional share.
    cands = tuple(Candidate(f"a{i}", 20, "A") for i in range(6)) + tuple(
        Candidate(f"b{i}", 5, "B") for i in range(3)
    )
    options = tuple(Option(c.id, "p", c.priority) for c in cands)
    pools = (Pool("p", 6),)
    no_floor = solve(AllocationProblem(pools, cands, options))
    assert {c for c, _ in no_floor.assignments} == {f"a{i}" for i in range(6)}
    floored = solve(AllocationProblem(pools, cands, options, territory_floor_alpha=1.0))
    got_b = [c for c, _ in floored.assignments if c.startswith("b")]
    assert len(got_b) == 2  # floor(1 * 6 * 3/9)
    assert floored.stats["per_pool"]["p"]["floors"] == {"A": 4, "B": 2}
    assert floored.stats["floors_unmet"] == 0
    assert {e.cause for e in floored.envy} == {"floor"}
    assert floored.stats["worst_fill_ratio"] == pytest.approx(4 / 6)
    assert no_floor.stats["worst_fill_ratio"] == 0.0


def test_conflicting_floors_fall_back_to_cp_sat_and_meet_what_they_can():
    # Two pools, each with an A floor and a B floor of 1, but only one candidate per
    # territory: the flow is infeasible, CP-SAT meets two of the four floor units.
    cands = (Candidate("a", 9, "A"), Candidate("b", 1, "B"))
    options = tuple(Option(c.id, p, c.priority) for c in cands for p in ("p", "q"))
    problem = AllocationProblem(
        (Pool("p", 2), Pool("q", 2)), cands, options, territory_floor_alpha=1.0
    )
    result = solve(problem)
    assert result.solver == "cp_sat" and result.status == "optimal"
    assert {c for c, _ in result.assignments} == {"a", "b"}
    assert result.stats["floors"] == 4 and result.stats["floors_unmet"] == 2
    assert result.objective == result.bound == 10


def test_pinned_assignment_is_forced_and_envy_blamed_on_the_pin():
    problem = AllocationProblem(
        pools=(Pool("p", 1),),
        candidates=(Candidate("haut", 50), Candidate("bas", 10)),
        options=(Option("haut", "p", 50), Option("bas", "p", 10)),
        pinned=(Pin("bas", "p"),),
    )
    result = solve(problem)
    assert result.assignments == (("bas", "p"),)
    assert [e.cause for e in result.envy] == ["pin"]
    assert result.explanations["bas"].startswith("Place déjà validée dans p")


@pytest.mark.parametrize(
    ("pins", "needle"),
    [
        ((Pin("x", "inconnu"),), "inconnu"),
        ((Pin("x", "q"),), "n'a pas d'option éligible sur « q »"),
        ((Pin("x", "p"), Pin("y", "p")), "« p », qui n'en a que 1"),
        ((Pin("x", "p"), Pin("x", "p")), "déjà une place validée"),
    ],
)
def test_infeasible_pin_is_reported_in_french(pins, needle):
    problem = AllocationProblem(
        pools=(Pool("p", 1), Pool("q", 1)),
        candidates=(Candidate("x", 1), Candidate("y", 1)),
        options=(Option("x", "p", 1), Option("y", "p", 1)),
        pinned=pins,
    )
    result = solve(problem)
    assert result.status == "infeasible" and result.solver == "none"
    assert needle in result.message
    assert result.assignments == ()
    assert all(u.reason_code == "infeasible" for u in result.unassigned)


def test_explanations_and_unassigned_reasons():
    problem = AllocationProblem(
        pools=(Pool("p", 1), Pool("vide", 0), Pool("lits", 3)),
        candidates=(
            Candidate("a", 40),
            Candidate("b", 25),
            Candidate("c", 10),
            Candidate("d", 10),
            Candidate("e", 5),
            Candidate("f", 5),
        ),
        options=(
            Option("a", "p", 40),
            Option("b", "p", 25),
            Option("c", "vide", 10),
            Option("e", "lits", 5, 2),
            Option("f", "lits", 6, 2),
        ),
        ineligible={"d": "Ressources supérieures au plafond."},
    )
    result = solve(problem)
    ex = result.explanations
    assert ex["a"] == "Place attribuée dans p : 40 points, seuil du dispositif 40 points."
    assert ex["b"] == "Aucune place : le dernier attribué dans p avait 40 points, vous en avez 25."
    assert ex["c"] == "Aucune place : le dispositif vide n'a aucune place ouverte."
    assert ex["d"] == "Ressources supérieures au plafond."
    assert ex["e"] == "Aucune place : le dernier attribué dans lits avait 5 points, vous en avez 5."
    codes = {u.candidate: u.reason_code for u in result.unassigned}
    assert codes == {"b": "outranked", "c": "no_capacity", "d": "ineligible", "e": "outranked"}
    assert result.stats["per_pool"]["lits"] == {
        "capacity": 3,
        "used": 2,
        "assigned": 1,
        "cutoff_priority": 5,
        "cutoff_weight": 6,
        "worst_fill_ratio": 0.5,
        "floors": {},
    }


def test_candidate_without_options():
    result = solve(AllocationProblem((Pool("p", 1),), (Candidate("seul", 3),), ()))
    assert result.unassigned[0].reason_code == "no_option"
    assert result.explanations["seul"] == "Aucune option éligible."


@pytest.mark.parametrize(
    ("problem", "needle"),
    [
        (AllocationProblem((Pool("p", 1), Pool("p", 2)), ()), "pools[1].id"),
        (AllocationProblem((Pool("p", -1),), ()), "pools[0].capacity"),
        (AllocationProblem((), (Candidate("c"), Candidate("c"))), "candidates[1].id"),
        (
            AllocationProblem((Pool("p", 1),), (Candidate("c"),), (Option("c", "z", 1),)),
            "options[0].pool",
        ),
        (
            AllocationProblem((Pool("p", 1),), (Candidate("c"),), (Option("z", "p", 1),)),
            "options[0].candidate",
        ),
        (
            AllocationProblem(
                (Pool("p", 1),), (Candidate("c"),), (Option("c", "p", 1), Option("c", "p", 2))
            ),
            "options[1] : option en double",
        ),
        (
            AllocationProblem((Pool("p", 1),), (Candidate("c"),), (Option("c", "p", 1, -1),)),
            "options[0].consumption",
        ),
        (
            AllocationProblem((Pool("p", 1),), (Candidate("c"),), (Option("c", "p", 2**61),)),
            "options[0].weight",
        ),
        (AllocationProblem((), (), territory_floor_alpha=1.5), "territory_floor_alpha"),
    ],
)
def test_malformed_problem_raises_problem_error_naming_the_item(problem, needle):
    with pytest.raises(ProblemError) as exc:
        solve(problem)
    assert needle in str(exc.value)


def test_cp_sat_breaks_ties_like_min_cost_flow():
    # Households of two in places of four are the unit problem doubled: the CP-SAT path must
    # settle the ties among equal-weight optima on the same pair hash as the flow path.
    pools = tuple(Pool(f"p{j}", 2) for j in range(4))
    cands = tuple(Candidate(f"c{i}", 1) for i in range(14))
    options = tuple(Option(c.id, p.id, 7) for c in cands for p in pools)
    flow = solve(AllocationProblem(pools, cands, options))
    doubled = solve(
        AllocationProblem(
            tuple(replace(p, capacity=4) for p in pools),
            cands,
            tuple(replace(o, consumption=2) for o in options),
        )
    )
    assert flow.solver == "min_cost_flow" and doubled.solver == "cp_sat"
    assert doubled.status == "optimal"
    assert doubled.assignments == flow.assignments and len(flow.assignments) == 8
