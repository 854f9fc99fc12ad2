"""Allocation of counted slots: one run proposes, a coordinator validates.

Why this shape: the solver (``matching.allocation``) is pure and exact; this module turns
the waitlist into its input — candidates are waitlisted referrals, options are the pools
whose offer covers the frein and the territory and whose eligibility rules the person meets,
weights are lexicographic (priority first, then small fit bonuses) — stores the run with its
digest, parameters and explanations, and writes *proposals*, never decisions. Validation
consumes slot units under a lock on the pool (and the database's "one active assignment per
unit" index as a backstop), so units are never over-consumed, even concurrently.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.access.permissions import can
from engine.allocation import commission
from engine.allocation.mechanisms import (
    apply_exclusions,
    exclusive_groups,
    held_offers,
    solve_by_family,
)
from engine.allocation.preferences import mechanism_by_offer, preferences_for_run
from engine.domain.clock import Clock, as_utc
from engine.domain.errors import Conflict, NotFound, Refused
from engine.domain.labels import DECLINE_LABELS, DECLINE_REASONS, plural
from engine.domain.lifecycle import TransitionError
from engine.outbox import messages
from engine.outbox.enqueue import enqueue_many
from engine.outbox.messages import OUTSIDE_TERRITORY, Links, Recipient
from engine.referrals.actions import StaleEdit
from engine.referrals.transitions import Actor, apply_transition
from engine.store import dialect
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings
from matching.allocation import (
    AllocationProblem,
    AllocationResult,
    Candidate,
    Option,
    Pin,
    Pool,
    lexicographic_weights,
)
from matching.eligibility import evaluate
from matching.facts import PersonFacts
from partners.eligibility_rules import Rule
from partners.taxonomy import covers

FIT_CHOSEN_POOL = 2  # the pool the chargé·e asked for
FIT_HOME_POOL = 1  # a pool dedicated to the person's own territory
MAX_FIT = FIT_CHOSEN_POOL + FIT_HOME_POOL
STALE_RUN_AFTER = timedelta(hours=1)
DEFAULT_ALPHA = 0.8
ACTOR = Actor.system("allocation")


class AllocationBusy(Conflict):
    """Another run is in progress (French message)."""


@dataclass
class AllocationReport:
    run_id: int
    status: str
    solver: str
    time_s: float
    dry_run: bool
    proposals_by_pool: dict[str, int] = field(default_factory=dict)
    waiting: int = 0
    candidates: int = 0
    worst_fill_ratio: float | None = None
    worst_share_ratio: float | None = None
    envy: int = 0
    envy_causes: dict[str, int] = field(default_factory=dict)
    message: str = ""
    alpha: float | None = None
    worst_share_territory: str | None = None
    worst_share_pool: str | None = None
    # Commission pools: pool name -> units given a ranked list, and candidates listed.
    commission_units: dict[str, int] = field(default_factory=dict)
    commission_listed: dict[str, int] = field(default_factory=dict)

    def lines_fr(self, names: dict[str, str] | None = None) -> list[str]:
        """The run in the words of the Attributions page (``names``: territory code -> name)."""
        from engine.allocation.review import fairness_sentences, least_served, with_territory_names

        names = names or {}
        lines = [
            "Simulation d'attribution : rien n'a été enregistré ni envoyé."
            if self.dry_run
            else "Attribution des places : propositions à valider par la coordination."
        ]
        if self.status not in ("optimal", "feasible"):
            lines.append("Le calcul n'a pas abouti : aucune place n'est proposée.")
        if self.message:
            lines.append(self.message)
        total = sum(self.proposals_by_pool.values())
        verb = (
            ("serait proposée" if total < 2 else "seraient proposées")
            if self.dry_run
            else ("proposée" if total < 2 else "proposées")
        )
        lines.append(
            f"{plural(self.waiting + total, 'personne en attente', 'personnes en attente')} d'une "
            f"place ; {plural(total, 'place')} {verb}."
        )
        for name, n in sorted(self.proposals_by_pool.items()):
            lines.append(f"  - {with_territory_names(name, names)} : {plural(n, 'proposition')}")
        lines += commission_lines(
            self.commission_units, self.commission_listed, names, conditional=self.dry_run
        )
        stay = (
            plural(self.waiting, "personne resterait", "personnes resteraient")
            if self.dry_run
            else plural(self.waiting, "personne reste", "personnes restent")
        )
        lines.append(f"{stay} en attente.")
        lines += fairness_sentences(
            worst_share=self.worst_share_ratio,
            alpha=self.alpha,
            waited=self.envy,
            causes=self.envy_causes,
            conditional=self.dry_run,
            least_served=least_served(self.worst_share_territory, self.worst_share_pool, names),
        )
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "solver": self.solver,
            "time_s": self.time_s,
            "dry_run": self.dry_run,
            "proposals_by_pool": self.proposals_by_pool,
            "waiting": self.waiting,
            "candidates": self.candidates,
            "worst_fill_ratio": self.worst_fill_ratio,
            "worst_share_ratio": self.worst_share_ratio,
            "envy": self.envy,
            "envy_causes": self.envy_causes,
            "message": self.message,
            "alpha": self.alpha,
            "worst_share_territory": self.worst_share_territory,
            "worst_share_pool": self.worst_share_pool,
            "commission_units": self.commission_units,
            "commission_listed": self.commission_listed,
        }


def commission_lines(
    units: dict[str, int],
    listed: dict[str, int],
    names: dict[str, str] | None = None,
    *,
    conditional: bool = False,
) -> list[str]:
    """ "CDC Habitat — … (Paris, Seine-Saint-Denis) : 3 unités en commission, 9 candidats
    classés (rang 1 proposé, les suivants ne sont prévenus que si leur rang est atteint)." """
    from engine.allocation.review import with_territory_names

    out = []
    for name, n in sorted(units.items()):
        verb = "iraient" if conditional else ("vont" if n > 1 else "va")
        out.append(
            f"{with_territory_names(name, names or {})} : {plural(n, 'unité')} {verb} en "
            f"commission, {plural(listed.get(name, 0), 'candidat classé', 'candidats classés')}"
            " (le rang 1 est proposé ; les rangs suivants ne sont prévenus que si leur rang "
            "est atteint)."
        )
    return out


