"""Stable mechanism (deferred acceptance): stability, people-optimality, floors, pins, order.

Small random instances are checked against brute force: every matching is enumerated and
stability is re-defined here from the specification (pools rank by points then by the
pair hash; reserved units of each floored territory first, then the rest by rank), so a
bug in ``matching.stable``'s choice function cannot hide behind itself.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, replace
from fractions import Fraction

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
    _pair_hash,
    solve,
)
from matching.stable import (
    StableOutcome,
    _stable_general,
    acceptable_pools,
    blocking_pairs,
    restrict_to_preferences,
    stable_allocation,
)

TERRITORIES = ["A", "B", None]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- instances


@st.composite
def markets(draw, *, unit: bool = True, floors: bool = False, pins: bool = False):
    """(problem, preferences): ≤ 6 candidates, ≤ 3 pools, capacities 0–3, few distinct
    point values (ties are frequent), preferences stated or "any"."""
    n_pools = draw(st.integers(1, 3))
    n_cands = draw(st.integers(1, 6))
    pools = tuple(
        Pool(f"p{j}", draw(st.integers(0, 3)), draw(st.sampled_from(TERRITORIES)))
        for j in range(n_pools)
    )
    cands = tuple(
        Candidate(f"c{i}", draw(st.integers(0, 4)), draw(st.sampled_from(TERRITORIES)))
        for i in range(n_cands)
    )
    options = []
    for c in cands:
        for p in pools:
            if draw(st.booleans()):
                cons = 1 if unit else draw(st.integers(1, 2))
                options.append(Option(c.id, p.id, draw(st.integers(0, 9)), cons))
    pinned: list[Pin] = []
    if pins:
        left = {p.id: p.capacity for p in pools}
        for c in cands:
            mine = [o for o in options if o.candidate == c.id]
            if mine and draw(st.integers(0, 3)) == 0:
                o = draw(st.sampled_from(mine))
                if o.consumption <= left[o.pool]:
                    left[o.pool] -= o.consumption
                    pinned.append(Pin(c.id, o.pool))
    alpha = draw(st.sampled_from([0.5, 1.0])) if floors else 0.0
    prefs: dict[str, list[str]] = {}
    for c in cands:
        if draw(st.booleans()):
            chosen = draw(st.lists(st.sampled_from([p.id for p in pools]), unique=True))
            if draw(st.integers(0, 5)) == 0:
                chosen.append("inconnu")  # unknown ids are dropped
            prefs[c.id] = chosen
    problem = AllocationProblem(
        pools, cands, tuple(options), tuple(pinned), territory_floor_alpha=alpha
    )
    return problem, prefs


# --------------------------------------------------------------------------- reference


@dataclass
class Ref:
    """The specification re-implemented naively, for brute force."""

    problem: AllocationProblem
    prefs: dict[str, list[str]]

    def __post_init__(self) -> None:
        pr = self.problem
        self.opt = {(o.candidate, o.pool): o for o in pr.options}
        self.cand = {c.id: c for c in pr.candidates}
        self.pinned = {x.candidate: x.pool for x in pr.pinned}
        ids_c = [c.id for c in pr.candidates]
        ids_p = [p.id for p in pr.pools]
        cs = np.array([ids_c.index(c) for c, _ in self.opt], dtype=np.int64)
        ps = np.array([ids_p.index(p) for _, p in self.opt], dtype=np.int64)
        mix = _pair_hash(pr, cs, ps) if len(cs) else np.zeros(0, np.uint64)
        self.hash = {k: int(h) for k, h in zip(self.opt, mix.tolist(), strict=True)}
        # Acceptable lists.
        self.accept: dict[str, list[str]] = {}
        for cand in pr.candidates:
            mine = [p for (cc, p) in self.opt if cc == cand.id]
            if cand.id in self.prefs:
                seen: list[str] = []
                for p in self.prefs[cand.id]:
                    if p in mine and p not in seen:
                        seen.append(p)
                self.accept[cand.id] = seen
            else:
                cid = cand.id
                self.accept[cid] = sorted(
                    mine, key=lambda p: (-self.opt[cid, p].weight, -self.hash[cid, p], p)
                )
        # Floors on the demand of those who accept the pool (pinned options included).
        self.residual = {p.id: p.capacity for p in pr.pools}
        pinned_units: dict[tuple[str, str | None], int] = {}
        for c, p in self.pinned.items():
            k = self.opt[c, p].consumption
            self.residual[p] -= k
            key = (p, self.cand[c].territory)
            pinned_units[key] = pinned_units.get(key, 0) + k
        alpha = Fraction(pr.territory_floor_alpha)
        self.reserve: dict[str, list[tuple[str | None, int]]] = {}
        for pool in pr.pools:
            demand: dict[str | None, int] = {}
            for (c, p), o in self.opt.items():
                if p == pool.id and (p in self.accept[c] or self.pinned.get(c) == p):
                    t = self.cand[c].territory
                    demand[t] = demand.get(t, 0) + o.consumption
            total = sum(demand.values())
            if len(demand) < 2 or alpha == 0:
                continue
            left = self.residual[pool.id]
            items = []
            for t in sorted(demand, key=lambda t: (t is not None, t or "")):
                f = min(demand[t], int(alpha * pool.capacity * demand[t] / total))
                r = min(f - pinned_units.get((pool.id, t), 0), left)
                if r > 0:
                    items.append((t, r))
                    left -= r
            self.reserve[pool.id] = items

    def floors(self) -> dict[tuple[str, str | None], int]:
        """Reserved units (after pins), by (pool, territory)."""
        return {(p, t): r for p, items in self.reserve.items() for t, r in items}

    def pool_rank(self, c: str, p: str) -> tuple[int, int, str]:
        return (-self.cand[c].priority, -self.hash[c, p], c)

    def choose(self, p: str, applicants: list[str]) -> set[str]:
        ordered = sorted(applicants, key=lambda c: self.pool_rank(c, p))
        taken: set[str] = set()
        used = 0
        for t, r in self.reserve.get(p, []):
            left = r
            for c in ordered:
                k = self.opt[c, p].consumption
                if self.cand[c].territory == t and k <= left:
                    taken.add(c)
                    left -= k
            used += r - left
        budget = self.residual[p] - used
        for c in ordered:
            k = self.opt[c, p].consumption
            if c not in taken and k <= budget:
                taken.add(c)
                budget -= k
        return taken

    def pos(self, c: str, p: str | None) -> int:
        if p is None or p not in self.accept[c]:
            return 10**9
        return self.accept[c].index(p)

    def free(self) -> list[str]:
        return [c.id for c in self.problem.candidates if c.id not in self.pinned]

    def matchings(self):
        """Every capacity-feasible matching of the free candidates to acceptable pools."""
        free = self.free()
        for choice in itertools.product(*[[None, *self.accept[c]] for c in free]):
            used = dict.fromkeys(self.residual, 0)
            for c, p in zip(free, choice, strict=True):
                if p is not None:
                    used[p] += self.opt[c, p].consumption
            if all(used[p] <= self.residual[p] for p in used):
                yield dict(zip(free, choice, strict=True))

    def blocking(self, m: dict[str, str | None]) -> set[tuple[str, str]]:
        out = set()
        for c in self.free():
            for p in self.accept[c][: self.pos(c, m.get(c))]:
                members = [d for d, q in m.items() if q == p]
                if c in self.choose(p, [*members, c]):
                    out.add((c, p))
        return out


def as_match(ref: Ref, outcome: StableOutcome) -> dict[str, str | None]:
    got = dict(outcome.assignments)
    return {c: got.get(c) for c in ref.free()}


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(markets(unit=True, floors=False, pins=True))
def test_unit_no_floor_stable_and_people_optimal(market):
    problem, prefs = market
    ref = Ref(problem, prefs)
    out = stable_allocation(problem, prefs)
    m = as_match(ref, out)
    assert ref.blocking(m) == set()
    assert blocking_pairs(problem, prefs, out.assignments) == ()
    stable = [s for s in ref.matchings() if not ref.blocking(s)]
    assert stable, "a stable matching always exists with unit consumption"
    for s in stable:
        for c in ref.free():
            assert ref.pos(c, m[c]) <= ref.pos(c, s[c]), (c, m, s)


@SETTINGS
@given(markets(unit=True, floors=True, pins=True))
def test_unit_with_floors_stable_and_people_optimal(market):
    """Reserved units make a substitutable choice function: still the people-optimal
    stable matching (with respect to that choice function)."""
    problem, prefs = market
    ref = Ref(problem, prefs)
    out = stable_allocation(problem, prefs)
    m = as_match(ref, out)
    assert ref.blocking(m) == set()
    assert blocking_pairs(problem, prefs, out.assignments) == ()
    stable = [s for s in ref.matchings() if not ref.blocking(s)]
    for s in stable:
        for c in ref.free():
            assert ref.pos(c, m[c]) <= ref.pos(c, s[c])
    assert out == _stable_general(problem, prefs)  # both code paths agree


@SETTINGS
@given(markets(unit=True, floors=True, pins=True))
def test_outcome_is_feasible_and_acceptable(market):
    problem, prefs = market
    ref = Ref(problem, prefs)
    out = stable_allocation(problem, prefs)
    got = dict(out.assignments)
    assert len(got) == len(out.assignments) == out.served
    for c, p in ref.pinned.items():
        assert got[c] == p
    used = {p.id: 0 for p in problem.pools}
    for c, p in out.assignments:
        used[p] += ref.opt[c, p].consumption
        if c not in ref.pinned:
            assert p in ref.accept[c]
    assert all(used[p.id] <= p.capacity for p in problem.pools)
    assert out.weight == sum(ref.opt[c, p].weight for c, p in out.assignments)
    # Floors where reachable: a territory below its reserved units in a pool has nobody
    # left who accepts the pool and is not placed at least as well.
    for (p, t), r in ref.floors().items():
        placed = sum(1 for c, q in got.items() if q == p and ref.cand[c].territory == t)
        pinned_here = sum(1 for c, q in ref.pinned.items() if q == p and ref.cand[c].territory == t)
        if placed - pinned_here < r:
            for c in ref.free():
                if ref.cand[c].territory == t and p in ref.accept[c]:
                    assert ref.pos(c, got.get(c)) <= ref.pos(c, p)


@SETTINGS
@given(markets(unit=False, floors=True, pins=True))
def test_households_feasible_and_blocking_pairs_reported_exactly(market):
    """With several units per person a stable matching may not exist; the outcome stays
    feasible and acceptable, ``blocking_pairs`` reports exactly the blocking pairs, and
    when a stable matching exists the mechanism finds one."""
    problem, prefs = market
    ref = Ref(problem, prefs)
    out = stable_allocation(problem, prefs)
    m = as_match(ref, out)
    used = {p.id: 0 for p in problem.pools}
    for c, p in out.assignments:
        used[p] += ref.opt[c, p].consumption
        if c not in ref.pinned:
            assert p in ref.accept[c]
    assert all(used[p.id] <= p.capacity for p in problem.pools)
    found = ref.blocking(m)
    assert set(blocking_pairs(problem, prefs, out.assignments)) == found
    if found:
        assert not any(not ref.blocking(s) for s in ref.matchings())


@SETTINGS
@given(markets(unit=False, floors=True, pins=True), st.randoms(use_true_random=False))
def test_blocking_pairs_of_any_matching(market, rnd):
    """On any feasible matching (not only the mechanism's), ``blocking_pairs`` is the
    specification's set, floors and households included."""
    problem, prefs = market
    ref = Ref(problem, prefs)
    every = list(ref.matchings())
    for m in rnd.sample(every, min(5, len(every))):
        pairs = [*ref.pinned.items(), *((c, p) for c, p in m.items() if p is not None)]
        assert set(blocking_pairs(problem, prefs, rnd.sample(pairs, len(pairs)))) == ref.blocking(m)


@SETTINGS
@given(markets(unit=False, floors=False, pins=True))
def test_optimum_weighs_at_least_the_stable_outcome(market):
    """Without floors only: the optimum's floors are hard, while a reserved unit nobody of
    the territory wants goes to others in the stable mechanism, so with floors the stable
    weight can exceed the optimum's (e.g. one A candidate preferring a non-shared pool is
    forced into the shared one by A's floor there, at a lower weight)."""
    problem, prefs = market
    out = stable_allocation(problem, prefs)
    best = solve(restrict_to_preferences(problem, prefs))
    assert best.status == "optimal"
    assert best.objective >= out.weight
    # And the optimum's blocking pairs are computed on the same definition.
    ref = Ref(problem, prefs)
    free = {c: p for c, p in best.assignments if c not in ref.pinned}
    m = {c: free.get(c) for c in ref.free()}
    assert set(blocking_pairs(problem, prefs, best.assignments)) == ref.blocking(m)


@SETTINGS
@given(markets(unit=False, floors=True, pins=True), st.randoms(use_true_random=False))
def test_order_independent(market, rnd):
    problem, prefs = market
    shuffled = replace(
        problem,
        pools=tuple(rnd.sample(problem.pools, len(problem.pools))),
        candidates=tuple(rnd.sample(problem.candidates, len(problem.candidates))),
        options=tuple(rnd.sample(problem.options, len(problem.options))),
        pinned=tuple(rnd.sample(problem.pinned, len(problem.pinned))),
    )
    prefs2 = dict(rnd.sample(list(prefs.items()), len(prefs)))
    assert stable_allocation(shuffled, prefs2) == stable_allocation(problem, prefs)
    assert acceptable_pools(shuffled, prefs2) == acceptable_pools(problem, prefs)


@SETTINGS
@given(markets(unit=True, floors=True, pins=True))
def test_option_table_same_as_options(market):
    problem, prefs = market
    cidx = {c.id: i for i, c in enumerate(problem.candidates)}
    pidx = {p.id: i for i, p in enumerate(problem.pools)}
    o = problem.options
    table = OptionTable(
        np.array([cidx[x.candidate] for x in o], dtype=np.int64),
        np.array([pidx[x.pool] for x in o], dtype=np.int64),
        np.array([x.weight for x in o], dtype=np.int64),
        np.array([x.consumption for x in o], dtype=np.int64),
    )
    columnar = replace(problem, options=(), option_table=table)
    assert stable_allocation(columnar, prefs) == stable_allocation(problem, prefs)


# --------------------------------------------------------------------------- known answers


def classic() -> AllocationProblem:
    """Gale–Shapley's textbook 3×3: people x, y, z; pools A, B, C of one unit each."""
    pools = (Pool("A", 1), Pool("B", 1), Pool("C", 1))
    cands = (Candidate("x", 30), Candidate("y", 20), Candidate("z", 10))
    return AllocationProblem(
        pools, cands, tuple(Option(c.id, p.id, c.priority) for c in cands for p in pools)
    )


def test_classic_three_by_three():
    """x and y both want A: A keeps x (more points), y falls to C, z gets B; the optimum
    (same weight for everyone) is also stable here, but y/z swapped is not."""
    prefs = {"x": ["A", "B", "C"], "y": ["A", "C", "B"], "z": ["B", "A", "C"]}
    out = stable_allocation(classic(), prefs)
    assert out.assignments == (("x", "A"), ("y", "C"), ("z", "B"))
    assert (out.weight, out.served) == (60, 3)
    assert blocking_pairs(classic(), prefs, out.assignments) == ()
    assert blocking_pairs(classic(), prefs, [("x", "B"), ("y", "A"), ("z", "C")]) == (("x", "A"),)
    # Nobody unassigned beats nothing: an empty matching is blocked everywhere acceptable.
    assert len(blocking_pairs(classic(), prefs, [])) == 9


def test_people_optimal_against_pool_optimal():
    """Two stable matchings: people proposing gives each person their first choice."""
    pools = (Pool("A", 1), Pool("B", 1))
    cands = (Candidate("x", 10), Candidate("y", 20))
    opts = tuple(Option(c.id, p.id, 1) for c in cands for p in pools)
    # Pools rank y first everywhere, yet y prefers B and x prefers A.
    problem = AllocationProblem(pools, cands, opts)
    out = stable_allocation(problem, {"x": ["A", "B"], "y": ["B", "A"]})
    assert out.assignments == (("x", "A"), ("y", "B"))
    out = stable_allocation(problem, {"x": ["A", "B"], "y": ["A", "B"]})
    assert out.assignments == (("x", "B"), ("y", "A"))


def test_acceptable_pools_restricted_to_options_and_any_by_weight():
    pools = (Pool("A", 1), Pool("B", 1), Pool("C", 1))
    cands = (Candidate("x", 1), Candidate("y", 1), Candidate("z", 1))
    opts = (
        Option("x", "A", 3),
        Option("x", "B", 7),
        Option("y", "A", 1),
        Option("y", "C", 1),
    )
    problem = AllocationProblem(pools, cands, opts)
    got = acceptable_pools(problem, {"y": ["B", "C", "X", "C"]})
    # x: "any", by weight; y: stated order, B dropped (no option), unknown and repeated
    # ids dropped; z has no option at all.
    assert got == {"x": ("B", "A"), "y": ("C",)}
    assert acceptable_pools(problem, {"y": []}) == {"x": ("B", "A"), "y": ()}


def test_floors_reserve_units():
    """Pool of 4 units shared by territories A (many, more points) and B (few points):
    with alpha = 1, B's proportional share (2 of 4 units) is reserved for B's best even
    though A's candidates all rank above them; without floors A takes everything."""
    pool = (Pool("P", 4),)
    cands = tuple(Candidate(f"a{i}", 50 + i, "A") for i in range(4)) + tuple(
        Candidate(f"b{i}", i, "B") for i in range(4)
    )
    opts = tuple(Option(c.id, "P", c.priority) for c in cands)
    plain = AllocationProblem(pool, cands, opts)
    out = stable_allocation(plain)
    assert {c for c, _ in out.assignments} == {"a0", "a1", "a2", "a3"}
    floored = replace(plain, territory_floor_alpha=1.0)
    out = stable_allocation(floored)
    assert {c for c, _ in out.assignments} == {"a2", "a3", "b2", "b3"}
    # A pinned B candidate counts towards B's floor.
    pinned = replace(floored, pinned=(Pin("b0", "P"),))
    out = stable_allocation(pinned)
    assert {c for c, _ in out.assignments} == {"a2", "a3", "b0", "b3"}
    # Reserved units nobody of the territory takes go to the others: every B candidate
    # prefers pool Q (B only, no floor) and gets it, so A fills P.
    two = replace(floored, pools=(Pool("P", 4), Pool("Q", 4)),
                  options=opts + tuple(Option(f"b{i}", "Q", 0) for i in range(4)))  # fmt: skip
    prefs = {f"b{i}": ["Q", "P"] for i in range(4)}
    out = stable_allocation(two, prefs)
    assert dict(out.assignments) == {
        **{f"a{i}": "P" for i in range(4)},
        **{f"b{i}": "Q" for i in range(4)},
    }


def test_households_skip_what_does_not_fit():
    """A pool of 3 units ranks h (needs 2 units) between two singles: h and the best
    single fit, the other single is refused (no unit left)."""
    pool = (Pool("P", 3),)
    cands = (Candidate("s1", 30), Candidate("h", 20), Candidate("s2", 10), Candidate("s3", 5))
    opts = (
        Option("s1", "P", 1),
        Option("h", "P", 1, consumption=2),
        Option("s2", "P", 1),
        Option("s3", "P", 1),
    )
    out = stable_allocation(AllocationProblem(pool, cands, opts))
    assert out.assignments == (("h", "P"), ("s1", "P"))
    # Capacity 2: h does not fit beside s1, s2 does (skip and continue).
    out = stable_allocation(AllocationProblem((Pool("P", 2),), cands, opts))
    assert out.assignments == (("s1", "P"), ("s2", "P"))


def test_pins_are_never_displaced():
    pools = (Pool("A", 1), Pool("B", 1))
    cands = (Candidate("x", 1), Candidate("y", 99))
    opts = (Option("x", "A", 1), Option("y", "A", 1), Option("y", "B", 1))
    problem = AllocationProblem(pools, cands, opts, pinned=(Pin("x", "A"),))
    out = stable_allocation(problem, {"y": ["A", "B"]})
    assert out.assignments == (("x", "A"), ("y", "B"))
    assert blocking_pairs(problem, {"y": ["A", "B"]}, out.assignments) == ()


def test_ties_broken_by_the_pair_hash_not_by_order():
    pools = (Pool("A", 1),)
    cands = tuple(Candidate(f"c{i}", 5) for i in range(6))
    opts = tuple(Option(c.id, "A", 1) for c in cands)
    problem = AllocationProblem(pools, cands, opts)
    winner = stable_allocation(problem).assignments
    rng = random.Random(3)
    for _ in range(5):
        shuffled = replace(
            problem, candidates=tuple(rng.sample(cands, 6)), options=tuple(rng.sample(opts, 6))
        )
        assert stable_allocation(shuffled).assignments == winner
    ref = Ref(problem, {})
    expected = min((c.id for c in cands), key=lambda c: ref.pool_rank(c, "A"))
    assert winner == ((expected, "A"),)


def test_bad_input_gives_french_errors():
    problem = classic()
    with pytest.raises(ProblemError, match="inconnu"):
        blocking_pairs(problem, None, [("x", "Z")])
    with pytest.raises(ProblemError, match="déjà une place"):
        blocking_pairs(problem, None, [("x", "A"), ("x", "B")])
    no_option = replace(problem, options=problem.options[1:])
    with pytest.raises(ProblemError, match="pas d'option"):
        blocking_pairs(no_option, None, [("x", "A")])
    bad_pin = replace(problem, pinned=(Pin("x", "Z"),))
    with pytest.raises(ProblemError, match="Affectation validée"):
        stable_allocation(bad_pin)
    dup = replace(problem, options=problem.options + problem.options[:1])
    with pytest.raises(ProblemError, match="en double"):
        stable_allocation(dup)


def test_preferences_default_to_the_problems():
    """Without a ``preferences`` argument the problem's own stated preferences apply (the
    optimal mechanism already keeps only those options)."""
    problem = classic()
    if not hasattr(problem, "preferences"):
        pytest.skip("AllocationProblem has no preferences field")
    prefs = {"x": ("A", "B", "C"), "y": ("A", "C", "B"), "z": ("B", "A", "C")}
    with_prefs = replace(problem, preferences=prefs)
    assert stable_allocation(with_prefs) == stable_allocation(problem, prefs)
    assert stable_allocation(with_prefs).assignments == (("x", "A"), ("y", "C"), ("z", "B"))
    assert acceptable_pools(with_prefs, None) == acceptable_pools(problem, prefs)
