"""Stable allocation: deferred acceptance with people proposing.

Why: when people state which pools they accept, the standard of fairness is *stability*:
no person and pool who would both rather be matched to each other than to what they got.
Deferred acceptance (Gale–Shapley, people proposing) gives the stable matching every
person prefers to any other stable one, and nobody gains by lying about their order (for
unit consumption). The optimal mechanism (``matching.allocation.solve``) maximises the grid
weight instead; both are reported side by side so the cost of stability is visible.

Preferences. A candidate with an entry in ``preferences`` accepts exactly those pools, in
that order, restricted to the pools where they have an option (preferences never get
round eligibility); a candidate without an entry ("any") accepts every pool where they have
an option, ordered by option weight then by the stable pair hash of
``matching.allocation`` (the one folded into the optimum's tie-break).

Pools rank candidates by grid points (``Candidate.priority``), ties by the same pair hash,
then by candidate id. Pins are pre-assigned: their units leave the capacity and they are
never displaced. A pool's *choice function* picks, from the people it holds plus a new
proposer:

1. for each territory with a floor (the floor formula of ``matching.allocation``, pins of
   the territory counted in it), its *reserved units*, filled with that territory's best
   candidates in the pool's ranking;
2. then the remaining units by rank among all the others.

In each phase a candidate whose consumption does not fit is skipped and the scan goes on.
With unit consumption this is the "minority reserves" choice function (Hafalir, Yenmez and
Yildirim 2013): substitutable and size-monotone, so deferred acceptance returns the
people-optimal stable matching with respect to it, whatever the order of proposals.

Several units per person (households). A stable matching may then not exist at all
(McDermid and Manlove 2010, the hospitals/residents problem with sizes; deciding existence
is NP-complete) and the choice function above is no longer substitutable: a pool that
refused someone for lack of units may later hold fewer units than it did. Deferred
acceptance is then followed by repair passes: every person in a blocking pair moves, best
pool first, to a pool that would keep them (checked again at that moment), and deferred
acceptance resumes, until no blocking pair is left or ``MAX_REPAIR_PASSES`` is reached;
what remains is reported by ``blocking_pairs``, never hidden. On every small instance
checked by brute force where a stable matching exists, the result is stable.

Preferences default to ``problem.preferences`` when the argument is None (the optimal
mechanism's compile already drops the options outside them).

Scale: with unit consumption a pool is a heap of its held people per reserved territory
and one for the others (a proposal costs O(log capacity)); otherwise a pool keeps its held
people in rank order and settles most proposals without re-scanning (see
``_run_general``). Blocking pairs are counted with prefix sums, never pair by pair.

Determinism: people propose in sorted id order and every comparison uses ranks built from
points, the pair hash and ids, so the same problem in any order gives the same matching.
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from matching.allocation import (
    AllocationProblem,
    OptionTable,
    ProblemError,
    _compile,
    _id_rank,
    _pair_hash,
)

MAX_REPAIR_PASSES = 50


@dataclass(frozen=True, slots=True)
class StableOutcome:
    """The stable mechanism's matching (pins included) and its figures."""

    assignments: tuple[tuple[str, str], ...]  # (candidate id, pool id), sorted by candidate
    weight: int  # sum of the caller's option weights of these assignments (pins included)
    served: int  # number of candidates assigned (pins included)
    rounds: int  # proposals made (a measure of work)


# --------------------------------------------------------------------------- market


