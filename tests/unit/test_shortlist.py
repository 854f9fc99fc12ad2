"""Commission shortlists (rang 1..k per unit) and the cascade on the commission's decisions."""

from __future__ import annotations

import itertools
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
from matching.shortlist import SHORTLIST_STATUSES, compute_shortlists, next_rank, shortlists


def _housing() -> AllocationProblem:
    """Two commission pools (H1: 2 units, H2: 1 unit) and a shelter pool S."""
    pools = (Pool("H1", 2), Pool("H2", 1), Pool("S", 1))
    cands = tuple(Candidate(f"c{i}", 10 * i) for i in range(1, 10))
    options = []
    for c in cands:
        i = int(c.id[1:])
        if i != 9:
            options.append(Option(c.id, "H1", c.priority * 10))
        if i % 2:
            options.append(Option(c.id, "H2", c.priority * 12))
        if i in (2, 9):
            options.append(Option(c.id, "S", c.priority * 10))
    return AllocationProblem(pools, cands, tuple(options), shortlist={"H1": 3, "H2": 2})


def test_lists_are_the_run_then_the_best_remaining_round_by_round():
    result = solve(_housing())
    # The run: c9 S 900 + c7 H2 840 + c8 H1 800 + c6 H1 600 = 3140 beats c9 in H2.
    assert result.assignments == (("c6", "H1"), ("c7", "H2"), ("c8", "H1"), ("c9", "S"))
    # Round 2: 3 units need a 2nd (H1 ×2, H2 ×1) among c1..c5: c5 in H2 (600) with c4 and
    # c3 in H1 (1,300) beats c5 in H1 and c3 in H2 (1,260); H1's unit 1 (c8, the heavier
    # rang 1) gets the heavier rang 2. Round 3: H1 only (k = 3 for H1, 2 for H2).
    assert result.shortlists == {
        "H1": (("c8", "c4", "c2"), ("c6", "c3", "c1")),
        "H2": (("c7", "c5"),),
    }
    assert result.stats["shortlists"] == {
        "pools": 2,
        "units": 3,
        "units_listed": 3,
        "listed": 8,
        "rounds": 2,
    }
    assert result.explanations["c8"].endswith(
        "Rang 1 sur la liste de la commission pour H1 (unité 1 sur 2)."
    )
    assert result.explanations["c3"].endswith(
        "Rang 2 sur la liste de la commission pour H1 (unité 2 sur 2) : seuil du rang 2 30 "
        "points ; l'unité vous sera proposée si le rang 1 n'aboutit pas (refus ou désistement)."
    )
    assert "si les rangs 1 à 2 n'aboutissent pas" in result.explanations["c1"]
    assert result.explanations["c1"].startswith("Aucune place")  # the run's reason first


def test_public_helper_gives_the_same_lists_as_solve():
    problem = _housing()
    result = solve(problem)
    assert shortlists(problem, result) == result.shortlists


def test_without_commission_nothing_changes():
    problem = _housing()
    plain = AllocationProblem(problem.pools, problem.candidates, problem.options)
    result = solve(plain)
    assert result.shortlists == {} and "shortlists" not in result.stats
    assert result.assignments == solve(problem).assignments


def test_validated_allocations_take_their_unit_and_are_never_listed():
    problem = _housing()
    pinned = AllocationProblem(
        problem.pools,
        problem.candidates,
        problem.options,
        pinned=(Pin("c1", "H1"),),
        shortlist=problem.shortlist,
    )
    result = solve(pinned)
    assert len(result.shortlists["H1"]) == 1  # 2 units, one already validated
    assert all("c1" not in unit for units in result.shortlists.values() for unit in units)


def test_exclusions_hold_across_the_lists():
    # c5 and c4 are one person's two referrals; H1 excludes H2 for them. Round 2 would list
    # both (c5 for H2, c4 for H1): the lighter (c4) leaves the round, c2 comes in; in
    # round 3, c4 may not be listed for H1 while c5 is on H2's list.
    problem = _housing()
    ruled = AllocationProblem(
        problem.pools,
        problem.candidates,
        problem.options,
        shortlist=problem.shortlist,
        exclusions=(Exclusion(("c5", "c4"), ("H1", "H2")),),
    )
    result = solve(ruled)
    assert result.shortlists == {
        "H1": (("c8", "c3", "c1"), ("c6", "c2")),
        "H2": (("c7", "c5"),),
    }


