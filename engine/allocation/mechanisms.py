"""A run over pool families with different mechanisms, and offers a person cannot hold together.

Why: the national team chooses per pool family (the pools of one offer) whether it is given by
the grid's optimum or by a stable matching (``Offer.allocation_mechanism``); the solver takes
one mechanism per problem. A run therefore solves the families in two stages: first the
``stable`` families (deferred acceptance, where stated choices are a ranking), then the
``optimal`` families for everyone the first stage left without a place (choices there act as
eligibility). Serving the stable families first is what their choice means: nobody can be
taken out of a stable pool to improve the optimum of another family. Candidates eligible in
only one family — nearly everyone, since a referral's thématique selects the offers — get
exactly the answer of that family's mechanism.

Coupling rules ("IML excludes ALT", ``Offer.excludes``) become solver exclusions between one
person's referrals in the run, and across runs a person who already holds one of the offers
(a validated proposal on a pool still in its period) is not a candidate for the others.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store import models as m
from matching.allocation import (
    AllocationProblem,
    AllocationResult,
    Exclusion,
    Option,
    solve,
)

_STATUS_ORDER = ("optimal", "feasible", "unknown", "infeasible")


def exclusive_groups(offers: Iterable[m.Offer]) -> list[frozenset[int]]:
    """Offer ids that exclude one another, as connected groups (exclusion is symmetric)."""
    by_code = {o.code: o.id for o in offers}
    links: dict[int, set[int]] = defaultdict(set)
    for o in offers:
        for code in o.excludes or []:
            other = by_code.get(code)
            if other is not None and other != o.id:
                links[o.id].add(other)
                links[other].add(o.id)
    groups, seen = [], set()
    for start in sorted(links):
        if start in seen:
            continue
        group, todo = set(), [start]
        while todo:
            x = todo.pop()
            if x in group:
                continue
            group.add(x)
            todo.extend(links[x] - group)
        seen |= group
        groups.append(frozenset(group))
    return groups


def held_offers(
    session: Session, person_ids: Iterable[int], offer_ids: Iterable[int], *, today: date
) -> dict[int, set[int]]:
    """Person id -> offers of ``offer_ids`` they hold: a validated proposal on a pool whose
    period has not ended. Batch query."""
    people, offers = list(set(person_ids)), list(set(offer_ids))
    if not people or not offers:
        return {}
    P, R, S = m.AllocationProposal, m.Referral, m.SlotPool
    rows = session.execute(
        select(R.salarie_id, S.offer_id)
        .join(P, P.referral_id == R.id)
        .join(S, S.id == P.pool_id)
        .where(
            P.status == "validated",
            R.salarie_id.in_(people),
            S.offer_id.in_(offers),
            S.period_end >= today,
        )
    ).all()
    out: dict[int, set[int]] = defaultdict(set)
    for person, offer in rows:
        out[person].add(offer)
    return dict(out)


def apply_exclusions(
    problem: AllocationProblem,
    *,
    groups: list[frozenset[int]],
    offer_of_pool: Mapping[str, int],
    offer_names: Mapping[int, str],
    person_of: Mapping[str, int],
    held: Mapping[int, set[int]],
) -> AllocationProblem:
    """The problem with the coupling rules: options on an offer excluded by one the person
    holds are dropped (with a French reason if nothing is left), and one person's several
    candidates get one solver exclusion per group of exclusive offers they could receive."""
    if not groups:
        return problem
    group_of = {offer: g for g in groups for offer in g}
    dropped: dict[str, list[str]] = defaultdict(list)
    kept: list[Option] = []
    for o in problem.options:
        offer = offer_of_pool.get(o.pool)
        g = group_of.get(offer) if offer is not None else None
        mine = held.get(person_of.get(o.candidate, -1), set())
        blocking = sorted(x for x in mine if g is not None and x in g and x != offer)
        if blocking:
            dropped[o.candidate].append(
                f"{o.pool} : la personne bénéficie déjà de « {offer_names[blocking[0]]} », "
                "que ce dispositif exclut"
            )
            continue
        kept.append(o)
    with_option = {o.candidate for o in kept}
    ineligible = dict(problem.ineligible)
    for cid, reasons in sorted(dropped.items()):
        if cid not in with_option:
            ineligible[cid] = "Non éligible : " + " ; ".join(reasons) + "."
    # One exclusion per (person, group) with at least two candidates on the group's pools.
    per: dict[tuple[int, frozenset[int]], tuple[set[str], set[str]]] = {}
    for o in kept:
        offer = offer_of_pool.get(o.pool)
        g = group_of.get(offer) if offer is not None else None
        if g is None or o.candidate not in person_of:
            continue
        cands, pools = per.setdefault((person_of[o.candidate], g), (set(), set()))
        cands.add(o.candidate)
        pools.add(o.pool)
    exclusions = tuple(
        Exclusion(tuple(sorted(c)), tuple(sorted(p)))
        for (_, _), (c, p) in sorted(per.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1])))
        if len(c) > 1
    )
    return replace(
        problem,
        options=tuple(kept),
        ineligible=ineligible,
        exclusions=problem.exclusions + exclusions,
    )


def _stage(problem: AllocationProblem, pools: set[str], candidates: set[str]) -> AllocationProblem:
    """The part of ``problem`` on ``pools`` for ``candidates``."""
    options = tuple(o for o in problem.options if o.pool in pools and o.candidate in candidates)
    pins = tuple(p for p in problem.pinned if p.pool in pools and p.candidate in candidates)
    involved = {o.candidate for o in options} | {p.candidate for p in pins}
    return replace(
        problem,
        pools=tuple(p for p in problem.pools if p.id in pools),
        candidates=tuple(c for c in problem.candidates if c.id in involved),
        options=options,
        pinned=pins,
        ineligible={k: v for k, v in problem.ineligible.items() if k in involved},
        preferences={
            c: tuple(p for p in prefs if p in pools)
            for c, prefs in problem.preferences.items()
            if c in involved
        },
        shortlist={k: v for k, v in problem.shortlist.items() if k in pools},
        exclusions=tuple(
            Exclusion(
                tuple(c for c in e.candidates if c in involved),
                tuple(p for p in e.pools if p in pools),
            )
            for e in problem.exclusions
            if any(c in involved for c in e.candidates) and any(p in pools for p in e.pools)
        ),
    )


def solve_by_family(
    problem: AllocationProblem, mechanism_of_pool: Mapping[str, str]
) -> AllocationResult:
    """Solve with each pool's family mechanism (see the module's docstring)."""
    stable_pools = {p.id for p in problem.pools if mechanism_of_pool.get(p.id) == "stable"}
    if not stable_pools:
        return solve(replace(problem, mechanism="optimal"))
    if len(stable_pools) == len(problem.pools):
        return solve(replace(problem, mechanism="stable"))
    optimal_pools = {p.id for p in problem.pools} - stable_pools
    everyone = {c.id for c in problem.candidates}
    first = solve(replace(_stage(problem, stable_pools, everyone), mechanism="stable"))
    placed = {c for c, _ in first.assignments}
    rest = _stage(problem, optimal_pools, everyone - placed)
    # Those no family could consider keep their French reason in the last stage.
    considered = (
        {c.id for c in rest.candidates}
        | {c for c, _ in first.assignments}
        | {u.candidate for u in first.unassigned}
    )
    lost = [c for c in problem.candidates if c.id not in considered]
    rest = replace(
        rest,
        candidates=rest.candidates + tuple(lost),
        ineligible=dict(rest.ineligible)
        | {c.id: problem.ineligible[c.id] for c in lost if c.id in problem.ineligible},
    )
    second = solve(replace(rest, mechanism="optimal"))
    return merge(first, second, {c.id for c in rest.candidates if _has_option(rest, c.id)})


def _has_option(problem: AllocationProblem, cid: str) -> bool:
    return any(o.candidate == cid for o in problem.options) or any(
        p.candidate == cid for p in problem.pinned
    )


def merge(
    first: AllocationResult, second: AllocationResult, second_options: set[str]
) -> AllocationResult:
    """One result from the stable stage and the optimal stage: a candidate left without a
    place keeps the reason of the last stage where they had an option."""
    placed = {c for c, _ in first.assignments} | {c for c, _ in second.assignments}
    unassigned: dict[str, Any] = {}
    for u in first.unassigned:
        if u.candidate not in placed:
            unassigned[u.candidate] = u
    for u in second.unassigned:
        if u.candidate not in placed and (
            u.candidate in second_options or u.candidate not in unassigned
        ):
            unassigned[u.candidate] = u
    explanations = dict(first.explanations)
    placed_second = {c for c, _ in second.assignments}
    reasons_second = {u.candidate: u for u in second.unassigned}
    for cid, text in second.explanations.items():
        if cid in placed_second or (
            cid not in placed and unassigned.get(cid) is reasons_second.get(cid)
        ):
            explanations[cid] = text
        else:
            explanations.setdefault(cid, text)
    status = max(
        (first.status, second.status),
        key=lambda s: _STATUS_ORDER.index(s) if s in _STATUS_ORDER else len(_STATUS_ORDER),
    )
    return AllocationResult(
        status=status,
        objective=first.objective + second.objective,
        bound=first.bound + second.bound,
        solver="+".join(dict.fromkeys(s for s in (first.solver, second.solver) if s != "none"))
        or "none",
        assignments=tuple(sorted(first.assignments + second.assignments)),
        unassigned=tuple(sorted(unassigned.values())),
        envy=first.envy + second.envy,
        stats=_merged_stats(first.stats, second.stats),
        explanations=explanations,
        message=" ".join(x for x in (first.message, second.message) if x),
        shortlists={**first.shortlists, **second.shortlists},
        blocking_pairs=tuple(sorted(first.blocking_pairs + second.blocking_pairs)),
    )


def _merged_stats(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("time_s", "options", "pinned", "assigned", "components", "cp_sat_components",
                "floors", "floors_unmet", "envy"):  # fmt: skip
        out[key] = (a.get(key) or 0) + (b.get(key) or 0)
    out["time_s"] = round(out["time_s"], 4)
    out["candidates"] = max(a.get("candidates") or 0, b.get("candidates") or 0)
    out["pools"] = (a.get("pools") or 0) + (b.get("pools") or 0)
    out["territory_floor_alpha"] = a.get("territory_floor_alpha", b.get("territory_floor_alpha"))
    out["tie_break_bits"] = max(a.get("tie_break_bits") or 0, b.get("tie_break_bits") or 0)
    for ratio in ("worst_fill_ratio",):
        values = [x[ratio] for x in (a, b) if x.get(ratio) is not None]
        out[ratio] = min(values) if values else None
    shares = [x for x in (a, b) if x.get("worst_share_ratio") is not None]
    least = min(shares, key=lambda x: x["worst_share_ratio"]) if shares else {}
    out["worst_share_ratio"] = least.get("worst_share_ratio")
    out["worst_share_pool"] = least.get("worst_share_pool")
    out["worst_share_territory"] = least.get("worst_share_territory")
    out["per_pool"] = {**(a.get("per_pool") or {}), **(b.get("per_pool") or {})}
    figures = [x["mechanisms"] for x in (a, b) if isinstance(x.get("mechanisms"), dict)]
    if figures:
        summed = {
            k: sum(f.get(k) or 0 for f in figures)
            for k in (
                "optimal_weight",
                "optimal_served",
                "optimal_blocking_pairs",
                "stable_weight",
                "stable_served",
                "stable_blocking_pairs",
            )  # fmt: skip
        }
        summed["weight_ratio"] = (
            round(summed["stable_weight"] / summed["optimal_weight"], 6)
            if summed["optimal_weight"] > 0
            else None
        )
        out["mechanisms"] = summed
    for key in ("shortlists",):
        if a.get(key) or b.get(key):
            out[key] = _merge_any(a.get(key), b.get(key))
    return out


def _merge_any(x: Any, y: Any) -> Any:
    if isinstance(x, dict) and isinstance(y, dict):
        return {**x, **y}
    if isinstance(x, list) and isinstance(y, list):
        return x + y
    return x if x else y
