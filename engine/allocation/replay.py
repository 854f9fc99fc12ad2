"""A replayed year read from the database: who waited for a counted unit, when, and the units.

Why: the ``hold`` policy (``matching.replay``) is judged on a year that really happened in the
database — the simulated network's year (``aiguillage simulate``) or a real one. The simulated
network never waitlists anyone (its officers refer to open offers), so the waitlist of the
year is rebuilt the way the allocation run builds its problem (``engine.allocation.run``):
every referral created in the year whose frein a counted pool's offer covers, in that pool's
territory scope, whose person meets the offer's eligibility rules; their grid points as stored
at intake; a home-pool fit bonus; ``units_for`` units. A person with several such referrals
(``louer-un-logement`` and ``changer-de-logement``) is one candidate: one flat, not two.

A person waits from the day the referral was created to their exit (or programme end): the
programme end is known in advance (``due``), an exit is not. Each pool's capacity arrives over
its period on dates drawn from a seeded RNG (``random``, the default: units free up
irregularly) or evenly spread (``even``), so the replay is reproducible. Decision days are the
allocation schedule's Mondays.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.allocation.run import FIT_HOME_POOL, _facts, units_for
from engine.domain.clock import PARIS, as_utc
from engine.domain.errors import Refused
from engine.domain.labels import fr_number, plural
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from matching.eligibility import evaluate
from matching.replay import (
    POLICIES,
    Arrival,
    HoldParams,
    Progress,
    ReplayError,
    ReplayOption,
    ReplayOutcome,
    ReplayPool,
    ReplayYear,
    UnitArrival,
    hindsight,
    ratio,
    replay,
    weekly,
)
from partners.eligibility_rules import Rule
from partners.taxonomy import covers

UNIT_SPREADS = ("random", "even")


class ReplayUnavailable(Refused):
    """The database has no replayable year (French message)."""


@dataclass(frozen=True)
class ReplayData:
    """The year to replay and what the command prints about it."""

    year: ReplayYear
    pool_names: dict[str, str]
    referrals: int  # referrals a counted pool could serve
    multi_unit: int  # candidates whose options need more than one unit


def _day(at: datetime) -> date:
    return as_utc(at).astimezone(PARIS).date()


def load_year(db: Database, *, year: int, seed: int = 42, units: str = "random") -> ReplayData:
    """Read ``year`` from the database; raises ReplayUnavailable (French) when it cannot."""
    if units not in UNIT_SPREADS:
        raise ReplayUnavailable(f"--units : « {units} » inconnu (attendu : random ou even)")
    with unit_of_work(db) as session:
        return _load(session, year=year, seed=seed, spread=units)


def _activity_end(session: Session, start: date, end: date) -> date | None:
    """The last day of the year with recorded work (the simulation may stop before Dec 31)."""
    lo = datetime.combine(start, datetime.min.time(), tzinfo=PARIS)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=PARIS)
    last_event = session.scalar(
        select(func.max(m.ReferralEvent.at)).where(
            m.ReferralEvent.at >= lo, m.ReferralEvent.at < hi
        )
    )
    last_exit = session.scalar(
        select(func.max(m.Salarie.exit_date)).where(
            m.Salarie.exit_date >= start, m.Salarie.exit_date <= end
        )
    )
    days = [d for d in (_day(last_event) if last_event else None, last_exit) if d is not None]
    return max(days) if days else None


def _load(session: Session, *, year: int, seed: int, spread: str) -> ReplayData:
    start, end = date(year, 1, 1), date(year, 12, 31)
    how = (
        f"générez et simulez d'abord cette année (aiguillage seed --reset --entrants --today "
        f"{year}-01-01, puis aiguillage simulate --year {year})"
    )
    pools = [
        p
        for p in session.scalars(select(m.SlotPool).order_by(m.SlotPool.id)).all()
        if p.capacity > 0 and p.period_start <= end and p.period_end >= start
    ]
    if not pools:
        raise ReplayUnavailable(
            f"aucun dispositif à places comptées ouvert en {year} dans la base : {how}"
        )
    lo = datetime.combine(start, datetime.min.time(), tzinfo=PARIS)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=PARIS)
    refs = session.execute(
        select(
            m.Referral.id,
            m.Referral.salarie_id,
            m.Referral.territory_id,
            m.Referral.thematique,
            m.Referral.priority,
            m.Referral.created_at,
        )
        .where(m.Referral.created_at >= lo, m.Referral.created_at < hi)
        .order_by(m.Referral.id)
    ).all()
    last = _activity_end(session, start, end)
    exits = session.scalar(
        select(func.count())
        .select_from(m.Salarie)
        .where(m.Salarie.exit_date >= start, m.Salarie.exit_date <= end)
    )
    if not refs or not exits or last is None:
        raise ReplayUnavailable(f"l'année {year} n'a pas été simulée dans cette base : {how}")
    end = min(end, last)

    terr_code = dict(session.execute(select(m.Territory.id, m.Territory.code)).all())
    offers = {o.id: o for o in session.scalars(select(m.Offer)).all()}
    rules = {
        oid: tuple(Rule.model_validate(r) for r in (o.rules or [])) for oid, o in offers.items()
    }
    themes = {p.id: tuple(offers[p.offer_id].thematiques) for p in pools}
    wanted = [
        r for r in refs if any(any(covers(t, r.thematique) for t in themes[p.id]) for p in pools)
    ]
    ids = sorted({r.salarie_id for r in wanted})
    people: dict[int, m.Salarie] = {}
    freins: dict[int, int] = {}
    for k in range(0, len(ids), 5_000):
        chunk = ids[k : k + 5_000]
        people.update(
            {s.id: s for s in session.scalars(select(m.Salarie).where(m.Salarie.id.in_(chunk)))}
        )
        freins.update(
            session.execute(
                select(m.Frein.salarie_id, func.count())
                .where(m.Frein.salarie_id.in_(chunk))
                .group_by(m.Frein.salarie_id)
            ).all()
        )

    # Each referral's options, as the allocation run would build them.
    per_person: dict[int, list[tuple[Any, dict[str, ReplayOption]]]] = defaultdict(list)
    for r in wanted:
        person = people[r.salarie_id]
        code = terr_code.get(r.territory_id) if r.territory_id else None
        facts = _facts(person, code, freins.get(person.id, 1))
        opts: dict[str, ReplayOption] = {}
        for p in pools:
            if not any(covers(t, r.thematique) for t in themes[p.id]):
                continue
            if p.scope is not None and code not in p.scope:
                continue
            if not evaluate(rules[p.offer_id], facts).eligible:
                continue
            fit = FIT_HOME_POOL if p.territory_id and p.territory_id == r.territory_id else 0
            opts[p.code] = ReplayOption(p.code, fit, units_for(p, person))
        if opts:
            per_person[r.salarie_id].append((r, opts))

    arrivals: list[Arrival] = []
    for pid in sorted(per_person):
        person = people[pid]
        for group in _merge(per_person[pid]):
            first = min(_day(r.created_at) for r, _ in group)
            opts_all: dict[str, ReplayOption] = {}
            for _, opts in group:
                for code, o in opts.items():
                    if code not in opts_all or o.fit > opts_all[code].fit:
                        opts_all[code] = o
            end_of_programme = person.programme_end
            due = end_of_programme if end_of_programme and end_of_programme >= first else None
            # Nobody leaves before their recorded exit: a programme end passed without an exit
            # (the simulation keeps some people on) is only a belief, ``due``.
            leaves = person.exit_date or end
            if leaves < first:
                continue
            r0 = min((r for r, _ in group), key=lambda r: r.id)
            arrivals.append(
                Arrival(
                    id=f"R{r0.id}",
                    arrives=first,
                    leaves=min(leaves, end),
                    priority=max(r.priority for r, _ in group),
                    options=tuple(opts_all[c] for c in sorted(opts_all)),
                    territory=terr_code.get(r0.territory_id) if r0.territory_id else None,
                    due=due,
                )
            )

    replay_pools = tuple(
        ReplayPool(
            p.code,
            closes=min(p.period_end, end),
            territory=terr_code.get(p.territory_id) if p.territory_id else None,
            label=p.name,
        )
        for p in pools
    )
    unit_rows = [u for p in pools for u in _units(p, seed, spread, start, end)]
    replay_year = ReplayYear(
        start=start,
        end=end,
        pools=replay_pools,
        arrivals=tuple(sorted(arrivals, key=lambda a: (a.arrives, a.id))),
        units=tuple(unit_rows),
        decision_days=weekly(start, end),
    )
    return ReplayData(
        year=replay_year,
        pool_names={p.code: p.name for p in pools},
        referrals=sum(len(v) for v in per_person.values()),
        multi_unit=sum(1 for a in arrivals if any(o.consumption > 1 for o in a.options)),
    )


def _merge(
    items: list[tuple[Any, dict[str, ReplayOption]]],
) -> list[list[tuple[Any, dict[str, ReplayOption]]]]:
    """One person's referrals grouped when their pools overlap (one flat, not two)."""
    groups: list[tuple[set[str], list[tuple[Any, dict[str, ReplayOption]]]]] = []
    for item in items:
        pools = set(item[1])
        hit = [g for g in groups if g[0] & pools]
        merged_pools, merged_items = set(pools), [item]
        for g in hit:
            merged_pools |= g[0]
            merged_items = g[1] + merged_items
            groups.remove(g)
        groups.append((merged_pools, merged_items))
    return [g[1] for g in groups]


