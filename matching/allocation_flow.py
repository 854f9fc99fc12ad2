"""Exact allocation by OR-Tools min-cost flow, on columnar (numpy) arrays.

Why: when every option consumes one unit, allocating slots is a transportation problem,
solved exactly and deterministically by min-cost flow in a fraction of the time CP-SAT
needs. Pools stay aggregated (one node with a capacity), never one variable per slot unit,
and the graph is built with vectorised calls: at 500k candidates x 10M options a Python
loop per arc would cost more than the solve itself.

Network (all costs are negated scaled weights, so minimising cost maximises weight)::

    source --1--> candidate --1, -w'--> pool ------cap------> sink
                            \\--1, -w'--> (pool, territory) --[floor, inf)--> pool
    source --------------------- bypass (free) -------------------------> sink

The bypass lets candidates stay unassigned, so the flow maximises weight instead of being
forced to place everyone. Territory floors are lower bounds on the (pool, territory) ->
pool arcs, expressed with the supply/demand trick: the (pool, territory) node must absorb
``floor`` units and the pool node re-emits them. If the floors cannot all be met the flow
is infeasible and the caller falls back to CP-SAT with soft floors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

INT64_SAFE = 2**62


@dataclass(frozen=True)
class Indexed:
    """The problem compiled to arrays, shared by the flow and CP-SAT back-ends.

    Options of pinned candidates are already removed and pool capacities already reduced
    by the pins, so back-ends only see the free part of the problem.
    ``scaled`` = weight * ``scale`` + tie-break, with the tie-break in [1, 2**bits]; the
    scale exceeds any possible sum of tie-breaks, so the scaled optimum is an optimum of
    the caller's weights, made unique (up to hash collisions) by the stable hash.
    """

    n_candidates: int
    n_pools: int
    opt_c: np.ndarray  # candidate index per option (int64)
    opt_p: np.ndarray  # pool index per option (int64)
    opt_w: np.ndarray  # caller's weight (int64)
    opt_cons: np.ndarray  # units consumed (int64)
    scaled: np.ndarray  # weight * scale + tie-break (int64)
    capacity: np.ndarray  # residual units per pool (int64)
    cand_group: np.ndarray  # territory group index per candidate (int64)
    floor_p: np.ndarray  # pool index of each (pool, territory) floor with units left
    floor_g: np.ndarray  # territory group of each floor
    floor_units: np.ndarray  # units still required by each floor (after pins), > 0
    scale: int
    mix: np.ndarray  # 64-bit stable hash of (candidate, pool) per option (uint64)
    max_assign: int  # upper bound on the number of assignments (sets the scale)
    bits: int  # tie-break width in bits
    # Rank of each candidate / pool id in sorted id order: models are built in this order,
    # so the same problem gives the same model (and answer) whatever the input order.
    cand_key: np.ndarray | None = None
    pool_key: np.ndarray | None = None
    # Coupling rules ("IML excludes ALT"): per exclusion, the option indices of which at
    # most one may be chosen, in model order (sorted ids); min-cost flow cannot state them.
    exclusions: tuple[np.ndarray, ...] = ()

    @property
    def unit_consumption(self) -> bool:
        return bool(np.all(self.opt_cons == 1))


def unique_sorted(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values; numpy 2's hash-based ``np.unique`` is ~10x slower here."""
    s = np.sort(a)
    if len(s) == 0:
        return s
    keep = np.ones(len(s), dtype=bool)
    keep[1:] = s[1:] != s[:-1]
    return s[keep]


def tie_break(mix: np.ndarray, bits: int) -> np.ndarray:
    """Top ``bits`` bits of the pair hash, shifted into [1, 2**bits]."""
    if bits == 0:
        return np.ones(len(mix), dtype=np.int64)
    return (mix >> np.uint64(64 - bits)).astype(np.int64) + 1


def with_bits(ix: Indexed, bits: int) -> Indexed:
    """Same problem with a narrower tie-break (smaller costs)."""
    scale = ix.max_assign * (1 << bits) + 1
    scaled = ix.opt_w * scale + tie_break(ix.mix, bits)
    return replace(ix, scale=scale, scaled=scaled, bits=bits)


class CostRangeError(RuntimeError):
    """OR-Tools refused the cost range; retry with a narrower tie-break."""


@dataclass(frozen=True)
class FlowOutcome:
    """Chosen option indices, or ``None`` when the floors made the network infeasible."""

    chosen: np.ndarray | None
    status: str