@dataclass(frozen=True, eq=False)
class _Market:
    """The problem compiled for the mechanism; option arrays are the caller's options.

    ``rank`` orders the options of each pool by the pool's ranking (lower is better; the
    options are grouped by pool, so ranks compare within a pool). ``pref_opts[pref_start[c]
    : pref_start[c + 1]]`` are candidate ``c``'s acceptable options, best first, and
    ``pref_pos`` is each option's position in that list (-1: not acceptable).
    """

    n_c: int
    n_p: int
    cand_ids: list[str]
    pool_ids: list[str]
    opt_c: np.ndarray
    opt_p: np.ndarray
    opt_w: np.ndarray
    opt_cons: np.ndarray
    opt_group: np.ndarray  # territory group of the option's candidate
    rank: np.ndarray
    pool_start: np.ndarray  # first rank of each pool (n_p + 1 entries)
    pref_pos: np.ndarray
    pref_start: np.ndarray
    pref_opts: np.ndarray
    cand_key: np.ndarray  # rank of each candidate id in sorted order
    pin_opts: np.ndarray  # option index of each pin
    pinned: np.ndarray  # bool per candidate
    residual: np.ndarray  # units per pool once the pins are in
    # pool -> ((group, reserved units), ...) in group order, pins deducted, capped so that
    # the reserves of a pool never exceed its residual units.
    reserves: dict[int, tuple[tuple[int, int], ...]]
    unit: bool  # every acceptable option consumes exactly one unit