def _facts(s: m.Salarie, territory: str | None, open_freins: int) -> PersonFacts:
    return PersonFacts(
        person_id=s.id,
        programme=s.programme,
        territory=territory,
        housing=s.housing,
        street_months=s.street_months,
        has_resources=s.has_resources,
        household_size=s.household_size,
        minor_children=s.minor_children,
        rqth=s.rqth,
        vulnerability_flags=frozenset(x for x in s.vulnerability_flags.split("|") if x),
        health_urgency=s.health_urgency,
        open_freins=open_freins,
        programme_end=s.programme_end,
    )


def units_for(pool: m.SlotPool, person: m.Salarie) -> int:
    """Units one person consumes: a shelter place per member of the household, else one."""
    return max(1, person.household_size) if pool.unit_kind == "place" else 1


def _start_run(
    session: Session,
    *,
    dry_run: bool,
    territory: str | None,
    actor_user_id: int | None,
    params: dict,
    now: datetime,
) -> m.AllocationRun:
    stale = now - STALE_RUN_AFTER
    for run in session.scalars(
        select(m.AllocationRun).where(m.AllocationRun.status == "running")
    ).all():
        if as_utc(run.started_at) < stale:
            run.status, run.finished_at = "failed", now
    session.flush()
    run = m.AllocationRun(
        status="running",
        dry_run=dry_run,
        territory_code=territory,
        parameters=params,
        created_by=actor_user_id,
        started_at=now,
    )
    session.add(run)
    try:
        session.flush()
    except IntegrityError as exc:
        raise AllocationBusy(
            "une attribution est déjà en cours : réessayez dans quelques instants"
        ) from exc
    return run