def solve_flow(ix: Indexed, *, with_floors: bool = True, relax_units: bool = False) -> FlowOutcome:
    """Maximise the scaled weight with min-cost flow.

    ``relax_units`` treats every option as consuming one unit (used to hint CP-SAT);
    ``with_floors=False`` ignores the territory floors (same purpose).
    """
    if not relax_units and not ix.unit_consumption:
        raise ValueError("min-cost flow needs unit consumption")
    n_opt = len(ix.opt_c)
    if n_opt == 0:
        return FlowOutcome(np.zeros(0, dtype=np.int64), "optimal")
    source, sink = 0, 1
    cand_base = 2
    pool_base = cand_base + ix.n_candidates
    use_floors = with_floors and len(ix.floor_p) > 0
    n_floor = len(ix.floor_p) if use_floors else 0
    floor_base = pool_base + ix.n_pools

    active = unique_sorted(ix.opt_c)
    n_active = len(active)

    heads = pool_base + ix.opt_p
    if use_floors:
        # Route each option of a floored (pool, territory) through its floor node.
        key_floor = ix.floor_p * (ix.cand_group.max(initial=0) + 1) + ix.floor_g
        key_opt = ix.opt_p * (ix.cand_group.max(initial=0) + 1) + ix.cand_group[ix.opt_c]
        order = np.argsort(key_floor)
        pos = np.searchsorted(key_floor[order], key_opt)
        pos = np.minimum(pos, n_floor - 1)
        hit = key_floor[order][pos] == key_opt
        heads = np.where(hit, floor_base + order[pos], heads)

    tails_parts = [
        np.full(n_active, source, dtype=np.int64),
        cand_base + ix.opt_c,
        pool_base + np.arange(ix.n_pools, dtype=np.int64),
        np.array([source], dtype=np.int64),
    ]
    heads_parts = [
        cand_base + active,
        heads,
        np.full(ix.n_pools, sink, dtype=np.int64),
        np.array([sink], dtype=np.int64),
    ]
    caps_parts = [
        np.ones(n_active, dtype=np.int64),
        np.ones(n_opt, dtype=np.int64),
        np.maximum(ix.capacity, 0).astype(np.int64),
        np.array([n_active], dtype=np.int64),
    ]
    costs_parts = [
        np.zeros(n_active, dtype=np.int64),
        -ix.scaled,
        np.zeros(ix.n_pools, dtype=np.int64),
        np.zeros(1, dtype=np.int64),
    ]
    if use_floors:
        tails_parts.append(floor_base + np.arange(n_floor, dtype=np.int64))
        heads_parts.append(pool_base + ix.floor_p)
        caps_parts.append(np.full(n_floor, n_active, dtype=np.int64))
        costs_parts.append(np.zeros(n_floor, dtype=np.int64))

    # Imported here: 45 ms of start-up that ``allocate-file`` pays only when a flow is solved
    # (a generalized assignment with everyone placed never needs one).
    from ortools.graph.python import min_cost_flow

    smcf = min_cost_flow.SimpleMinCostFlow()
    smcf.add_arcs_with_capacity_and_unit_cost(
        np.concatenate(tails_parts).astype(np.int32),
        np.concatenate(heads_parts).astype(np.int32),
        np.concatenate(caps_parts),
        np.concatenate(costs_parts),
    )
    n_nodes = floor_base + n_floor
    supplies = np.zeros(n_nodes, dtype=np.int64)
    supplies[source] = n_active
    supplies[sink] = -n_active
    if use_floors:
        # Lower bound l on (floor node -> pool): the floor node must absorb l units
        # coming from candidates, the pool node re-emits them towards the sink.
        supplies[floor_base : floor_base + n_floor] -= ix.floor_units
        np.add.at(supplies, pool_base + ix.floor_p, ix.floor_units)
    smcf.set_nodes_supplies(np.arange(n_nodes, dtype=np.int32), supplies)
    status = smcf.solve()
    if status == smcf.INFEASIBLE:
        return FlowOutcome(None, "infeasible")
    if status == smcf.BAD_COST_RANGE:
        raise CostRangeError(f"cost range refused with {ix.bits} tie-break bits")
    if status != smcf.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed with status {status}")
    option_arcs = np.arange(n_active, n_active + n_opt, dtype=np.int32)
    flows = smcf.flows(option_arcs)
    return FlowOutcome(np.flatnonzero(flows > 0).astype(np.int64), "optimal")


def repair_to_capacity(ix: Indexed, chosen: np.ndarray) -> np.ndarray:
    """Drop the lightest choices until every pool fits its capacity in real units.

    Why: the unit relaxation may overfill pools whose options consume several units; a
    feasible repaired solution is a good CP-SAT hint.
    """
    if len(chosen) == 0:
        return chosen
    order = chosen[np.lexsort((chosen, -ix.scaled[chosen]))]
    left = ix.capacity.copy()
    kept: list[int] = []
    for o in order.tolist():
        p = int(ix.opt_p[o])
        c = int(ix.opt_cons[o])
        if c <= left[p]:
            left[p] -= c
            kept.append(o)
    return np.array(sorted(kept), dtype=np.int64)
