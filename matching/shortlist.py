"""Commission shortlists: for each unit of a commission pool, a ranked list rang 1..k.

Why: social housing is given by a commission (CALEOL) that examines at least three
candidates per unit and ranks them; if rang 1 refuses, the unit passes to rang 2, and so
on. The run must therefore propose, per unit, an ordered list of eligible candidates that
stays optimal for the grid across all the units of the run.

Construction (``shortlists``):

- **rang 1** is the run's own assignment to the pool: the candidates the run placed there,
  so no candidate is rang 1 for two units and rang 1 is jointly optimal with every other
  pool of the run (under the stable mechanism, the stable matching's assignees);
- **rang r ≥ 2** is filled round by round: round r solves, with the same exact solver
  (min-cost flow, the run's weights and tie-break), the problem restricted to the
  commission pools, each with as many units as still need an r-th candidate, over the
  candidates eligible there who are neither assigned in the run nor already on a list —
  so each candidate appears on at most one list of the run, and each round is the best
  the remaining candidates allow for the remaining ranks;
- within a pool, units get their candidates in weight order: unit 1 has the best rang 1,
  the best rang 2, …; a unit the run left empty gets no list (nobody eligible was left for
  it at the optimum), and a unit may have fewer than k when not enough eligible candidates
  remain.

Rules of the commission model, stated once: every unit of a commission pool is **one
dwelling**, so for shortlisting a candidate takes one unit whatever their option's
consumption (pinned, i.e. validated, allocations take theirs: the pool has
``capacity − pins`` units to list); territory floors bind the run (rang 1), not the
backup ranks; an exclusion ("IML excludes ALT") is respected across the lists too: a
candidate whose other referral holds or is listed for an excluded pool is not listed.
Options outside a candidate's stated preferences and candidates marked ineligible never
appear.

``next_rank`` is the cascade on the commission's decisions: which rank to propose next.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from matching.allocation_flow import CostRangeError, Indexed, solve_flow, with_bits

if TYPE_CHECKING:
    from matching.allocation import AllocationProblem, AllocationResult, _Compiled

# A shortlisted candidate's status in the commission's cascade.
SHORTLIST_STATUSES = ("shortlisted", "proposed", "validated", "declined", "withdrawn")
_DONE = frozenset({"declined", "withdrawn"})  # the unit passes to the next rank
_HOLDING = frozenset({"proposed", "validated"})  # the unit waits for, or has, its answer


@dataclass(frozen=True)
class ShortlistPlacement:
    """Where one candidate stands: pool id, unit number (1-based) and rank (1-based)."""

    pool: str
    unit: int
    rank: int


@dataclass(frozen=True, eq=False)
class Shortlists:
    """The lists of one run and what explains them."""

    lists: dict[str, tuple[tuple[str, ...], ...]]  # pool -> per unit, candidates rang 1..k
    placements: dict[str, ShortlistPlacement]  # candidate -> where they are listed
    cutoffs: dict[tuple[str, int], int]  # (pool, rank) -> fewest points at that rank
    rounds: int  # rounds solved (ranks 2..k)
    time_s: float


def shortlists(
    problem: AllocationProblem, result: AllocationResult
) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Pool id -> one tuple per unit of candidate ids, rang 1 first, for each commission
    pool of ``problem.shortlist``; ``result`` is the run (``matching.allocation.solve``)."""
    return compute_shortlists(problem, result).lists


def compute_shortlists(
    problem: AllocationProblem, result: AllocationResult, compiled: _Compiled | None = None
) -> Shortlists:
    """The lists with their placements and cut-offs (see the module docstring).
    ``compiled`` is the run's compiled problem when the caller has it (``solve`` does)."""
    from matching.allocation import _compile

    started = time.perf_counter()
    if compiled is None:
        found = _compile(problem)
        if isinstance(found, str):  # infeasible pins: the run proposed nothing
            return Shortlists({}, {}, {}, 0, 0.0)
        compiled = found
    return _build(problem, compiled, result, started)


def attach_shortlists(
    problem: AllocationProblem, compiled: _Compiled, result: AllocationResult
) -> AllocationResult:
    """``result`` with its shortlists, a French sentence per listed candidate appended to
    their explanation, and ``stats["shortlists"]``."""
    found = _build(problem, compiled, result, time.perf_counter())
    explanations = dict(result.explanations)
    for cid, place in sorted(found.placements.items()):
        sentence = _sentence(problem, found, place)
        before = explanations.get(cid, "")
        explanations[cid] = f"{before} {sentence}" if before else sentence
    units = sum(len(v) for v in found.lists.values())
    result.stats["shortlists"] = {
        "pools": len(found.lists),
        "units": units,
        "units_listed": sum(1 for v in found.lists.values() for u in v if u),
        "listed": len(found.placements),
        "rounds": found.rounds,
    }
    return replace(result, shortlists=found.lists, explanations=explanations)