def run_allocation(
    db: Database,
    settings: Settings,
    *,
    clock: Clock,
    territory: str | None = None,
    dry_run: bool = False,
    actor_user_id: int | None = None,
    alpha: float = DEFAULT_ALPHA,
    time_limit_s: float = 20.0,
) -> AllocationReport:
    """Solve the waitlist against the open pools and write proposals (unless dry run)."""
    params = {
        "alpha": alpha,
        "time_limit_s": time_limit_s,
        "fit": {"chosen_pool": FIT_CHOSEN_POOL, "home_pool": FIT_HOME_POOL},
    }
    with unit_of_work(db) as session:
        run_id = _start_run(
            session,
            dry_run=dry_run,
            territory=territory,
            actor_user_id=actor_user_id,
            params=params,
            now=clock.now(),
        ).id
    try:
        with unit_of_work(db, immediate=True) as session:
            run = session.get(m.AllocationRun, run_id)
            assert run is not None
            report = _solve_and_store(
                session,
                settings,
                run,
                territory=territory,
                dry_run=dry_run,
                alpha=alpha,
                time_limit_s=time_limit_s,
                clock=clock,
            )
    except BaseException:
        with unit_of_work(db) as session:
            session.execute(
                update(m.AllocationRun)
                .where(m.AllocationRun.id == run_id)
                .values(status="failed", finished_at=clock.now())
            )
        raise
    return report


@dataclass
class _Snapshot:
    """What one allocation run reads: pools and their free units, the waiting referrals,
    their people, the pending proposals (pins) and each offer's rules."""

    terr_code: dict[int, str]
    pools: list[m.SlotPool]
    offers: dict[int, m.Offer]
    used: dict[int, int]
    names: dict[int, str]
    referrals: list[m.Referral]
    people: dict[int, m.Salarie]
    open_counts: dict[int, int]
    pending: dict[int, m.AllocationProposal]
    rules: dict[int, tuple[Rule, ...]]
    # People waiting on an open commission list (referral id -> run, pool, rank): held out.
    listed: dict[int, tuple[int, int, int]] = field(default_factory=dict)


def _snapshot(session: Session, territory: str | None) -> _Snapshot:
    terr_code = dict(session.execute(select(m.Territory.id, m.Territory.code)).all())
    terr_id = {v: k for k, v in terr_code.items()}
    if territory is not None and territory not in terr_id:
        raise Refused(f"territoire inconnu : « {territory[:40]} »")
    pools = list(session.scalars(select(m.SlotPool).order_by(m.SlotPool.id)).all())
    offers = {o.id: o for o in session.scalars(select(m.Offer)).all()}
    used = dict(
        session.execute(
            select(m.SlotUnit.pool_id, func.count())
            .join(m.SlotAssignment, m.SlotAssignment.unit_id == m.SlotUnit.id)
            .where(m.SlotAssignment.active)
            .group_by(m.SlotUnit.pool_id)
        ).all()
    )
    if territory is not None:
        pools = [p for p in pools if p.scope is None or territory in p.scope]
    # Pools keep their pending proposals as pins: remaining = capacity - validated units.
    # The solver knows pools by their (unique) display names, so its French explanations
    # read "Place attribuée dans CDC Habitat — …" without any rewriting.
    seen: Counter[str] = Counter(p.name for p in pools)
    names = {p.id: p.name if seen[p.name] == 1 else f"{p.name} (n° {p.id})" for p in pools}
    q = select(m.Referral).where(m.Referral.state.in_(("waitlisted", "proposed")))
    if territory is not None:
        q = q.where(m.Referral.territory_id == terr_id[territory])
    listed = commission.held_referrals(session)
    referrals = [r for r in session.scalars(q.order_by(m.Referral.id)).all() if r.id not in listed]
    ids = {r.salarie_id for r in referrals}
    people = (
        {s.id: s for s in session.scalars(select(m.Salarie).where(m.Salarie.id.in_(ids))).all()}
        if referrals
        else {}
    )
    open_counts = (
        dict(
            session.execute(
                select(m.Frein.salarie_id, func.count())
                .where(m.Frein.status == "open", m.Frein.salarie_id.in_(list(people)))
                .group_by(m.Frein.salarie_id)
            ).all()
        )
        if people
        else {}
    )
    pending = {
        p.referral_id: p
        for p in session.scalars(
            select(m.AllocationProposal).where(m.AllocationProposal.status == "proposed")
        ).all()
    }
    rules = {
        oid: tuple(Rule.model_validate(r) for r in (o.rules or [])) for oid, o in offers.items()
    }
    return _Snapshot(
        terr_code,
        pools,
        offers,
        used,
        names,
        referrals,
        people,
        open_counts,
        pending,
        rules,
        listed
        if territory is None
        else {rid: listed[rid] for rid in _in_territory(session, list(listed), terr_id[territory])},
    )


