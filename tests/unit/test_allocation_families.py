"""A run over pool families with different mechanisms, and offers a person cannot hold
together (``engine.allocation.mechanisms``), on small problems checked by hand."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.allocation.mechanisms import apply_exclusions, exclusive_groups, solve_by_family
from matching.allocation import AllocationProblem, Candidate, Option, Pool, solve
from matching.stable import stable_allocation


@dataclass
class _Offer:
    id: int
    code: str
    name: str = ""
    excludes: list[str] = field(default_factory=list)


def _problem(**kw):
    base = dict(
        pools=(Pool("S", 1), Pool("O", 1)),
        candidates=(Candidate("a", 10), Candidate("b", 5), Candidate("c", 1)),
        options=(
            Option("a", "S", 10),
            Option("b", "S", 5),
            Option("b", "O", 5),
            Option("c", "O", 1),
        ),
    )
    base.update(kw)
    return AllocationProblem(**base)


def test_exclusive_offers_form_symmetric_groups():
    offers = [_Offer(1, "p.iml", excludes=["p.alt"]), _Offer(2, "p.alt"), _Offer(3, "p.x")]
    assert exclusive_groups(offers) == [frozenset({1, 2})]
    assert exclusive_groups([_Offer(1, "a", excludes=["zzz"])]) == []


def test_one_person_never_gets_two_exclusive_offers_in_one_run():
    # One person, two referrals (r1, r2), IML and ALT both free: without the rule each gets one.
    problem = AllocationProblem(
        pools=(Pool("IML", 1), Pool("ALT", 1)),
        candidates=(Candidate("r1", 9), Candidate("r2", 8)),
        options=(Option("r1", "IML", 9), Option("r2", "ALT", 8), Option("r2", "IML", 8)),
    )
    assert len(solve(problem).assignments) == 2
    coupled = apply_exclusions(
        problem,
        groups=[frozenset({1, 2})],
        offer_of_pool={"IML": 1, "ALT": 2},
        offer_names={1: "IML", 2: "ALT"},
        person_of={"r1": 7, "r2": 7},
        held={},
    )
    result = solve(coupled)
    assert result.assignments == (("r1", "IML"),)


def test_a_person_holding_one_offer_is_no_candidate_for_the_excluded_one():
    problem = AllocationProblem(
        pools=(Pool("IML", 1), Pool("ALT", 1)),
        candidates=(Candidate("r1", 9),),
        options=(Option("r1", "ALT", 9),),
    )
    coupled = apply_exclusions(
        problem,
        groups=[frozenset({1, 2})],
        offer_of_pool={"IML": 1, "ALT": 2},
        offer_names={1: "Intermédiation locative", 2: "ALT"},
        person_of={"r1": 7},
        held={7: {1}},
    )
    result = solve(coupled)
    assert result.assignments == ()
    assert "bénéficie déjà de « Intermédiation locative »" in result.explanations["r1"]


def test_families_stable_first_then_optimal_for_the_others():
    problem = _problem()
    result = solve_by_family(problem, {"S": "stable", "O": "optimal"})
    # a (most points) takes S by deferred acceptance; b goes on to O, c stays waiting.
    assert result.assignments == (("a", "S"), ("b", "O"))
    assert "deferred_acceptance" in result.solver
    assert result.stats["mechanisms"]["stable_served"] == 1
    unassigned = {u.candidate for u in result.unassigned}
    assert unassigned == {"c"}
    assert result.explanations["c"]


def test_all_optimal_or_all_stable_is_one_solve():
    problem = _problem()
    assert solve_by_family(problem, {}).assignments == solve(problem).assignments
    stable = solve_by_family(problem, {"S": "stable", "O": "stable"})
    assert stable.assignments == stable_allocation(problem).assignments


@st.composite
def _families(draw):
    n_pools = draw(st.integers(1, 3))
    pools = tuple(Pool(f"p{i}", draw(st.integers(0, 2))) for i in range(n_pools))
    n_c = draw(st.integers(1, 5))
    cands = tuple(Candidate(f"c{i}", draw(st.integers(0, 9))) for i in range(n_c))
    options = []
    for c in cands:
        for p in pools:
            if draw(st.booleans()):
                options.append(Option(c.id, p.id, c.priority * 10 + draw(st.integers(0, 9))))
    mech = {p.id: draw(st.sampled_from(["optimal", "stable"])) for p in pools}
    return AllocationProblem(pools=pools, candidates=cands, options=tuple(options)), mech


@settings(max_examples=80, deadline=None)
@given(_families())
def test_mixed_families_respect_capacity_and_eligibility_and_explain_everyone(case):
    problem, mech = case
    result = solve_by_family(problem, mech)
    allowed = {(o.candidate, o.pool) for o in problem.options}
    assert set(result.assignments) <= allowed
    got = [c for c, _ in result.assignments]
    assert len(got) == len(set(got))  # one place per candidate
    capacity = {p.id: p.capacity for p in problem.pools}
    for pool, cap in capacity.items():
        assert sum(1 for _, p in result.assignments if p == pool) <= cap
    waiting = {u.candidate for u in result.unassigned}
    assert waiting == {c.id for c in problem.candidates} - set(got)
    for cid in waiting:
        assert result.explanations.get(cid)