def _sentence(problem: AllocationProblem, found: Shortlists, place: ShortlistPlacement) -> str:
    units = len(found.lists[place.pool])
    where = f"sur la liste de la commission pour {place.pool} (unité {place.unit} sur {units})"
    if place.rank == 1:
        return f"Rang 1 {where}."
    cut = found.cutoffs[(place.pool, place.rank)]
    before = "le rang 1" if place.rank == 2 else f"les rangs 1 à {place.rank - 1}"
    return (
        f"Rang {place.rank} {where} : seuil du rang {place.rank} {cut} points ; l'unité "
        f"vous sera proposée si {before} n'abouti{'t' if place.rank == 2 else 'ssent'} pas "
        "(refus ou désistement)."
    )


def _build(
    problem: AllocationProblem, cp: _Compiled, result: AllocationResult, started: float
) -> Shortlists:
    ix = cp.ix
    cands, pools = problem.candidates, problem.pools
    pidx = {x.id: i for i, x in enumerate(pools)}
    cidx = {x.id: i for i, x in enumerate(cands)}
    size = {pidx[pid]: int(k) for pid, k in problem.shortlist.items()}
    if not size:
        return Shortlists({}, {}, {}, 0, 0.0)
    n_p = max(ix.n_pools, 1)
    opt_key = ix.opt_c * n_p + ix.opt_p
    order = np.argsort(opt_key, kind="stable")
    sorted_key = opt_key[order]

    def option(ci: int, pi: int) -> int:
        """The free option index of (ci, pi), -1 if none (a pin)."""
        at = int(np.searchsorted(sorted_key, ci * n_p + pi))
        if at < len(order) and sorted_key[at] == ci * n_p + pi:
            return int(order[at])
        return -1

    # The run: who is taken (pins included), rang 1 per commission pool.
    taken = np.zeros(ix.n_candidates, dtype=bool)
    picked = np.zeros(len(ix.opt_c), dtype=bool)  # free options the run chose
    first: dict[int, list[int]] = {pi: [] for pi in size}
    pins_in = dict.fromkeys(size, 0)
    for cid, pid in result.assignments:
        ci, pi = cidx[cid], pidx[pid]
        taken[ci] = True
        o = option(ci, pi)
        if o < 0:
            if pi in pins_in:
                pins_in[pi] += 1
            continue
        picked[o] = True
        if pi in first:
            first[pi].append(o)
    ineligible = np.zeros(ix.n_candidates, dtype=bool)
    for cid in problem.ineligible:
        if cid in cidx:
            ineligible[cidx[cid]] = True

    # units[pi] = list per unit of option indices (rank order).
    units: dict[int, list[list[int]]] = {}
    for pi, opts in first.items():
        opts.sort(key=lambda o: _heavier_first(ix, o))
        n_units = max(int(pools[pi].capacity) - pins_in[pi], len(opts))
        units[pi] = [[o] for o in opts] + [[] for _ in range(n_units - len(opts))]

    in_ex: dict[int, list[int]] = {}
    occupied = np.zeros(len(ix.exclusions), dtype=bool)
    for e, ex in enumerate(ix.exclusions):
        for o in ex.tolist():
            in_ex.setdefault(int(o), []).append(e)
        occupied[e] = bool(picked[ex].any())
    listed = taken.copy()
    commission = np.zeros(ix.n_pools, dtype=bool)
    commission[list(size)] = True
    base = commission[ix.opt_p] & ~ineligible[ix.opt_c]
    rounds = 0
    for r in range(2, max(size.values()) + 1):
        need = np.zeros(ix.n_pools, dtype=np.int64)
        for pi, rows in units.items():
            if r <= size[pi]:
                need[pi] = sum(1 for u in rows if len(u) == r - 1)
        if not need.any():
            break
        allowed = base & (need[ix.opt_p] > 0) & ~listed[ix.opt_c]
        if in_ex:
            for o in np.flatnonzero(allowed).tolist():
                if any(occupied[e] for e in in_ex.get(o, ())):
                    allowed[o] = False
        chosen = _round(ix, np.flatnonzero(allowed), need, in_ex)
        rounds += 1
        if len(chosen) == 0:
            break
        by_pool: dict[int, list[int]] = {}
        for o in chosen.tolist():
            by_pool.setdefault(int(ix.opt_p[o]), []).append(o)
        for pi, opts in by_pool.items():
            opts.sort(key=lambda o: _heavier_first(ix, o))
            waiting = [u for u in units[pi] if len(u) == r - 1]
            for u, o in zip(waiting, opts, strict=False):
                u.append(o)
                listed[int(ix.opt_c[o])] = True
                for e in in_ex.get(o, ()):
                    occupied[e] = True

    lists: dict[str, tuple[tuple[str, ...], ...]] = {}
    placements: dict[str, ShortlistPlacement] = {}
    cutoffs: dict[tuple[str, int], int] = {}
    for pi in sorted(units, key=lambda pi: pools[pi].id):
        pid = pools[pi].id
        listed_rows = []
        for j, u in enumerate(units[pi], start=1):
            row = []
            for rank, o in enumerate(u, start=1):
                cand = cands[int(ix.opt_c[o])]
                row.append(cand.id)
                placements[cand.id] = ShortlistPlacement(pid, j, rank)
                key = (pid, rank)
                cutoffs[key] = min(cutoffs.get(key, cand.priority), cand.priority)
            listed_rows.append(tuple(row))
        lists[pid] = tuple(listed_rows)
    return Shortlists(lists, placements, cutoffs, rounds, time.perf_counter() - started)