def _in_territory(session: Session, referral_ids: list[int], territory_id: int) -> set[int]:
    if not referral_ids:
        return set()
    return set(
        session.scalars(
            select(m.Referral.id).where(
                m.Referral.id.in_(referral_ids), m.Referral.territory_id == territory_id
            )
        ).all()
    )


@dataclass
class _Built:
    problem: AllocationProblem
    by_id: dict[str, m.Referral]
    weight_of: dict[tuple[str, str], int]
    pinned: set[tuple[str, str]]


def _build_problem(snap: _Snapshot, *, alpha: float, time_limit_s: float) -> _Built:
    """Candidates, their eligible options (weight: priority then fit), pins and the French
    reason of those no pool accepts."""
    cand_list: list[Candidate] = []
    options: list[Option] = []
    pins: list[Pin] = []
    ineligible: dict[str, str] = {}
    by_id: dict[str, m.Referral] = {}
    for r in snap.referrals:
        person = snap.people[r.salarie_id]
        code = snap.terr_code.get(r.territory_id) if r.territory_id else None
        facts = _facts(person, code, snap.open_counts.get(person.id, 1))
        cid = str(r.id)
        by_id[cid] = r
        cand_list.append(Candidate(cid, r.priority, code))
        reasons = []
        for p in snap.pools:
            offer = snap.offers[p.offer_id]
            if not any(covers(t, r.thematique) for t in offer.thematiques) and p.id != r.pool_id:
                continue
            if p.scope is not None and code not in p.scope:
                continue
            verdict = evaluate(snap.rules[offer.id], facts)
            name = snap.names[p.id]
            if not verdict.eligible:
                reasons.append(f"{name} : {verdict.failed[0].label}" if verdict.failed else name)
                continue
            fit = (FIT_CHOSEN_POOL if p.id == r.pool_id else 0) + (
                FIT_HOME_POOL if p.territory_id == r.territory_id and p.territory_id else 0
            )
            weight = lexicographic_weights(r.priority, fit, MAX_FIT)
            options.append(Option(cid, name, weight, units_for(p, person)))
        if r.state == "proposed" and r.id in snap.pending:
            pinned_pool = snap.pending[r.id].pool_id
            pins.append(Pin(cid, snap.names.get(pinned_pool, str(pinned_pool))))
        if reasons:
            ineligible[cid] = "Non éligible : " + " ; ".join(reasons) + "."
    # Candidates with an option keep the solver's reason; the others get the rule that
    # excluded them.
    has_option = {o.candidate for o in options}
    ineligible = {k: v for k, v in ineligible.items() if k not in has_option}
    free = [
        Pool(
            snap.names[p.id],
            max(0, p.capacity - snap.used.get(p.id, 0)),
            snap.terr_code.get(p.territory_id) if p.territory_id else None,
        )
        for p in snap.pools
    ]
    # Commission pools with a unit neither attributed nor held by a pending proposal (pins
    # hold the units under examination) get a ranked list per free unit.
    pinned_units: Counter[str] = Counter()
    for pin in pins:
        pinned_units[pin.pool] += 1
    shortlist = {
        snap.names[p.id]: p.shortlist_size
        for p in snap.pools
        if p.commission and p.capacity - snap.used.get(p.id, 0) - pinned_units[snap.names[p.id]] > 0
    }
    problem = AllocationProblem(
        pools=tuple(free),
        candidates=tuple(cand_list),
        options=tuple(options),
        pinned=tuple(pins),
        territory_floor_alpha=alpha,
        time_limit_s=time_limit_s,
        num_workers=1,
        ineligible=ineligible,
        shortlist=shortlist,
    )
    weight_of = {(o.candidate, o.pool): o.weight for o in options}
    return _Built(problem, by_id, weight_of, {(p.candidate, p.pool) for p in pins})