def _units(p: m.SlotPool, seed: int, spread: str, start: date, end: date) -> list[UnitArrival]:
    """The pool's capacity over its period: seeded random days or evenly spread; those after
    the replayed year's last day never come."""
    lo, hi = max(p.period_start, start), min(p.period_end, date(start.year, 12, 31))
    span = (hi - lo).days + 1
    if span <= 0:
        return []
    if spread == "even":
        offsets = [int((k + 0.5) * span / p.capacity) for k in range(p.capacity)]
    else:
        rng = random.Random(f"{seed}:{p.code}")
        offsets = sorted(rng.randrange(span) for _ in range(p.capacity))
    out = []
    for k, off in enumerate(offsets, start=1):
        on = lo + timedelta(days=off)
        if on <= end:
            out.append(UnitArrival(f"{p.code}#{k}", p.code, on))
    return out


# --------------------------------------------------------------------------- the command's run


@dataclass(frozen=True)
class ReplayReport:
    """A policy's year beside the hindsight optimum, in the command's words."""

    year: int
    policy: str
    params: HoldParams
    data: ReplayData
    outcome: ReplayOutcome
    best: ReplayOutcome
    load_s: float

    @property
    def ratio(self) -> float | None:
        return ratio(self.outcome, self.best)

    def as_dict(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "policy": self.policy,
            "ratio_to_hindsight": None if self.ratio is None else round(self.ratio, 4),
            "outcome": self.outcome.as_dict(),
            "hindsight": self.best.as_dict(),
            "people": len(self.data.year.arrivals),
            "units": len(self.data.year.units),
            "pools": len(self.data.year.pools),
        }

    def lines_fr(self) -> list[str]:
        y, o, b, p = self.data.year, self.outcome, self.best, self.params
        title = {
            "now": "« now » : chaque lundi, toute place libre est attribuée aux personnes en "
            "attente (le fonctionnement actuel)",
            "hold": "« hold » : chaque lundi, chaque place libre est attribuée ou gardée selon "
            "les arrivées et les départs prévus",
            "greedy": "« greedy » : premier arrivé, premier servi",
        }[self.policy]
        lines = [f"Rejeu de l'année {self.year}, politique {title}."]
        lines.append(
            f"{plural(len(y.pools), 'dispositif')} à places comptées, "
            f"{plural(len(y.units), 'place arrivée', 'places arrivées')} au fil de l'année, "
            f"{plural(len(y.arrivals), 'personne en attente', 'personnes en attente')} au fil de "
            f"l'année ; {plural(len(y.decision_days), 'jour', 'jours')} de décision (le lundi)."
        )
        if self.policy == "hold":
            lines.append(
                f"Paramètres : garde d'une place {_weeks(p.max_hold_days)} au plus, jamais si une "
                f"personne éligible attend depuis plus de {_weeks(p.wait_limit_days)} ; "
                f"prévision sur {_weeks(p.horizon_days)} à partir des {_weeks(p.history_days)} "
                f"précédentes ; {plural(p.scenarios, 'scénario')}."
            )
        r = self.ratio
        share = "—" if r is None else f"{100 * r:.1f} %".replace(".", ",")
        lines.append(
            f"Priorité totale servie : {plural(o.total_priority, 'point')} "
            f"(optimum a posteriori : {plural(b.total_priority, 'point')}, soit {share})."
        )
        lines.append(
            f"Personnes servies : {fr_number(o.people_served)} "
            f"(optimum a posteriori : {fr_number(b.people_served)}) ; "
            f"attente moyenne : {_days(o.mean_wait_days)} ; "
            f"attente la plus longue : {_days(o.worst_wait_days)}."
        )
        if self.policy == "hold":
            lines.append(
                f"Places gardées vides : {plural(len(o.holds), 'semaine-place', 'semaines-place')}"
                f" ; {plural(o.reordered_days, 'lundi', 'lundis')} où l'attribution diffère "
                "de celle du fonctionnement actuel."
            )
        lines.append(
            f"{plural(o.waiting_at_end, 'personne', 'personnes')} encore en attente "
            f"au {y.end.strftime('%d/%m/%Y')}."
        )
        if self.data.multi_unit:
            lines.append(
                f"Attention : {plural(self.data.multi_unit, 'personne a', 'personnes ont')} "
                "besoin de plusieurs places ; l'optimum a posteriori les prend dans un même lot."
            )
        lines.append(f"Durée : {self.load_s + o.time_s + b.time_s:.1f} s.".replace(".", ",", 1))
        return lines


def _weeks(days: int) -> str:
    return plural(days // 7, "semaine") if days % 7 == 0 else plural(days, "jour")


def _days(value: float | int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1f} jours".replace(".", ",")
    return plural(value, "jour")


def run_replay(
    db: Database,
    *,
    year: int,
    policy: str,
    params: HoldParams | None = None,
    seed: int = 42,
    units: str = "random",
    progress: Progress | None = None,
) -> ReplayReport:
    """Replay ``year`` under ``policy`` and the hindsight optimum (French errors: Refused)."""
    if policy not in POLICIES:
        raise ReplayUnavailable(f"--policy : « {policy} » inconnue (attendu : now ou hold)")
    params = params or HoldParams()
    try:
        params.check()
    except ReplayError as exc:
        raise ReplayUnavailable(str(exc)) from None
    t0 = time.perf_counter()
    data = load_year(db, year=year, seed=seed, units=units)
    load_s = time.perf_counter() - t0
    best = hindsight(data.year)
    outcome = replay(data.year, policy, params, progress=progress)
    return ReplayReport(year, policy, params, data, outcome, best, load_s)