def test_bad_shortlist_sizes_are_french_errors():
    problem = _housing()
    for bad, needle in ((0, "entre 1 et 20"), (21, "entre 1 et 20")):
        with pytest.raises(ProblemError, match=needle):
            solve(AllocationProblem(problem.pools, problem.candidates, shortlist={"H1": bad}))
    with pytest.raises(ProblemError, match="shortlist\\[« X »\\] : dispositif « X » inconnu"):
        solve(AllocationProblem(problem.pools, problem.candidates, shortlist={"X": 3}))


# --------------------------------------------------------------------------- properties


@st.composite
def commission_problems(draw):  # type: ignore[no-untyped-def]
    n_pools = draw(st.integers(1, 3))
    n_cands = draw(st.integers(2, 8))
    pools = tuple(Pool(f"p{j}", draw(st.integers(0, 2))) for j in range(n_pools))
    cands = tuple(Candidate(f"c{i}", draw(st.integers(0, 30))) for i in range(n_cands))
    options = tuple(
        Option(c.id, p.id, draw(st.integers(-2, 40)), draw(st.sampled_from([1, 1, 1, 2])))
        for c in cands
        for p in pools
        if draw(st.integers(0, 2)) > 0
    )
    commission = draw(st.lists(st.sampled_from([p.id for p in pools]), min_size=1, unique=True))
    ineligible = {c.id: "Hors critères." for c in cands if draw(st.integers(0, 9)) == 0}
    options = tuple(o for o in options if o.candidate not in ineligible)
    prefs = {}
    for c in cands:
        if draw(st.integers(0, 3)) == 0:
            prefs[c.id] = tuple(draw(st.permutations([p.id for p in pools])))[
                : draw(st.integers(1, n_pools))
            ]
    return AllocationProblem(
        pools,
        cands,
        options,
        ineligible=ineligible,
        preferences=prefs,
        shortlist={pid: draw(st.integers(1, 4)) for pid in commission},
        time_limit_s=20,
    )


def _eligible(problem: AllocationProblem) -> set[tuple[str, str]]:
    pairs = {(o.candidate, o.pool) for o in problem.options}
    return {
        (c, p)
        for c, p in pairs
        if c not in problem.ineligible
        and (c not in problem.preferences or p in problem.preferences[c])
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commission_problems())
def test_lists_are_eligible_unique_and_start_with_the_run(problem):
    result = solve(problem)
    eligible = _eligible(problem)
    weight = {(o.candidate, o.pool): o.weight for o in problem.options}
    seen: list[str] = []
    assert set(result.shortlists) == set(problem.shortlist)
    for pid, units in result.shortlists.items():
        k = problem.shortlist[pid]
        assert len(units) >= sum(1 for _, p in result.assignments if p == pid)
        run = sorted(c for c, p in result.assignments if p == pid)
        assert sorted(u[0] for u in units if u) == run  # rang 1 is the run's assignment
        for u in units:
            assert len(u) <= k
            for rank, c in enumerate(u, start=1):
                assert (c, pid) in eligible  # never an ineligible candidate
                if rank > 1:
                    assert all(c != a for a, _ in result.assignments)
                assert (
                    f"Rang {rank} sur la liste de la commission pour {pid}"
                    in (result.explanations[c])
                )
            seen.extend(u)
        # Units in weight order, rank by rank.
        for rank in range(k):
            ws = [weight[(u[rank], pid)] for u in units if len(u) > rank]
            assert ws == sorted(ws, reverse=True)
        # A unit without rang r has no rang r + 1 (lists have no holes).
        assert all(len(u) <= len(v) for u, v in zip(units[1:], units, strict=False))
    assert len(seen) == len(set(seen))  # nobody on two lists, nobody rang 1 twice