def _explanations(
    result: AllocationResult, by_id: dict[str, m.Referral], snap: _Snapshot | None = None
) -> dict[str, str]:
    """The solver's French sentence, then the points that made the priority; people held
    on an open commission list say so (they are no candidate of this run)."""
    out: dict[str, str] = {}
    if snap is not None:
        for rid, (run_id, pool_id, rank) in sorted(snap.listed.items()):
            name = snap.names.get(pool_id, f"dispositif n° {pool_id}")
            out[str(rid)] = (
                f"En attente de la commission pour {name} : rang {rank} de la liste de "
                f"l'exécution n° {run_id} ; pas d'autre proposition tant que la commission "
                "n'a pas atteint ou passé ce rang."
            )
    for cid, text in result.explanations.items():
        r = by_id[cid]
        points = " + ".join(
            f"{line[2]} ({line[1].split(' :')[0].lower()})" for line in (r.priority_breakdown or [])
        )
        out[cid] = f"{text} Détail des points : {points or 'aucun critère'} = {r.priority}."
    return out


def _solve_and_store(
    session: Session,
    settings: Settings,
    run: m.AllocationRun,
    *,
    territory: str | None,
    dry_run: bool,
    alpha: float,
    time_limit_s: float,
    clock: Clock,
) -> AllocationReport:
    snap = _snapshot(session, territory)
    waiting_before = sum(1 for r in snap.referrals if r.state == "waitlisted")
    built = _build_problem(snap, alpha=alpha, time_limit_s=time_limit_s)
    built.problem, mechanism_of_pool = _choices_and_rules(session, snap, built, clock=clock)
    digest = _digest(built.problem, mechanism_of_pool)
    result = solve_by_family(built.problem, mechanism_of_pool)
    explanations = _explanations(result, built.by_id, snap)
    proposals_by_pool: Counter[str] = Counter()
    commission_units: Counter[str] = Counter()
    commission_listed: Counter[str] = Counter()
    if not dry_run and result.status in ("optimal", "feasible"):
        coord_counts = _store_proposals(
            session,
            settings,
            run,
            snap,
            built,
            result,
            explanations,
            proposals_by_pool,
            clock=clock,
        )
        for name, (n_units, n_listed) in _store_shortlists(
            session, settings, run, snap, built, result, explanations, coord_counts, clock=clock
        ).items():
            proposals_by_pool[name] += n_units
            commission_units[name] += n_units
            commission_listed[name] += n_listed
        _notify_coordinators(session, settings, run.id, coord_counts, now=clock.now())
    elif dry_run:
        for cid, pid in result.assignments:
            if (cid, pid) not in built.pinned:
                proposals_by_pool[pid] += 1
        for pid, lists in result.shortlists.items():
            commission_units[pid] += sum(1 for entries in lists if entries)
            commission_listed[pid] += sum(len(entries) for entries in lists)
    _finish_run(run, result, snap, proposals_by_pool, explanations, digest, clock=clock)
    # Who stays (or, for a simulation, would stay) waiting once the new proposals are made.
    waiting = waiting_before - sum(proposals_by_pool.values())
    return AllocationReport(
        run_id=run.id,
        status=result.status,
        solver=result.solver,
        time_s=run.time_s or 0.0,
        dry_run=dry_run,
        proposals_by_pool=dict(proposals_by_pool),
        waiting=max(0, waiting),
        candidates=len(built.problem.candidates),
        worst_fill_ratio=result.stats.get("worst_fill_ratio"),
        worst_share_ratio=result.stats.get("worst_share_ratio"),
        envy=len(result.envy),
        message=result.message,
        envy_causes=dict(Counter(e.cause for e in result.envy)),
        alpha=result.stats.get("territory_floor_alpha"),
        worst_share_territory=result.stats.get("worst_share_territory"),
        worst_share_pool=result.stats.get("worst_share_pool"),
        commission_units=dict(commission_units),
        commission_listed=dict(commission_listed),
    )


