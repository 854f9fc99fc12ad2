"""The split of an allocation into independent components (``allocation_cpsat.components``):
options share a component exactly when their pools are linked by candidates, whatever the
problem's shape; checked against a plain graph search on random problems."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.allocation import AllocationProblem, Candidate, Option, Pool, _compile
from matching.allocation_cpsat import components


@st.composite
def problems(draw: st.DrawFn) -> AllocationProblem:
    n_pools = draw(st.integers(1, 9))
    n_cands = draw(st.integers(1, 12))
    options = []
    for c in range(n_cands):
        reach = draw(st.sets(st.integers(0, n_pools - 1), min_size=1, max_size=n_pools))
        options += [Option(f"c{c}", f"p{p}", draw(st.integers(1, 9)), draw(st.integers(1, 3)))
                    for p in sorted(reach)]  # fmt: skip
    return AllocationProblem(
        pools=tuple(Pool(f"p{p}", draw(st.integers(1, 5))) for p in range(n_pools)),
        candidates=tuple(Candidate(f"c{c}") for c in range(n_cands)),
        options=tuple(options),
    )


def _reference(opt_c: list[int], opt_p: list[int]) -> list[list[int]]:
    """Components by a search over pools: two pools are linked when a candidate has an
    option on each; ordered by smallest pool, options in index order."""
    pools_of: dict[int, set[int]] = {}
    for c, p in zip(opt_c, opt_p, strict=True):
        pools_of.setdefault(c, set()).add(p)
    seen: dict[int, int] = {}
    for start in sorted(set(opt_p)):
        if start in seen:
            continue
        seen[start], stack = start, [start]
        while stack:
            p = stack.pop()
            for ps in pools_of.values():
                if p in ps:
                    for q in ps - seen.keys():
                        seen[q] = start
                        stack.append(q)
    roots = sorted(set(seen.values()))
    return [[k for k, p in enumerate(opt_p) if seen[p] == r] for r in roots]


@settings(max_examples=150, deadline=None)
@given(problems())
def test_components_are_the_pools_linked_by_candidates(problem: AllocationProblem):
    ix = _compile(problem).ix  # type: ignore[union-attr]
    got = [part.tolist() for part in components(ix)]
    assert got == _reference(ix.opt_c.tolist(), ix.opt_p.tolist())
    assert sorted(k for part in got for k in part) == list(range(len(ix.opt_c)))