def _heavier_first(ix: Indexed, o: int) -> tuple[int, int]:
    """Sort key: weight with its tie-break, then the candidate id's rank (a hash collision
    never lets the input order decide)."""
    key = int(ix.cand_key[ix.opt_c[o]]) if ix.cand_key is not None else int(ix.opt_c[o])
    return (-int(ix.scaled[o]), key)


def _round(
    ix: Indexed, options: np.ndarray, need: np.ndarray, in_ex: dict[int, list[int]]
) -> np.ndarray:
    """One round: the heaviest assignment of ``options`` (one per candidate, ``need`` units
    per pool) by min-cost flow; where it gives two options of one exclusion, the lighter
    leaves the round and the round is solved again (rare: a person's two referrals)."""
    while True:
        if len(options) == 0:
            return options
        sub = replace(
            ix,
            opt_c=ix.opt_c[options],
            opt_p=ix.opt_p[options],
            opt_w=ix.opt_w[options],
            opt_cons=np.ones(len(options), dtype=np.int64),
            scaled=ix.scaled[options],
            mix=ix.mix[options],
            capacity=need,
            floor_p=np.zeros(0, dtype=np.int64),
            floor_g=np.zeros(0, dtype=np.int64),
            floor_units=np.zeros(0, dtype=np.int64),
            exclusions=(),
        )
        while True:
            try:
                found = solve_flow(sub, with_floors=False).chosen
                break
            except CostRangeError:
                if sub.bits == 0:
                    raise
                sub = with_bits(sub, max(0, sub.bits - 4))
        assert found is not None  # no floors: always feasible
        chosen = options[found]
        if not in_ex:
            return chosen
        drop = _exclusion_losers(ix, chosen, in_ex)
        if not drop:
            return chosen
        options = options[~np.isin(options, np.array(sorted(drop), dtype=np.int64))]


def _exclusion_losers(ix: Indexed, chosen: np.ndarray, in_ex: dict[int, list[int]]) -> set[int]:
    """Options of ``chosen`` that share an exclusion with a heavier chosen one."""
    holders: dict[int, list[int]] = {}
    for o in chosen.tolist():
        for e in in_ex.get(o, ()):
            holders.setdefault(e, []).append(o)
    drop: set[int] = set()
    for opts in holders.values():
        if len(opts) > 1:
            opts.sort(key=lambda o: _heavier_first(ix, o))
            drop.update(opts[1:])
    return drop


def next_rank(entries: Sequence[tuple[int, str]]) -> int | None:
    """The rank to propose next for one unit, or None.

    ``entries`` are the unit's (rank, status) pairs, statuses among ``SHORTLIST_STATUSES``.
    None when the unit is attributed ("validated"), waits for an answer (a rank
    "proposed"), or has no rank left; otherwise the lowest rank still "shortlisted" — every
    rank below it was declined or withdrawn, so the cascade never skips a rank, never
    proposes two at once and never proposes after a validation. Raises ValueError on an
    unknown status or a repeated rank (a caller's bug, not a user's input)."""
    seen: set[int] = set()
    for rank, status in entries:
        if status not in SHORTLIST_STATUSES:
            raise ValueError(f"unknown shortlist status {status!r}")
        if rank in seen:
            raise ValueError(f"rank {rank} appears twice")
        seen.add(rank)
    if any(status in _HOLDING for _, status in entries):
        return None
    for rank, status in sorted(entries):
        if status not in _DONE:
            return rank
    return None