def _store_proposals(
    session: Session,
    settings: Settings,
    run: m.AllocationRun,
    snap: _Snapshot,
    built: _Built,
    result: AllocationResult,
    explanations: dict[str, str],
    proposals_by_pool: Counter[str],
    *,
    clock: Clock,
) -> Counter[int]:
    """One proposal per new assignment, through the door (``propose``); the coordinators
    of each territory are counted for their "proposals to validate" mail."""
    pool_named = {snap.names[p.id]: p for p in snap.pools}
    coord_counts: Counter[int] = Counter()
    expires = clock.now() + timedelta(days=settings.proposal_expiry_days)
    for cid, pid in result.assignments:
        if (cid, pid) in built.pinned or pid in result.shortlists:
            continue  # a commission pool's rang 1 is proposed with its list
        r = built.by_id[cid]
        pool = pool_named[pid]
        prop = m.AllocationProposal(
            run_id=run.id,
            referral_id=r.id,
            pool_id=pool.id,
            units=units_for(pool, snap.people[r.salarie_id]),
            weight=built.weight_of[(cid, pid)],
            priority=r.priority,
            explanation=explanations[cid],
            status="proposed",
            expires_at=expires,
        )
        session.add(prop)
        session.flush()
        apply_transition(
            session,
            settings,
            r,
            "propose",
            actor=ACTOR,
            clock=clock,
            proposal=prop,
            note=f"exécution n° {run.id}",
        )
        proposals_by_pool[snap.names[pool.id]] += 1
        if r.territory_id:
            for coord in _coordinators(session, r.territory_id):
                coord_counts[coord.id] += 1
    return coord_counts


def _store_shortlists(
    session: Session,
    settings: Settings,
    run: m.AllocationRun,
    snap: _Snapshot,
    built: _Built,
    result: AllocationResult,
    explanations: dict[str, str],
    coord_counts: Counter[int],
    *,
    clock: Clock,
) -> dict[str, tuple[int, int]]:
    """The solver's lists of each commission pool (units it left without a candidate get
    none), written by ``commission.store_shortlists``; pool name -> (units, listed)."""
    pool_named = {snap.names[p.id]: p for p in snap.pools}
    out: dict[str, tuple[int, int]] = {}
    for name, units in sorted(result.shortlists.items()):
        pool = pool_named[name]
        lists = [
            [
                commission.Listed(
                    referral=built.by_id[cid],
                    units=units_for(pool, snap.people[built.by_id[cid].salarie_id]),
                    weight=built.weight_of[(cid, name)],
                    explanation=explanations[cid],
                )
                for cid in entries
            ]
            for entries in units
            if entries
        ]
        if not lists:
            continue
        stored = commission.store_shortlists(
            session, settings, run, pool, lists, clock=clock, actor=ACTOR
        )
        out[name] = (stored.units, stored.candidates)
        for prop in stored.proposals:
            ref = session.get(m.Referral, prop.referral_id)
            if ref is not None and ref.territory_id:
                for coord in _coordinators(session, ref.territory_id):
                    coord_counts[coord.id] += 1
    return out