def _best_round_weight(problem, result, rank: int) -> int:  # type: ignore[no-untyped-def]
    """Brute force: the heaviest way to give one more candidate to each unit that has
    ``rank - 1`` (unit consumption), from those neither assigned nor listed before."""
    before = {c for units in result.shortlists.values() for u in units for c in u[: rank - 1]}
    before |= {c for c, _ in result.assignments}
    need = {
        pid: sum(1 for u in units if len(u) >= rank - 1 and rank <= problem.shortlist[pid])
        for pid, units in result.shortlists.items()
    }
    weight = {(o.candidate, o.pool): o.weight for o in problem.options}
    eligible = _eligible(problem)
    free = sorted({c for c, _ in eligible} - before)
    best = 0
    for choice in itertools.product(*[[None, *sorted(need)] for c in free]):
        used: dict[str, int] = {}
        total = 0
        ok = True
        for c, pid in zip(free, choice, strict=True):
            if pid is None:
                continue
            if (c, pid) not in eligible or weight[(c, pid)] <= 0:
                ok = False
                break
            used[pid] = used.get(pid, 0) + 1
            total += weight[(c, pid)]
        if ok and all(used[p] <= need[p] for p in used):
            best = max(best, total)
    return best


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commission_problems())
def test_rang_2_is_the_best_remaining_assignment(problem):
    result = solve(problem)
    got = sum(
        o.weight
        for o in problem.options
        for units in [result.shortlists.get(o.pool, ())]
        for u in units
        if len(u) > 1 and u[1] == o.candidate
    )
    free = {c for c, _ in _eligible(problem)} - {c for c, _ in result.assignments}
    if len(free) <= 7:
        assert got == _best_round_weight(problem, result, 2)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commission_problems(), st.randoms(use_true_random=False))
def test_lists_do_not_depend_on_the_order_of_the_input(problem, rng):
    def shuffled(items):  # type: ignore[no-untyped-def]
        items = list(items)
        rng.shuffle(items)
        return tuple(items)

    other = replace(
        problem,
        pools=shuffled(problem.pools),
        candidates=shuffled(problem.candidates),
        options=shuffled(problem.options),
    )
    a, b = solve(problem), solve(other)
    assert (a.assignments, a.shortlists) == (b.assignments, b.shortlists)
    assert a.explanations == b.explanations


def test_compute_shortlists_reports_cutoffs_and_placements():
    problem = _housing()
    found = compute_shortlists(problem, solve(problem))
    assert found.placements["c3"].pool == "H1"
    assert (found.placements["c3"].unit, found.placements["c3"].rank) == (2, 2)
    assert found.cutoffs[("H1", 2)] == 30 and found.cutoffs[("H1", 1)] == 60


# --------------------------------------------------------------------------- cascade


def test_next_rank_examples():
    assert next_rank([(1, "shortlisted"), (2, "shortlisted")]) == 1
    assert next_rank([(1, "proposed"), (2, "shortlisted")]) is None
    assert next_rank([(1, "declined"), (2, "shortlisted"), (3, "shortlisted")]) == 2
    assert next_rank([(2, "withdrawn"), (1, "declined"), (3, "shortlisted")]) == 3
    assert next_rank([(1, "declined"), (2, "validated"), (3, "shortlisted")]) is None
    assert next_rank([(1, "declined"), (2, "withdrawn")]) is None
    assert next_rank([(1, "shortlisted"), (2, "withdrawn")]) == 1  # a later withdrawal
    assert next_rank([]) is None
    with pytest.raises(ValueError):
        next_rank([(1, "lost")])
    with pytest.raises(ValueError):
        next_rank([(1, "shortlisted"), (1, "declined")])


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 8),
    st.lists(
        st.tuples(st.sampled_from(["declined", "withdrawn", "validated"]), st.integers(0, 7)),
        max_size=20,
    ),  # fmt: skip
)
def test_cascade_never_skips_never_doubles_never_proposes_after_validation(k, events):
    """Replay a commission: each event is the current proposal's answer or a withdrawal of
    some listed candidate (a person leaves the waitlist) at any moment."""
    status = dict.fromkeys(range(1, k + 1), "shortlisted")
    proposed_order: list[int] = []
    for answer, who in events:
        nxt = next_rank(sorted(status.items()))
        if nxt is not None:
            assert status[nxt] == "shortlisted"
            assert all(status[r] in ("declined", "withdrawn") for r in range(1, nxt))
            assert "validated" not in status.values()
            status[nxt] = "proposed"
            proposed_order.append(nxt)
        assert sum(1 for s in status.values() if s == "proposed") <= 1
        current = [r for r, s in status.items() if s == "proposed"]
        if answer == "withdrawn":
            rank = who % k + 1
            if status[rank] in ("shortlisted", "proposed"):
                status[rank] = "withdrawn"
        elif current:
            status[current[0]] = answer
    assert proposed_order == sorted(proposed_order)  # ranks in order, none twice
    assert len(set(proposed_order)) == len(proposed_order)
    if "validated" in status.values():
        assert next_rank(sorted(status.items())) is None
    assert set(status.values()) <= set(SHORTLIST_STATUSES)