def _acceptable_positions(
    problem: AllocationProblem,
    preferences: Mapping[str, Sequence[str]] | None,
    c: np.ndarray,
    p: np.ndarray,
    w: np.ndarray,
    mix: np.ndarray,
    pool_key: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per option its position in its candidate's list (-1 when not acceptable), plus the
    CSR layout (start per candidate, option indices) of the lists."""
    n_c, n_p = len(problem.candidates), len(problem.pools)
    explicit = np.zeros(n_c, dtype=bool)
    stated = np.zeros(len(c), dtype=np.int64)  # position in the stated list, explicit only
    if preferences:
        cidx = {x.id: i for i, x in enumerate(problem.candidates)}
        pidx = {x.id: i for i, x in enumerate(problem.pools)}
        keys: list[int] = []
        pos: list[int] = []
        for cid, pools in preferences.items():
            ci = cidx.get(cid)
            if ci is None:
                continue
            explicit[ci] = True
            seen: set[int] = set()
            for pid in pools:
                pi = pidx.get(pid)
                if pi is None or pi in seen:
                    continue
                seen.add(pi)
                keys.append(ci * n_p + pi)
                pos.append(len(seen) - 1)
        if keys:
            k_arr = np.array(keys, dtype=np.int64)
            order = np.argsort(k_arr)
            k_sorted, pos_sorted = k_arr[order], np.array(pos, dtype=np.int64)[order]
            opt_key = c * n_p + p
            at = np.minimum(np.searchsorted(k_sorted, opt_key), len(k_sorted) - 1)
            hit = k_sorted[at] == opt_key
            stated = np.where(hit, pos_sorted[at], -1)
        else:
            stated = np.full(len(c), -1, dtype=np.int64)
        stated = np.where(explicit[c], stated, 0)
    accept = stated >= 0
    idx = np.flatnonzero(accept)
    order = idx[np.lexsort((pool_key[p[idx]], ~mix[idx], -w[idx], stated[idx], c[idx]))]
    counts = np.bincount(c[order], minlength=n_c)
    start = np.zeros(n_c + 1, dtype=np.int64)
    np.cumsum(counts, out=start[1:])
    pref_pos = np.full(len(c), -1, dtype=np.int64)
    pref_pos[order] = np.arange(len(order), dtype=np.int64) - start[c[order]]
    return pref_pos, start, order


def restrict_to_preferences(
    problem: AllocationProblem, preferences: Mapping[str, Sequence[str]] | None
) -> AllocationProblem:
    """The same problem with only the acceptable options (pinned options always kept).

    Why: the optimal mechanism uses preferences as eligibility; both mechanisms, and the
    territory floors, must then see the same demand.
    """
    m = _market(problem, preferences)
    pref_pos = m.pref_pos
    keep = pref_pos >= 0
    keep[m.pin_opts] = True
    idx = np.flatnonzero(keep)
    table = OptionTable(m.opt_c[idx], m.opt_p[idx], m.opt_w[idx], m.opt_cons[idx])
    return replace(problem, options=(), option_table=table)


def _market(problem: AllocationProblem, preferences: Mapping[str, Sequence[str]] | None) -> _Market:
    if preferences is None:
        preferences = getattr(problem, "preferences", None) or None
    compiled = _compile(problem)  # validates (French messages) and computes the floors
    if isinstance(compiled, str):
        raise ProblemError(compiled)
    c, p, w, k = compiled.all_c, compiled.all_p, compiled.all_w, compiled.all_cons
    n_c, n_p = len(problem.candidates), len(problem.pools)
    cand_ids = [x.id for x in problem.candidates]
    pool_ids = [x.id for x in problem.pools]
    cand_key = _id_rank(cand_ids)
    pool_key = _id_rank(pool_ids)
    # Without pins the compiled hash already covers every option.
    no_pin = len(compiled.free_opts) == len(c)
    mix = compiled.ix.mix if no_pin else _pair_hash(problem, c, p)
    prio = np.array([x.priority for x in problem.candidates], dtype=np.int64)
    order = np.lexsort((cand_key[c], ~mix, -prio[c], p))
    rank = np.empty(len(c), dtype=np.int64)
    rank[order] = np.arange(len(c), dtype=np.int64)
    pool_start = np.zeros(n_p + 1, dtype=np.int64)
    np.cumsum(np.bincount(p, minlength=n_p), out=pool_start[1:])
    pref_pos, pref_start, pref_opts = _acceptable_positions(
        problem, preferences, c, p, w, mix, pool_key
    )
    floors = compiled.floors
    if preferences:
        # Floors follow the demand of those who accept the pool (as in the optimal
        # mechanism run on the restricted problem).
        keep = pref_pos >= 0
        keep[compiled.pin_opts] = True
        idx = np.flatnonzero(keep)
        sub = replace(problem, options=(), option_table=OptionTable(c[idx], p[idx], w[idx], k[idx]))
        sub_compiled = _compile(sub)
        assert not isinstance(sub_compiled, str)  # same pins, already validated
        floors = sub_compiled.floors
    group = compiled.ix.cand_group
    pin_opts = compiled.pin_opts
    pinned = np.zeros(n_c, dtype=bool)
    pinned[c[pin_opts]] = True
    residual = np.array([x.capacity for x in problem.pools], dtype=np.int64)
    np.subtract.at(residual, p[pin_opts], k[pin_opts])
    pinned_units: dict[tuple[int, int], int] = {}
    for o in pin_opts.tolist():
        key = (int(p[o]), int(group[c[o]]))
        pinned_units[key] = pinned_units.get(key, 0) + int(k[o])
    by_pool: dict[int, list[tuple[int, int]]] = {}
    for (pi, g), f in sorted(floors.items()):
        r = f - pinned_units.get((pi, g), 0)
        if r > 0:
            by_pool.setdefault(pi, []).append((g, r))
    reserves: dict[int, tuple[tuple[int, int], ...]] = {}
    for pi, items in by_pool.items():
        left = int(residual[pi])
        capped = []
        for g, r in items:
            r = min(r, left)
            if r > 0:
                capped.append((g, r))
                left -= r
        if capped:
            reserves[pi] = tuple(capped)
    # Pinned candidates do not propose.
    acc = pref_opts[~pinned[c[pref_opts]]]
    unit = bool(np.all(k[acc] == 1))
    return _Market(
        n_c=n_c,
        n_p=n_p,
        cand_ids=cand_ids,
        pool_ids=pool_ids,
        opt_c=c,
        opt_p=p,
        opt_w=w,
        opt_cons=k,
        opt_group=group[c],
        rank=rank,
        pool_start=pool_start,
        pref_pos=pref_pos,
        pref_start=pref_start,
        pref_opts=pref_opts,
        cand_key=cand_key,
        pin_opts=pin_opts,
        pinned=pinned,
        residual=residual,
        reserves=reserves,
        unit=unit,
    )


# --------------------------------------------------------------------------- choice


def _choose(m: _Market, pi: int, applicants: Iterable[int]) -> list[int]:
    """The pool's choice among option indices ``applicants`` (free candidates only):
    reserved units of each floored territory first, then the rest by rank; a consumption
    that does not fit is skipped. Returned in rank order."""
    ordered = sorted(applicants, key=m.rank.__getitem__)
    return _Scan(m).pool(pi, ordered).held


@dataclass(slots=True)
class _PoolState:
    """What a pool holds, by rank (``held``/``ranks``), and, among them, those on open
    units (``open``/``open_ranks``); what its scan left: ``left1`` per reserved territory,
    ``left2`` of the open units; ``worst1``: worst rank held in each reserve (-1: none)."""

    held: list[int]
    ranks: list[int]
    open: list[int]
    open_ranks: list[int]
    in1: set[int]
    left1: dict[int, int]
    left2: int
    worst1: dict[int, int]


class _Scan:
    """The choice function on plain Python lists (numpy scalars are slow in loops)."""

    def __init__(self, m: _Market) -> None:
        self.rank: list[int] = m.rank.tolist()
        self.cons: list[int] = m.opt_cons.tolist()
        self.group: list[int] = m.opt_group.tolist()
        self.residual: list[int] = m.residual.tolist()
        self.reserves = m.reserves

    def pool(self, pi: int, ordered: list[int]) -> _PoolState:
        """Scan ``ordered`` (sorted by rank): reserves first, then the open units."""
        rank, cons, group = self.rank, self.cons, self.group
        items = self.reserves.get(pi, ())
        left1 = dict(items)
        worst1 = dict.fromkeys(left1, -1)
        in1: set[int] = set()
        if left1:
            for o in ordered:
                g = group[o]
                left = left1.get(g)
                if left is not None and cons[o] <= left:
                    in1.add(o)
                    left1[g] = left - cons[o]
                    worst1[g] = rank[o]
        budget = self.residual[pi] - sum(r - left1[g] for g, r in items)
        held: list[int] = []
        opened: list[int] = []
        for o in ordered:
            if o in in1:
                held.append(o)
            elif cons[o] <= budget:
                held.append(o)
                opened.append(o)
                budget -= cons[o]
        return _PoolState(
            held,
            [rank[o] for o in held],
            opened,
            [rank[o] for o in opened],
            in1,
            left1,
            budget,
            worst1,
        )


# --------------------------------------------------------------------------- DA


def _run_general(m: _Market) -> tuple[np.ndarray, int]:
    """Deferred acceptance with the generic choice function, then the repair passes.
    Returns the chosen option per candidate (-1: none) and the proposals made.

    Shortcuts (exact, because a held set always fits and the scan is greedy in rank
    order, so its decisions above the newcomer do not depend on the newcomer): a
    newcomer whose territory's reserve has room for them takes it; one who cannot take a
    reserved unit (no reserve, or ranked below everyone in it) takes open units if enough
    are left, and is refused if ranked below everyone in the open units without room.
    In both accepted cases everything held still fits, so nobody is displaced. Any other
    case re-scans the pool.
    """
    scan = _Scan(m)
    rank, cons, group = scan.rank, scan.cons, scan.group
    opt_p: list[int] = m.opt_p.tolist()
    opt_c: list[int] = m.opt_c.tolist()
    pref_opts: list[int] = m.pref_opts.tolist()
    state = [scan.pool(pi, []) for pi in range(m.n_p)]
    match = [-1] * m.n_c
    ptr: list[int] = m.pref_start[:-1].tolist()
    end: list[int] = m.pref_start[1:].tolist()
    pinned = m.pinned.tolist()
    proposers = [
        ci for ci in np.argsort(m.cand_key).tolist() if not pinned[ci] and end[ci] > ptr[ci]
    ]
    rounds = 0

    def rescan(pi: int, ordered: list[int], queue: deque[int]) -> None:
        st = scan.pool(pi, ordered)
        state[pi] = st
        if len(st.held) < len(ordered):
            kept = set(st.held)
            for x in ordered:
                if x not in kept:
                    match[opt_c[x]] = -1
                    queue.append(opt_c[x])

    def trim(st: _PoolState, excess: int, above: int) -> list[int] | None:
        """Open holders the scan now drops when the open units are ``excess`` short, the
        newcomer (if any) ranked ``above``; None when the newcomer itself does not fit.
        Only the bottom ``excess`` units can change: the scan keeps every open holder
        until the units below them fall under the excess."""
        ranks_open, opened = st.open_ranks, st.open
        acc, i = 0, len(opened)
        while acc < excess:
            i -= 1
            if i < 0 or ranks_open[i] < above:
                return None
            acc += cons[opened[i]]
        leftover = acc - excess
        dropped = [opened[i]]  # the first that no longer fits
        for x in opened[i + 1 :]:
            if cons[x] <= leftover:
                leftover -= cons[x]
            else:
                dropped.append(x)
        st.left2 = leftover
        return dropped

    def drop(st: _PoolState, out: list[int], queue: deque[int]) -> None:
        for x in out:
            at = bisect.bisect_left(st.ranks, rank[x])
            st.held.pop(at)
            st.ranks.pop(at)
            at = bisect.bisect_left(st.open_ranks, rank[x])
            st.open.pop(at)
            st.open_ranks.pop(at)
            match[opt_c[x]] = -1
            queue.append(opt_c[x])

    def keeps(o: int) -> bool:
        """Whether the pool of ``o`` would keep its candidate (read-only, same shortcuts)."""
        pi, k, g, rk = opt_p[o], cons[o], group[o], rank[o]
        st = state[pi]
        left = st.left1.get(g)
        if left is not None and left >= k:
            return True
        if left is None or rk > st.worst1[g]:
            if st.left2 >= k:
                return True
            need, i = k - st.left2, len(st.open)
            while need > 0:
                i -= 1
                if i < 0 or st.open_ranks[i] < rk:
                    return False
                need -= cons[st.open[i]]
            return True
        at = bisect.bisect(st.ranks, rk)
        return o in scan.pool(pi, [*st.held[:at], o, *st.held[at:]]).held

    def release(ci: int, queue: deque[int]) -> None:
        """``ci`` leaves their pool. What remains fits, so nobody is refused; only an open
        holder leaving skips the re-scan of the bookkeeping."""
        cur = match[ci]
        match[ci] = -1
        if cur < 0:
            return
        st = state[opt_p[cur]]
        if cur in st.in1:
            rescan(opt_p[cur], [x for x in st.held if x != cur], queue)
            return
        at = bisect.bisect_left(st.ranks, rank[cur])
        st.held.pop(at)
        st.ranks.pop(at)
        at = bisect.bisect_left(st.open_ranks, rank[cur])
        st.open.pop(at)
        st.open_ranks.pop(at)
        st.left2 += cons[cur]

    def run(queue: deque[int]) -> None:
        nonlocal rounds
        while queue:
            ci = queue.popleft()
            j = ptr[ci]
            if match[ci] >= 0 or j >= end[ci]:
                continue
            ptr[ci] = j + 1
            rounds += 1
            o = pref_opts[j]
            pi, k, g, rk = opt_p[o], cons[o], group[o], rank[o]
            st = state[pi]
            left = st.left1.get(g)
            if left is not None and left >= k:
                # A reserved unit; the open units shrink by k.
                out = None
                if st.left2 >= k:
                    st.left2 -= k
                else:  # reserves never exceed the units, so the open ones can give k
                    out = trim(st, k - st.left2, -1)
                    assert out is not None
                st.in1.add(o)
                st.left1[g] = left - k
                if rk > st.worst1[g]:
                    st.worst1[g] = rk
            elif left is None or rk > st.worst1[g]:
                # No reserved unit for them: the reserves stay as they are.
                out = None
                if st.left2 >= k:
                    st.left2 -= k
                else:
                    out = trim(st, k - st.left2, rk)
                    if out is None:
                        queue.append(ci)  # refused: the better ones fill the open units
                        continue
                at = bisect.bisect(st.open_ranks, rk)
                st.open.insert(at, o)
                st.open_ranks.insert(at, rk)
            else:
                at = bisect.bisect(st.ranks, rk)
                ordered = [*st.held[:at], o, *st.held[at:]]
                match[ci] = o
                rescan(pi, ordered, queue)
                continue
            at = bisect.bisect(st.ranks, rk)
            st.held.insert(at, o)
            st.ranks.insert(at, rk)
            match[ci] = o
            if out:
                drop(st, out, queue)

    run(deque(proposers))
    for _ in range(MAX_REPAIR_PASSES):
        blocks = _blocking_options(m, np.array(match, dtype=np.int64))
        if len(blocks) == 0:
            break
        # Each candidate's blocking pools, best first; earlier moves in the pass may have
        # changed a pool, so each is checked again before the move.
        blocks = blocks[np.lexsort((m.pref_pos[blocks], m.cand_key[m.opt_c[blocks]]))]
        for o in blocks.tolist():
            ci = opt_c[o]
            cur = match[ci]
            if cur >= 0 and m.pref_pos[cur] <= m.pref_pos[o]:
                continue  # already moved to this pool or a better one in this pass
            if not keeps(o):
                continue
            queue: deque[int] = deque()
            release(ci, queue)
            ptr[ci] = int(m.pref_start[ci] + m.pref_pos[o])
            queue.appendleft(ci)
            run(queue)
    return np.array(match, dtype=np.int64), rounds


def _run_unit(m: _Market) -> tuple[np.ndarray, int]:
    """Deferred acceptance when every option consumes one unit: per pool, a heap of the
    held candidates of each reserved territory and one of the others (worst on top), so a
    proposal costs O(log capacity) and rejects at most one person."""
    n_p = m.n_p
    rank = m.rank.tolist()
    opt_p = m.opt_p.tolist()
    opt_c = m.opt_c.tolist()
    group = m.opt_group.tolist()
    pref_opts = m.pref_opts.tolist()
    residual = m.residual.tolist()
    reserve_cap: list[dict[int, int] | None] = [None] * n_p
    reserve_heap: list[dict[int, list[tuple[int, int]]] | None] = [None] * n_p
    for pi, items in m.reserves.items():
        reserve_cap[pi] = dict(items)
        reserve_heap[pi] = {g: [] for g, _ in items}
    n_reserved = [0] * n_p
    open_heap: list[list[tuple[int, int]]] = [[] for _ in range(n_p)]
    match = [-1] * m.n_c
    ptr = m.pref_start[:-1].tolist()
    end = m.pref_start[1:].tolist()
    pinned = m.pinned.tolist()
    stack = [ci for ci in np.argsort(-m.cand_key).tolist() if not pinned[ci] and end[ci] > ptr[ci]]
    rounds = 0
    push, pop, replace_top = heapq.heappush, heapq.heappop, heapq.heapreplace
    while stack:
        ci = stack.pop()
        j = ptr[ci]
        if j >= end[ci]:
            continue
        ptr[ci] = j + 1
        rounds += 1
        o = pref_opts[j]
        pi = opt_p[o]
        x = o
        caps = reserve_cap[pi]
        if caps is not None:
            g = group[o]
            r = caps.get(g, 0)
            if r:
                h = reserve_heap[pi][g]  # type: ignore[index]
                if len(h) < r:
                    push(h, (-rank[o], o))
                    n_reserved[pi] += 1
                    match[ci] = o
                    x = -1
                elif -h[0][0] > rank[o]:
                    x = replace_top(h, (-rank[o], o))[1]
                    match[ci] = o
        h = open_heap[pi]
        if x >= 0:
            if x == o:
                match[ci] = o
            push(h, (-rank[x], x))
        if len(h) > residual[pi] - n_reserved[pi]:
            out = pop(h)[1]
            oc = opt_c[out]
            match[oc] = -1
            stack.append(oc)
    return np.array(match, dtype=np.int64), rounds


# --------------------------------------------------------------------------- API


def acceptable_pools(
    problem: AllocationProblem, preferences: Mapping[str, Sequence[str]] | None
) -> dict[str, tuple[str, ...]]:
    """For each candidate with at least one option: the pools they accept, most preferred
    first. A candidate with an entry in ``preferences`` accepts exactly those pools, in
    that order, restricted to the pools where they have an option (preferences are never a
    way around eligibility; unknown or repeated pool ids are dropped); a candidate without
    an entry ("any") accepts every pool where they have an option, ordered by option
    weight (descending), then by the stable pair hash of ``matching.allocation``."""
    m = _market(problem, preferences)
    has = np.zeros(m.n_c, dtype=bool)
    has[m.opt_c] = True
    out: dict[str, tuple[str, ...]] = {}
    starts = m.pref_start.tolist()
    pools = m.opt_p[m.pref_opts].tolist()
    for ci in np.flatnonzero(has).tolist():
        out[m.cand_ids[ci]] = tuple(m.pool_ids[x] for x in pools[starts[ci] : starts[ci + 1]])
    return out


def stable_allocation(
    problem: AllocationProblem, preferences: Mapping[str, Sequence[str]] | None = None
) -> StableOutcome:
    """Deferred acceptance, people proposing. Pools rank candidates by grid points, ties
    by the stable pair hash; pins stay; each pool's choice function fills its territories'
    reserved units (floors) first, then the rest by rank, skipping whoever does not fit
    (see the module docstring, also for households). Same input in any order, same
    output. Raises ProblemError on a malformed problem or an impossible pin (French
    message naming it)."""
    m = _market(problem, preferences)
    chosen, rounds = _run_unit(m) if m.unit else _run_general(m)
    return _outcome(m, chosen, rounds)


def _stable_general(
    problem: AllocationProblem, preferences: Mapping[str, Sequence[str]] | None = None
) -> StableOutcome:
    """The generic path even with unit consumption (tests compare both paths)."""
    m = _market(problem, preferences)
    chosen, rounds = _run_general(m)
    return _outcome(m, chosen, rounds)


def _outcome(m: _Market, chosen: np.ndarray, rounds: int) -> StableOutcome:
    opts = np.concatenate([chosen[chosen >= 0], m.pin_opts])
    pairs = sorted(
        (m.cand_ids[ci], m.pool_ids[pi])
        for ci, pi in zip(m.opt_c[opts].tolist(), m.opt_p[opts].tolist(), strict=True)
    )
    return StableOutcome(
        assignments=tuple(pairs),
        weight=int(m.opt_w[opts].sum()),
        served=len(pairs),
        rounds=rounds,
    )


def blocking_pairs(
    problem: AllocationProblem,
    preferences: Mapping[str, Sequence[str]] | None,
    assignments: Iterable[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    """Pairs (candidate, pool) such that the candidate strictly prefers the pool to what
    they got (any acceptable pool beats nothing, and beats a pool they do not accept) and
    the pool's choice function applied to its assignees plus the candidate keeps the
    candidate. Pinned candidates never block (they cannot move). Sorted.

    Raises ProblemError (French) when an assignment names an unknown candidate or pool,
    is not an option of the problem, or gives someone a second place."""
    m = _market(problem, preferences)
    match = _match_of(m, assignments)
    return _blocking(m, match)


def _match_of(m: _Market, assignments: Iterable[tuple[str, str]]) -> np.ndarray:
    """Option index per candidate (-1: none), pinned candidates excluded."""
    cidx = {x: i for i, x in enumerate(m.cand_ids)}
    pidx = {x: i for i, x in enumerate(m.pool_ids)}
    key = m.opt_c * max(m.n_p, 1) + m.opt_p
    order = np.argsort(key)
    key_sorted = key[order]
    match = np.full(m.n_c, -1, dtype=np.int64)
    seen: set[int] = set()
    for i, (cid, pid) in enumerate(assignments):
        ci, pi = cidx.get(cid), pidx.get(pid)
        if ci is None:
            raise ProblemError(f"assignments[{i}].candidate : candidat « {cid} » inconnu")
        if pi is None:
            raise ProblemError(f"assignments[{i}].pool : dispositif « {pid} » inconnu")
        if ci in seen:
            raise ProblemError(f"assignments[{i}] : « {cid} » a déjà une place")
        seen.add(ci)
        at = int(np.searchsorted(key_sorted, ci * max(m.n_p, 1) + pi))
        if at >= len(key_sorted) or key_sorted[at] != ci * max(m.n_p, 1) + pi:
            raise ProblemError(f"assignments[{i}] : « {cid} » n'a pas d'option sur « {pid} »")
        if not m.pinned[ci]:
            match[ci] = order[at]
    return match


def _queries(m: _Market, match: np.ndarray) -> np.ndarray:
    """Acceptable options of free candidates that they strictly prefer to their match."""
    cand = m.opt_c[m.pref_opts]
    pos = np.arange(len(m.pref_opts), dtype=np.int64) - m.pref_start[cand]
    cur = np.full(m.n_c, -1, dtype=np.int64)
    cur[match >= 0] = m.pref_pos[match[match >= 0]]
    cur = np.where(cur >= 0, cur, np.iinfo(np.int64).max)
    return m.pref_opts[(~m.pinned[cand]) & (pos < cur[cand])]


def _blocking(m: _Market, match: np.ndarray) -> tuple[tuple[str, str], ...]:
    found = _blocking_options(m, match)
    return tuple(
        sorted(
            (m.cand_ids[ci], m.pool_ids[pi])
            for ci, pi in zip(m.opt_c[found].tolist(), m.opt_p[found].tolist(), strict=True)
        )
    )


def _blocking_options(m: _Market, match: np.ndarray) -> np.ndarray:
    q = _queries(m, match)
    return q[_kept(m, match, q)]


def _kept(m: _Market, match: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Whether the pool of each option in ``q`` would keep its candidate, choosing among
    its assignees (``match``) plus them.

    Why it vectorises: the choice function scans in rank order, so its decisions on the
    people ranked above the newcomer do not depend on the newcomer. The newcomer takes a
    reserved unit when the units its territory's reserve gave to better-ranked people plus
    its own fit; otherwise the reserves are exactly the assignees' and it is kept when the
    units the open scan gave to better-ranked people plus its own fit in what the reserves
    leave. Both sums are prefix sums over the assignees' own choice, computed once.
    """
    members = match[match >= 0]
    members = members[np.argsort(m.rank[members], kind="stable")]  # by pool, then rank
    m_p = m.opt_p[members].tolist()
    m_g = m.opt_group[members].tolist()
    m_k = m.opt_cons[members].tolist()
    in1 = np.zeros(len(members), dtype=bool)
    used1 = np.zeros(m.n_p, dtype=np.int64)
    if m.reserves:
        left = {(pi, g): r for pi, items in m.reserves.items() for g, r in items}
        for i, (pi, g, k) in enumerate(zip(m_p, m_g, m_k, strict=True)):
            r = left.get((pi, g))
            if r is not None and k <= r:
                in1[i] = True
                left[pi, g] = r - k
                used1[pi] += k
    budget = m.residual - used1
    room = budget.tolist()
    in2 = np.zeros(len(members), dtype=bool)
    for i, (pi, k) in enumerate(zip(m_p, m_k, strict=True)):
        if not in1[i] and k <= room[pi]:
            in2[i] = True
            room[pi] -= k
    qp, qr, qk = m.opt_p[q], m.rank[q], m.opt_cons[q]

    def units_above(keys: np.ndarray, units: np.ndarray, lo: np.ndarray, at: np.ndarray):
        cum = np.concatenate([[0], np.cumsum(units)])
        return cum[np.searchsorted(keys, at)] - cum[np.searchsorted(keys, lo)]

    sel2 = members[in2]
    above2 = units_above(m.rank[sel2], m.opt_cons[sel2], m.pool_start[qp], qr)
    kept = above2 + qk <= budget[qp]
    if m.reserves:
        n_g = int(m.opt_group.max(initial=0)) + 1
        n = max(len(m.rank), 1)
        res_units = np.zeros(m.n_p * n_g, dtype=np.int64)
        for pi, items in m.reserves.items():
            for g, r in items:
                res_units[pi * n_g + g] = r
        sel1 = members[in1]
        key1 = (m.opt_p[sel1] * n_g + m.opt_group[sel1]) * n + m.rank[sel1]
        o1 = np.argsort(key1)
        q_block = qp * n_g + m.opt_group[q]
        above1 = units_above(key1[o1], m.opt_cons[sel1][o1], q_block * n, q_block * n + qr)
        r_q = res_units[q_block]
        kept |= (r_q > 0) & (above1 + qk <= r_q)
    return kept