def _finish_run(
    run: m.AllocationRun,
    result: AllocationResult,
    snap: _Snapshot,
    proposals_by_pool: Counter[str],
    explanations: dict[str, str],
    digest: str,
    *,
    clock: Clock,
) -> None:
    """The run's status, figures per pool, envy cases and explanations; frees the
    one-running-run slot."""
    st = result.stats.get("per_pool", {})
    by_pool = []
    for p in snap.pools:
        name = snap.names[p.id]
        entry = st.get(name, {}) if isinstance(st, dict) else {}
        entry = entry if isinstance(entry, dict) else {}
        waiting = sum(1 for r in snap.referrals if r.pool_id == p.id and r.state == "waitlisted")
        by_pool.append(
            {
                "pool_id": p.id,
                "name": name,
                "capacity": p.capacity,
                "used": snap.used.get(p.id, 0),
                "proposed": proposals_by_pool.get(name, 0),
                "waiting": waiting,
                "cutoff": entry.get("cutoff_priority"),
                "worst_fill_ratio": entry.get("worst_fill_ratio"),
            }
        )
    run.status = result.status
    run.solver, run.objective, run.bound = result.solver, result.objective, result.bound
    run.time_s = float(result.stats.get("time_s", 0.0))
    run.inputs_digest = digest
    run.finished_at = clock.now()
    run.running_lock = run.id  # release the "one running run" slot
    run.stats = {k: v for k, v in result.stats.items() if k != "per_pool"} | {"by_pool": by_pool}
    run.stats["envy_cases"] = [
        {"candidate": e.candidate, "pool": e.pool, "envied": e.envied, "cause": e.cause}
        for e in result.envy
    ]
    if result.shortlists:
        pool_id = {snap.names[p.id]: p.id for p in snap.pools}
        run.stats["commissions"] = [
            {
                "pool_id": pool_id[name],
                "name": name,
                "units": sum(1 for entries in lists if entries),
                "listed": sum(len(entries) for entries in lists),
            }
            for name, lists in sorted(result.shortlists.items())
        ]
    run.explanations = explanations


def _choices_and_rules(
    session: Session, snap: _Snapshot, built: _Built, *, clock: Clock
) -> tuple[AllocationProblem, dict[str, str]]:
    """The problem with what people stated (``allocation_preference``), the coupling rules
    between offers (``Offer.excludes``), and each pool's family mechanism."""
    prefs = preferences_for_run(
        session,
        (r.id for r in snap.referrals),
        snap.names,
        {p.id: snap.terr_code.get(p.territory_id) if p.territory_id else None for p in snap.pools},
    )
    mechanisms = mechanism_by_offer(session)
    mechanism_of_pool = {
        snap.names[p.id]: mechanisms.get(p.offer_id, "optimal") for p in snap.pools
    }
    problem = replace(built.problem, preferences=prefs)
    groups = exclusive_groups(snap.offers.values())
    if groups:
        in_groups = {o for g in groups for o in g}
        problem = apply_exclusions(
            problem,
            groups=groups,
            offer_of_pool={snap.names[p.id]: p.offer_id for p in snap.pools},
            offer_names={oid: o.name for oid, o in snap.offers.items()},
            person_of={cid: r.salarie_id for cid, r in built.by_id.items()},
            held=held_offers(
                session,
                (r.salarie_id for r in snap.referrals),
                in_groups,
                today=clock.now().date(),
            ),
        )
    return problem, mechanism_of_pool


