"""Coupling rules ("IML excludes ALT") in the allocator, and options that take several
units: exact optima against brute force, CP-SAT only where the flow cannot answer,
reasons and envy causes, the same answer whatever the input order."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.allocation import (
    AllocationProblem,
    Candidate,
    Exclusion,
    Option,
    Pin,
    Pool,
    ProblemError,
    solve,
)
from tests.unit.test_allocation import (
    chosen_options,
    feasible_assignments,
    floor_fill,
    small_problems,
)


def breaks(problem: AllocationProblem, pairs) -> bool:  # type: ignore[no-untyped-def]
    """Whether (candidate, pool) pairs hold two assignments of one exclusion."""
    pairs = list(pairs)
    return any(
        sum(1 for c, p in pairs if c in ex.candidates and p in ex.pools) > 1
        for ex in problem.exclusions
    )


@st.composite
def problems_with_exclusions(draw, unit: bool = False):  # type: ignore[no-untyped-def]
    problem = draw(small_problems(unit=unit))
    ids = [c.id for c in problem.candidates]
    pools = [p.id for p in problem.pools]
    exclusions = tuple(
        Exclusion(
            tuple(draw(st.lists(st.sampled_from(ids), min_size=1, max_size=3, unique=True))),
            tuple(draw(st.lists(st.sampled_from(pools), min_size=1, max_size=3, unique=True))),
        )
        for _ in range(draw(st.integers(1, 3)))
    )
    return replace(problem, exclusions=exclusions)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems_with_exclusions())
def test_optimum_with_exclusions_matches_brute_force(problem):
    result = solve(problem)
    assert result.status == "optimal"
    chosen = chosen_options(problem, result)
    assert not breaks(problem, result.assignments)
    best = max(
        (floor_fill(problem, ch), sum(o.weight for o in ch))
        for ch in feasible_assignments(problem)
        if not breaks(problem, ((o.candidate, o.pool) for o in ch))
    )
    assert (floor_fill(problem, chosen), result.objective) == best
    assert result.bound >= result.objective


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems_with_exclusions(unit=True), st.randoms(use_true_random=False))
def test_same_answer_whatever_the_order_of_the_input(problem, rng):
    def shuffled(items):  # type: ignore[no-untyped-def]
        items = list(items)
        rng.shuffle(items)
        return tuple(items)

    other = replace(
        problem,
        pools=shuffled(problem.pools),
        candidates=shuffled(problem.candidates),
        options=shuffled(problem.options),
        exclusions=shuffled(
            Exclusion(shuffled(e.candidates), shuffled(e.pools)) for e in problem.exclusions
        ),
    )
    a, b = solve(problem), solve(other)
    assert (a.assignments, a.objective, a.status) == (b.assignments, b.objective, b.status)


def _two_components(with_rule: bool) -> AllocationProblem:
    """Component 1: pools IML and ALT, one person referred twice (m1 to IML, m2 to ALT);
    component 2: pool OTHER, unrelated people."""
    pools = (Pool("IML", 1), Pool("ALT", 1), Pool("OTHER", 2))
    cands = (Candidate("m1", 30), Candidate("m2", 30), Candidate("x", 10), Candidate("y", 5))
    cands += (Candidate("z", 8),)
    options = (
        Option("m1", "IML", 300),
        Option("m2", "ALT", 290),
        Option("x", "ALT", 100),
        Option("y", "OTHER", 50),
        Option("z", "OTHER", 80),
    )
    rules = (Exclusion(("m1", "m2"), ("IML", "ALT")),) if with_rule else ()
    return AllocationProblem(pools, cands, options, exclusions=rules)


def test_only_the_component_with_a_broken_exclusion_goes_to_cp_sat():
    free = solve(_two_components(False))
    assert free.solver == "min_cost_flow"
    assert ("m2", "ALT") in free.assignments and ("m1", "IML") in free.assignments

    result = solve(_two_components(True))
    assert result.solver == "cp_sat" and result.status == "optimal"
    assert result.stats["components"] == 2 and result.stats["cp_sat_components"] == 1
    # One of the person's two offers only; ALT goes to x instead: 300 + 100 > 290 + 0.
    assert result.assignments == (("m1", "IML"), ("x", "ALT"), ("y", "OTHER"), ("z", "OTHER"))
    assert result.objective == result.bound == 300 + 100 + 50 + 80


def test_an_exclusion_merges_the_components_it_links():
    # Without rules nobody links two pools: three components. The rule on m1 (IML) and y
    # (OTHER) makes {IML, OTHER} one component, solved by CP-SAT; ALT keeps the flow.
    problem = replace(
        _two_components(False), exclusions=(Exclusion(("m1", "y"), ("IML", "OTHER")),)
    )
    result = solve(problem)
    assert result.stats["components"] == 2 and result.stats["cp_sat_components"] == 1
    # m1 in IML (300) beats y in OTHER (50): y waits, z takes OTHER, m2 keeps ALT.
    assert result.assignments == (("m1", "IML"), ("m2", "ALT"), ("z", "OTHER"))
    assert result.objective == 300 + 290 + 80


def test_exclusion_kept_by_the_flow_answer_stays_on_the_flow():
    problem = replace(_two_components(True), exclusions=(Exclusion(("m1", "x"), ("IML", "OTHER")),))
    result = solve(problem)  # x has no option on OTHER: the rule cannot bind
    assert result.solver == "min_cost_flow"
    assert result.assignments == solve(_two_components(False)).assignments


def test_pin_in_an_exclusion_shuts_the_other_offers_with_a_reason():
    problem = replace(_two_components(True), pinned=(Pin("m1", "IML"),))
    result = solve(problem)
    assert ("m1", "IML") in result.assignments
    assert all(c != "m2" for c, _ in result.assignments)
    assert result.explanations["m2"] == (
        "Aucune place dans ALT : l'attribution validée de m1 dans IML l'exclut (une seule de "
        "ces offres par personne)."
    )
    assert {u.candidate: u.reason_code for u in result.unassigned}["m2"] == "excluded"
    # m2 has more points than x, who got ALT: the envy is the exclusion's, not a shortfall.
    (envy,) = result.envy
    assert (envy.candidate, envy.pool, envy.envied, envy.cause) == ("m2", "ALT", "x", "exclusion")


def test_two_pins_breaking_one_exclusion_are_an_infeasible_run_in_french():
    problem = replace(_two_components(True), pinned=(Pin("m1", "IML"), Pin("m2", "ALT")))
    result = solve(problem)
    assert result.status == "infeasible" and result.solver == "none"
    assert "Affectations validées incompatibles" in result.message
    assert "règle d'exclusion n° 1" in result.message


def test_envy_blocked_by_an_exclusion_is_labelled_so():
    # m2 (30 points) waits while x (10) has ALT: giving m2 ALT would give the person both.
    result = solve(_two_components(True))
    (envy,) = result.envy
    assert (envy.candidate, envy.pool, envy.cause) == ("m2", "ALT", "exclusion")


@pytest.mark.parametrize(
    ("exclusions", "needle"),
    [
        ((Exclusion(("nobody",), ("IML",)),), "exclusions[0].candidates[0] : candidat « nobody »"),
        ((Exclusion(("m1",), ("IML", "NOPE")),), "exclusions[0].pools[1] : dispositif « NOPE »"),
        ((Exclusion((), ("IML",)),), "exclusions[0].candidates : liste vide"),
        ((Exclusion(("m1",), ()),), "exclusions[0].pools : liste vide"),
    ],
)
def test_malformed_exclusions_are_french_errors(exclusions, needle):
    with pytest.raises(ProblemError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        solve(replace(_two_components(False), exclusions=exclusions))


# --------------------------------------------------------------------------- units > 1


def test_a_household_needing_several_places_takes_them_all_or_none():
    pools = (Pool("shelter", 5, "A"),)
    cands = (Candidate("big", 40, "A"), Candidate("s1", 30, "A"), Candidate("s2", 20, "A"))
    cands += (Candidate("s3", 10, "A"),)
    options = (
        Option("big", "shelter", 400, 4),  # a household of four
        Option("s1", "shelter", 300, 1),
        Option("s2", "shelter", 200, 1),
        Option("s3", "shelter", 100, 1),
    )
    result = solve(AllocationProblem(pools, cands, options))
    # 400 + 300 = 700 (5 places) beats 300 + 200 + 100 = 600 (3 places).
    assert result.assignments == (("big", "shelter"), ("s1", "shelter"))
    assert result.stats["per_pool"]["shelter"]["used"] == 5
    assert result.status == "optimal" and result.solver == "cp_sat"
    s2 = {u.candidate: u for u in result.unassigned}["s2"]
    assert s2.reason_code == "outranked"


def test_floors_with_households_count_units_not_people():
    # Territory B asks for 3 of 6 units: alpha 1 reserves it floor(6 * 3 / 9) = 2 units,
    # which only its household of two can fill, even though A's single people weigh more.
    pools = (Pool("shared", 6),)
    cands = tuple(Candidate(f"a{i}", 50 - i, "A") for i in range(6))
    cands += (Candidate("b-family", 10, "B"), Candidate("b-single", 5, "B"))
    options = tuple(Option(c.id, "shared", c.priority * 10, 1) for c in cands[:6])
    options += (Option("b-family", "shared", 100, 2), Option("b-single", "shared", 50, 1))
    result = solve(AllocationProblem(pools, cands, options, territory_floor_alpha=1.0))
    assert result.status == "optimal" and result.stats["floors_unmet"] == 0
    assert ("b-family", "shared") in result.assignments
    assert result.stats["per_pool"]["shared"]["floors"] == {"A": 4, "B": 2}
    placed_a = [c for c, _ in result.assignments if c.startswith("a")]
    assert placed_a == ["a0", "a1", "a2", "a3"]  # the four best of A, in the 4 units left


def test_households_with_exclusions_match_brute_force_on_a_fixed_instance():
    rng = random.Random(11)
    pools = tuple(Pool(f"p{j}", rng.randint(2, 5), rng.choice("AB")) for j in range(3))
    cands = tuple(Candidate(f"c{i}", rng.randint(0, 30), rng.choice("AB")) for i in range(6))
    options = tuple(
        Option(c.id, p.id, rng.randint(1, 20), rng.randint(1, 3))
        for c in cands
        for p in pools
        if rng.random() < 0.6
    )
    problem = AllocationProblem(
        pools,
        cands,
        options,
        territory_floor_alpha=0.5,
        exclusions=(Exclusion(("c0", "c1", "c2"), ("p0", "p1")), Exclusion(("c3", "c4"), ("p2",))),
    )
    result = solve(problem)
    best = max(
        (floor_fill(problem, ch), sum(o.weight for o in ch))
        for ch in feasible_assignments(problem)
        if not breaks(problem, ((o.candidate, o.pool) for o in ch))
    )
    assert (floor_fill(problem, chosen_options(problem, result)), result.objective) == best
    assert result.status == "optimal" and not breaks(problem, result.assignments)


def test_the_stable_mechanism_keeps_the_exclusions_too():
    # Deferred acceptance alone gives the person both offers (m1 IML, m2 ALT); the lighter
    # (m2 in ALT, 290 < 300) leaves m2's list and ALT goes to x. (m2, ALT) is then no
    # blocking pair: m1 holds IML in the same rule.
    result = solve(replace(_two_components(True), mechanism="stable"))
    assert result.solver == "deferred_acceptance" and result.status == "optimal"
    assert result.assignments == (("m1", "IML"), ("x", "ALT"), ("y", "OTHER"), ("z", "OTHER"))
    assert result.blocking_pairs == ()
    assert result.stats["mechanisms"]["stable_blocking_pairs"] == 0
    assert result.bound == solve(_two_components(True)).objective


def test_a_commission_pool_lists_one_dwelling_per_unit_whatever_the_household():
    # 3 dwellings; the run places the household of two (2 units of consumption) and one
    # single person; for the commission each unit is one dwelling: 3 lists, the third
    # empty (the run left it empty), and the backups are single people.
    pools = (Pool("caleol", 3),)
    cands = (Candidate("fam", 50), Candidate("s1", 40), Candidate("s2", 30))
    cands += (Candidate("s3", 20), Candidate("s4", 10))
    options = (Option("fam", "caleol", 500, 2),) + tuple(
        Option(c.id, "caleol", c.priority * 10) for c in cands[1:]
    )
    result = solve(AllocationProblem(pools, cands, options, shortlist={"caleol": 2}))
    assert result.assignments == (("fam", "caleol"), ("s1", "caleol"))
    assert result.shortlists == {"caleol": (("fam", "s2"), ("s1", "s3"), ())}
