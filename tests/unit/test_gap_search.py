"""The portfolio's second search on a generalized assignment: a large-neighbourhood search
that re-assigns the candidates of a few pools at a time. Its answers are complete and within
capacity, never worse than where it started, and the same for the same model and limits."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.gap_search import (
    LNS_START,
    Stopper,
    gap_shape,
    neighbourhood_search,
    second_search,
    single_search,
)
from matching.solver_import import cp_model


def gap_model(units, costs, capacity):  # type: ignore[no-untyped-def]
    """The textbook model: x[pool][candidate], exactly one pool each, capacities, cost."""
    m, n = len(units), len(units[0])
    model = cp_model.CpModel()
    x = [[model.new_bool_var("") for _ in range(n)] for _ in range(m)]
    for j in range(n):
        model.add_exactly_one(x[i][j] for i in range(m))
    for i in range(m):
        model.add(sum(units[i][j] * x[i][j] for j in range(n)) <= capacity[i])
    model.minimize(sum(costs[i][j] * x[i][j] for i in range(m) for j in range(n)))
    return model, x


def chu_beasley_c(seed: int, m: int, n: int):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    units = [[rng.randint(5, 25) for _ in range(n)] for _ in range(m)]
    costs = [[rng.randint(10, 50) for _ in range(n)] for _ in range(m)]
    return units, costs, [int(0.8 * sum(units[i]) / m) for i in range(m)]


def check(got, units, costs, capacity, x) -> None:  # type: ignore[no-untyped-def]
    """Everyone placed once, every pool within capacity, the cost the one reported."""
    true = set(got["true"])
    m, n = len(units), len(units[0])
    placed = [[i for i in range(m) if x[i][j].index in true] for j in range(n)]
    assert all(len(p) == 1 for p in placed)
    for i in range(m):
        assert sum(units[i][j] for j in range(n) if placed[j] == [i]) <= capacity[i]
    assert got["cost"] == sum(costs[p[0]][j] for j, p in enumerate(placed))
    assert got["bound"] <= got["cost"]


def test_the_shape_is_read_from_a_plain_model_and_refused_with_anything_more():
    units, costs, capacity = chu_beasley_c(1, 4, 20)
    model, x = gap_model(units, costs, capacity)
    shape = gap_shape(model.proto)
    assert shape is not None
    assert len(shape.rhs) == 4 and shape.rhs.tolist() == capacity
    assert shape.group[x[2][7].index] == 7 and shape.pool[x[2][7].index] == 2
    assert shape.units[x[2][7].index] == units[2][7] and shape.cost[x[2][7].index] == costs[2][7]

    floors, fx = gap_model(units, costs, capacity)
    floors.add(sum(fx[0][j] for j in range(20)) >= 2)  # a floor: not a plain assignment
    excluded, ex = gap_model(units, costs, capacity)
    excluded.add_at_most_one([ex[0][0], ex[1][1]])
    maximised, mx = gap_model(units, costs, capacity)
    maximised.maximize(sum(mx[0]))
    assert (
        gap_shape(floors.proto) is gap_shape(excluded.proto) is gap_shape(maximised.proto) is None
    )


def test_the_neighbourhood_search_improves_on_its_start_and_repeats_itself():
    """10 × 100: the plain search's solution after the start is improved upon; the same
    limits give the very same assignment twice (nothing depends on the clock)."""
    units, costs, capacity = chu_beasley_c(7, 10, 100)
    model, x = gap_model(units, costs, capacity)
    shape = gap_shape(model.proto)
    assert shape is not None
    start = single_search(LNS_START, 60.0, 1, 1)
    assert start.solve(model) == cp_model.FEASIBLE
    runs = [neighbourhood_search(model, shape, 1.5, 60.0, seed=1) for _ in range(2)]
    assert runs[0] == runs[1]
    check(runs[0], units, costs, capacity, x)
    assert runs[0]["status"] == cp_model.FEASIBLE
    assert runs[0]["cost"] < start.objective_value
    assert runs[0]["det"] >= 1.5  # it ended on its limit, not on the wall guard


def test_a_stopped_search_ends_at_once_and_a_proof_is_kept():
    units, costs, capacity = chu_beasley_c(7, 10, 100)
    model, _ = gap_model(units, costs, capacity)
    stopper = Stopper()

    def stop_soon() -> None:
        # A sleep, not threading.Timer: under libfaketime 0.9.10 with a date offset (the
        # suite's later-date run), a timed wait on Python's monotonic clock never times
        # out, so a Timer never fires and the search ran to its 500 units; a sleep does.
        time.sleep(0.8)
        stopper.stop()

    threading.Thread(target=stop_soon, daemon=True).start()
    got = second_search(model, 500.0, 600.0, 1, stopper)
    assert got["det"] < 500.0  # stopped long before its limit
    stopped = Stopper()
    stopped.stop()  # before it starts, or between two steps: no step runs, nothing fails
    early = second_search(model, 500.0, 600.0, 1, stopped)
    assert early["status"] == cp_model.UNKNOWN and early["det"] < 1.0

    small, costs5, cap5 = chu_beasley_c(1, 3, 12)
    tiny, tx = gap_model(small, costs5, cap5)
    proof = second_search(tiny, 10.0, 60.0, 1)
    assert proof["status"] == cp_model.OPTIMAL and proof["bound"] == proof["cost"]
    check(proof, small, costs5, cap5, tx)


def test_a_stop_sent_just_before_the_solve_begins_is_not_lost():
    """The stop arrives after ``Stopper.solve``'s check but before CP-SAT's solve exists
    (where CP-SAT's own ``stop_search`` does nothing): the solve still stops at once,
    instead of running to its 200 units."""
    units, costs, capacity = chu_beasley_c(7, 20, 200)  # no proof for minutes
    model, _ = gap_model(units, costs, capacity)
    stopper = Stopper()

    class StoppedOnEntry(cp_model.CpSolver):  # type: ignore[misc]
        def solve(self, model, solution_callback=None):  # type: ignore[no-untyped-def]
            stopper.stop()  # the worst moment: checked already, not started yet
            return super().solve(model, solution_callback)

    solver = StoppedOnEntry()
    solver.parameters.max_deterministic_time = 200.0
    solver.parameters.num_workers = 1
    status = stopper.solve(model, solver)
    assert solver.response_proto.deterministic_time < 5.0
    assert status != cp_model.OPTIMAL  # stopped, not ended by a proof


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    m=st.integers(2, 5),
    n=st.integers(3, 25),
    seed=st.integers(0, 10_000),
    tight=st.floats(0.5, 1.5),
)
def test_every_answer_is_complete_and_within_capacity(m, n, seed, tight):  # type: ignore[no-untyped-def]
    """Any instance: an answer places everyone once within every capacity, with the cost it
    reports; or no answer at all where nobody can be placed that way."""
    rng = np.random.default_rng(seed)
    units = rng.integers(1, 30, (m, n)).tolist()
    costs = rng.integers(-20, 50, (m, n)).tolist()
    capacity = [max(max(row), int(tight * sum(row) / m)) for row in units]
    model, x = gap_model(units, costs, capacity)
    got = second_search(model, 0.3, 60.0, 3)
    if got["status"] in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        check(got, units, costs, capacity, x)
    else:
        assert got["status"] in (cp_model.INFEASIBLE, cp_model.UNKNOWN)