def _digest(problem: AllocationProblem, mechanism_of_pool: dict[str, str] | None = None) -> str:
    blob = json.dumps(
        {
            "pools": [(p.id, p.capacity, p.territory) for p in problem.pools],
            "candidates": [(c.id, c.priority, c.territory) for c in problem.candidates],
            "options": [(o.candidate, o.pool, o.weight, o.consumption) for o in problem.options],
            "pinned": [(p.candidate, p.pool) for p in problem.pinned],
            "alpha": problem.territory_floor_alpha,
        }
        # Runs without a commission pool, choices, rules or stable family keep the digest
        # they always had.
        | ({"shortlist": sorted(problem.shortlist.items())} if problem.shortlist else {})
        | (
            {"preferences": sorted((k, list(v)) for k, v in problem.preferences.items())}
            if problem.preferences
            else {}
        )
        | (
            {"exclusions": [(list(e.candidates), list(e.pools)) for e in problem.exclusions]}
            if problem.exclusions
            else {}
        )
        | (
            {"stable": sorted(k for k, v in (mechanism_of_pool or {}).items() if v == "stable")}
            if any(v == "stable" for v in (mechanism_of_pool or {}).values())
            else {}
        ),
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _coordinators(session: Session, territory_id: int) -> list[m.StaffUser]:
    return list(
        session.scalars(
            select(m.StaffUser).where(
                m.StaffUser.role == "coordinator",
                m.StaffUser.territory_id == territory_id,
                m.StaffUser.active,
            )
        ).all()
    )


def _notify_coordinators(
    session: Session, settings: Settings, run_id: int, counts: Counter[int], *, now: datetime
) -> None:
    links = Links(settings.base_url)
    batch = []
    for uid, n in sorted(counts.items()):
        u = session.get(m.StaffUser, uid)
        assert u is not None
        terr = session.get(m.Territory, u.territory_id) if u.territory_id else None
        territory = terr.name if terr else OUTSIDE_TERRITORY
        batch.append(
            messages.allocation_ready(
                links, Recipient.of(u), run_id=run_id, count=n, territory=territory
            )
        )
    enqueue_many(session, batch, base_url=settings.base_url, now=now)


def _load_proposal(
    session: Session, proposal_id: int, actor: Actor, action: str, expected_version: int | None
) -> tuple[m.AllocationProposal, m.Referral]:
    prop = dialect.get_locked(session, m.AllocationProposal, proposal_id)
    if prop is None:
        raise NotFound("proposition introuvable")
    ref = dialect.get_locked(session, m.Referral, prop.referral_id)
    assert ref is not None
    if actor.user is not None and not can(actor.user, "read", ref):
        raise NotFound("proposition introuvable")
    if expected_version is not None and prop.version != expected_version:
        raise StaleEdit(prop.version)
    if prop.status != "proposed":
        raise TransitionError("cette proposition a déjà été traitée")
    return prop, ref


def validate_proposal(
    session: Session,
    settings: Settings,
    proposal_id: int,
    *,
    actor: Actor,
    clock: Clock,
    expected_version: int | None = None,
) -> m.AllocationProposal:
    """Validate: the door consumes the units (never more than the pool has), → accepted."""
    prop, ref = _load_proposal(session, proposal_id, actor, "validate", expected_version)
    apply_transition(session, settings, ref, "validate", actor=actor, clock=clock, proposal=prop)
    return prop


def decline_proposal(
    session: Session,
    settings: Settings,
    proposal_id: int,
    *,
    actor: Actor,
    clock: Clock,
    reason: str,
    note: str | None = None,
    expected_version: int | None = None,
) -> m.AllocationProposal:
    """Decline: the person goes back to the waitlist, with a coded reason.

    ``reason`` is one of ``DECLINE_REASONS`` (``other`` needs a ``note``); the proposal keeps
    the code, the event the French words (and the note). Checked before anything is
    written (after the scope, so a proposal out of it stays a 404): an unknown code changes
    nothing."""
    prop, ref = _load_proposal(session, proposal_id, actor, "decline_proposal", expected_version)
    if not reason:
        raise Refused("choisissez le motif du refus de la proposition")
    if reason not in DECLINE_REASONS:
        raise Refused(f"motif de refus de la proposition inconnu : « {str(reason)[:40]} »")
    note = (note or "").strip() or None
    if reason == "other" and note is None:
        raise Refused("le motif « Autre » demande une précision")
    words = DECLINE_LABELS[reason] if reason != "other" else "Autre motif"
    apply_transition(
        session,
        settings,
        ref,
        "decline_proposal",
        actor=actor,
        clock=clock,
        proposal=prop,
        note=f"{words} : {note}" if note else words,
    )
    prop.decline_reason = reason  # the code; the door stored the words of the event's note
    return prop


def expire_proposals(session: Session, settings: Settings, *, clock: Clock) -> int:
    """Proposals nobody answered in time go back to the waitlist."""
    now = clock.now()
    n = 0
    for prop in session.scalars(
        select(m.AllocationProposal)
        .where(m.AllocationProposal.status == "proposed", m.AllocationProposal.expires_at < now)
        .order_by(m.AllocationProposal.id)
    ).all():
        ref = session.get(m.Referral, prop.referral_id)
        assert ref is not None
        if ref.state != "proposed":  # the referral ended another way: only the proposal closes
            prop.status, prop.decided_at = "expired", now
            if prop.rank is not None:  # a commission's unit passes on to its next rank
                commission.unit_moved_on(session, settings, prop, actor=ACTOR, clock=clock)
        else:
            apply_transition(
                session, settings, ref, "expire_proposal", actor=ACTOR, clock=clock, proposal=prop
            )
        n += 1
    return n
