"""A year of counted slots replayed week by week: give a unit now, or hold it.

Why: counted units (3 CDC Habitat flats a year, 13 IML/ALT measures, 54 health checks) free
up through the year and people join the waitlist through the year too. The weekly run gives
every free unit to the best person waiting *today*, as if nobody more urgent could arrive
tomorrow and nobody waiting could leave. This module replays a year of arrivals — people and
units — under a *policy* and measures what it served against the *hindsight optimum*: the
same solver (``matching.allocation.solve``) on the whole year with full knowledge. Pure:
plain data in, plain data out, no clock (the replayed days are data), deterministic.

Model (docs/replay.md explains it at length).

- An ``Arrival`` is a person (a referral) who starts waiting on ``arrives`` with their grid
  points and leaves unserved after ``leaves`` (their exit). ``due`` is their programme end,
  which a policy may know in advance; ``leaves`` is only known when it happens.
- A ``UnitArrival`` is one unit of a pool that becomes free on ``on``; it serves one
  assignment and is never given back; a pool's units are lost after ``ReplayPool.closes``.
- Decisions happen on ``decision_days`` (Mondays, as the allocation schedule): a unit can go
  to a person waiting that day (arrived, not yet left) who is eligible for its pool.
- Weights are lexicographic *over totals*: ``priority × scale + fit + 1`` with ``scale``
  above every possible sum of ``fit + 1``, so the hindsight optimum maximises the total
  priority served first, and every batch is envy-free as in the real run.

Policies.

- ``now`` (today's behaviour): each decision day, every free unit goes optimally to who waits.
- ``greedy``: first come, first served (earliest arrival first, to the best free pool they are
  eligible for) — the benchmark's baseline.
- ``hold``: a sample-average approximation (SAA) of the two-stage problem "what to do today,
  then the best recourse over the next ``horizon_days``". Scenarios of the future are
  bootstrapped from what was observed *before* the decision day only: the arrival rate of the
  last ``history_days`` and the profiles of those arrivals (points, territory, eligible pools,
  programme length); units to come are spread over what is left of each pool's period. The
  candidate first-stage decisions are "give every free unit now" (``now``) and the today-part
  of each scenario's optimal lookahead (which may give a unit to someone whose programme ends
  soon rather than to someone who will still be there for the next unit, or keep a unit
  empty for a forecast arrival); each is scored by the sample average of its recourse on an
  independent set of scenarios (common to every candidate), each week a unit stays empty
  costing ``idle_points``; the best wins, ``now`` on ties. Two hard rules bound it: a unit is
  never held past ``max_hold_days`` after it freed up, and never while an eligible waiting
  person has waited longer than ``wait_limit_days``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from matching.allocation import AllocationProblem, Candidate, Option, OptionTable, Pool, solve

POLICIES = ("now", "hold", "greedy")
SOLVER_TIME_LIMIT_S = 30.0

Assignment = tuple[str, str]  # (person id, pool id)
Progress = Callable[[int, int], None]


class ReplayError(ValueError):
    """A malformed replayed year or parameter; the message is French and names the item."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class ReplayOption:
    """A pool the person is eligible for: the fit bonus (home pool) and the units consumed."""

    pool: str
    fit: int = 0
    consumption: int = 1


@dataclass(frozen=True, slots=True)
class Arrival:
    """A person who waits for a counted unit from ``arrives`` to ``leaves`` (both included)."""

    id: str
    arrives: date
    leaves: date
    priority: int
    options: tuple[ReplayOption, ...]
    territory: str | None = None
    due: date | None = None  # programme end, known in advance (``leaves`` is not)


@dataclass(frozen=True, slots=True)
class UnitArrival:
    """One unit of ``pool`` that becomes free on ``on``."""

    id: str
    pool: str
    on: date


@dataclass(frozen=True, slots=True)
class ReplayPool:
    """A pool of the replay; its units not given by ``closes`` are lost."""

    id: str
    closes: date
    territory: str | None = None
    label: str = ""


@dataclass(frozen=True)
class ReplayYear:
    """Everything a replay needs; ``decision_days`` increasing, within [start, end]."""

    start: date
    end: date
    pools: tuple[ReplayPool, ...]
    arrivals: tuple[Arrival, ...]
    units: tuple[UnitArrival, ...]
    decision_days: tuple[date, ...]


def weekly(start: date, end: date, weekday: int = 0) -> tuple[date, ...]:
    """Every ``weekday`` (0 = Monday, the allocation schedule) from ``start`` to ``end``."""
    first = start + timedelta(days=(weekday - start.weekday()) % 7)
    n = (end - first).days // 7 + 1 if first <= end else 0
    return tuple(first + timedelta(days=7 * k) for k in range(n))


def validate(year: ReplayYear) -> None:
    """Raise ReplayError (French, naming the item) on an inconsistent year."""
    if year.end < year.start:
        raise ReplayError("période : la fin précède le début")
    days = year.decision_days
    if any(b <= a for a, b in zip(days, days[1:], strict=False)):
        raise ReplayError("decision_days : les jours de décision doivent être croissants")
    if days and (days[0] < year.start or days[-1] > year.end):
        raise ReplayError("decision_days : un jour de décision sort de la période")
    pools: set[str] = set()
    for i, p in enumerate(year.pools):
        if p.id in pools:
            raise ReplayError(f"pools[{i}] : dispositif « {p.id} » en double")
        pools.add(p.id)
    seen: set[str] = set()
    for i, a in enumerate(year.arrivals):
        if a.id in seen:
            raise ReplayError(f"arrivals[{i}] : personne « {a.id} » en double")
        seen.add(a.id)
        if a.leaves < a.arrives:
            raise ReplayError(f"arrivals[{i}] ({a.id}) : départ avant l'arrivée")
        if a.priority < 0:
            raise ReplayError(f"arrivals[{i}] ({a.id}) : points négatifs")
        names = [o.pool for o in a.options]
        if len(set(names)) != len(names):
            raise ReplayError(f"arrivals[{i}] ({a.id}) : dispositif en double dans les options")
        for o in a.options:
            if o.pool not in pools:
                raise ReplayError(f"arrivals[{i}] ({a.id}) : dispositif « {o.pool} » inconnu")
            if o.consumption < 1 or o.fit < 0:
                raise ReplayError(f"arrivals[{i}] ({a.id}) : option vers « {o.pool} » invalide")
    seen = set()
    for i, u in enumerate(year.units):
        if u.id in seen:
            raise ReplayError(f"units[{i}] : unité « {u.id} » en double")
        seen.add(u.id)
        if u.pool not in pools:
            raise ReplayError(f"units[{i}] ({u.id}) : dispositif « {u.pool} » inconnu")


# --------------------------------------------------------------------------- outcome


@dataclass(frozen=True, slots=True)
class Service:
    """``candidate`` received ``units`` of ``pool`` on decision day ``day``."""

    candidate: str
    pool: str
    units: tuple[str, ...]
    day: date
    priority: int
    waited_days: int


@dataclass(frozen=True, slots=True)
class Hold:
    """A free unit kept empty on ``day`` while someone eligible could have taken it."""

    day: date
    unit: str
    pool: str


@dataclass
class ReplayOutcome:
    """What a policy (or the hindsight optimum) served over the year."""

    policy: str
    services: tuple[Service, ...]
    holds: tuple[Hold, ...] = ()
    waiting_at_end: int = 0
    units: int = 0
    solves: int = 0
    time_s: float = 0.0
    status: str = "optimal"
    reordered_days: int = 0  # hold: days when the SAA chose another today than ``now``

    @property
    def total_priority(self) -> int:
        return sum(s.priority for s in self.services)

    @property
    def people_served(self) -> int:
        return len(self.services)

    @property
    def mean_wait_days(self) -> float | None:
        if not self.services:
            return None
        return sum(s.waited_days for s in self.services) / len(self.services)

    @property
    def worst_wait_days(self) -> int | None:
        return max((s.waited_days for s in self.services), default=None)

    def as_dict(self) -> dict[str, object]:
        mean = self.mean_wait_days
        return {
            "policy": self.policy,
            "total_priority": self.total_priority,
            "people_served": self.people_served,
            "mean_wait_days": None if mean is None else round(mean, 1),
            "worst_wait_days": self.worst_wait_days,
            "waiting_at_end": self.waiting_at_end,
            "units": self.units,
            "unit_weeks_held": len(self.holds),
            "reordered_days": self.reordered_days,
            "solves": self.solves,
            "time_s": round(self.time_s, 3),
            "status": self.status,
        }


def ratio(policy: ReplayOutcome, best: ReplayOutcome) -> float | None:
    """Priority served by ``policy`` over the hindsight optimum's (None when it served none)."""
    if best.total_priority == 0:
        return None
    return policy.total_priority / best.total_priority


@dataclass(frozen=True)
class HoldParams:
    """The ``hold`` policy's knobs (days; points per week a unit stays empty)."""

    max_hold_days: int = 56
    wait_limit_days: int = 182
    horizon_days: int = 182
    scenarios: int = 16
    history_days: int = 91
    min_history_days: int = 28
    idle_points: int = 1
    seed: int = 42

    def check(self) -> None:
        for name, label in (
            ("max_hold_days", "durée maximale de garde"),
            ("wait_limit_days", "attente maximale"),
            ("horizon_days", "horizon"),
            ("history_days", "historique"),
            ("min_history_days", "historique minimal"),
            ("idle_points", "coût d'une semaine de place vide"),
        ):
            if getattr(self, name) < 0:
                raise ReplayError(f"{label} : doit être positif ou nul")
        if self.scenarios < 1:
            raise ReplayError("scénarios : au moins un")


# --------------------------------------------------------------------------- weights


def _scale(year: ReplayYear) -> int:
    """One point of priority outweighs every ``fit + 1`` of the year together."""
    max_fit = max((o.fit for a in year.arrivals for o in a.options), default=0)
    return (max_fit + 1) * max(1, len(year.units)) + 1


def _weight(a: Arrival, o: ReplayOption, scale: int) -> int:
    return a.priority * scale + o.fit + 1


def _option(a: Arrival, pool: str) -> ReplayOption:
    return next(o for o in a.options if o.pool == pool)


# --------------------------------------------------------------------------- batch solve


def _solve_batch(
    waiting: Sequence[Arrival], free: dict[str, int], pools: dict[str, ReplayPool], scale: int
) -> list[Assignment]:
    """The ``now`` decision of one day: every free unit optimally to who waits."""
    options = [
        Option(a.id, o.pool, _weight(a, o, scale), o.consumption)
        for a in waiting
        for o in a.options
        if free.get(o.pool, 0) >= o.consumption
    ]
    if not options:
        return []
    problem = AllocationProblem(
        pools=tuple(Pool(pid, n, pools[pid].territory) for pid, n in sorted(free.items()) if n > 0),
        candidates=tuple(Candidate(a.id, a.priority, a.territory) for a in waiting),
        options=tuple(options),
        time_limit_s=SOLVER_TIME_LIMIT_S,
    )
    return list(solve(problem).assignments)


# --------------------------------------------------------------------------- timed matching


@dataclass(frozen=True, slots=True)
class _Batch:
    """``count`` units of ``pool`` usable from decision day ``day``, empty since ``idle_from``."""

    pool: str
    day: date
    count: int
    idle_from: date


def _timed_problem(
    people: Sequence[Arrival],
    batches: Sequence[_Batch],
    days: Sequence[date],
    pools: dict[str, ReplayPool],
    scale: int,
    *,
    until: dict[str, date] | None = None,
    idle_points: int = 0,
) -> tuple[AllocationProblem, dict[str, _Batch]]:
    """People matched to unit batches over time, as one allocation problem.

    A person can take a unit of a batch when a decision day falls both in their presence
    window (to ``until[id]`` if given, else ``leaves``) and after the batch freed up, before
    its pool closes; they are served on the first such day. Units are never given back, so
    the year is a bipartite b-matching (exact with min-cost flow for one-unit options) whose
    "pools" are the batches. With ``idle_points``, each whole week between a unit freeing up
    and its use costs that many points. Options are built as columns (``OptionTable``): a
    lookahead has up to people × batches pairs and is built thousands of times a year.
    """
    day_ord = np.array([d.toordinal() for d in days], dtype=np.int64)
    batch_of: dict[str, _Batch] = {}
    solver_pools: list[Pool] = []
    by_pool: dict[str, list[int]] = defaultdict(list)
    for b in batches:
        if b.count <= 0:
            continue
        bid = f"{b.pool}@{b.day.isoformat()}~{b.idle_from.isoformat()}"
        if bid in batch_of:
            raise ReplayError(f"lot « {bid} » en double")
        batch_of[bid] = b
        by_pool[b.pool].append(len(solver_pools))
        solver_pools.append(Pool(bid, b.count, pools[b.pool].territory))
    listed = list(batch_of.values())
    # Per pool, the people eligible for it: index, first and last day present, weight, units.
    rows: dict[str, list[tuple[int, int, int, int, int]]] = defaultdict(list)
    for ci, a in enumerate(people):
        last = (a.leaves if until is None else until.get(a.id, a.leaves)).toordinal()
        for o in a.options:
            if o.pool in by_pool:
                rows[o.pool].append(
                    (ci, a.arrives.toordinal(), last, _weight(a, o, scale), o.consumption)
                )
    parts_c, parts_p, parts_w, parts_k = [], [], [], []
    for pid, members in rows.items():
        m = np.array(members, dtype=np.int64)
        bi = np.array(by_pool[pid], dtype=np.int64)
        b_day = np.array([listed[i].day.toordinal() for i in bi], dtype=np.int64)
        b_idle = np.array([listed[i].idle_from.toordinal() for i in bi], dtype=np.int64)
        closes = pools[pid].closes.toordinal()
        lo = np.maximum(m[:, 1:2], b_day[None, :])
        hi = np.minimum(m[:, 2:3], closes)
        k = np.searchsorted(day_ord, lo)
        served = day_ord[np.minimum(k, len(day_ord) - 1)] if len(day_ord) else lo
        ok = (k < len(day_ord)) & (served <= hi)
        weeks = (served - b_idle[None, :]) // 7
        w = m[:, 3:4] - idle_points * scale * weeks
        ok &= w > 0
        r, c = np.nonzero(ok)
        parts_c.append(m[r, 0])
        parts_p.append(bi[c])
        parts_w.append(w[r, c])
        parts_k.append(m[r, 4])

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    problem = AllocationProblem(
        pools=tuple(solver_pools),
        candidates=tuple(Candidate(a.id, a.priority, a.territory) for a in people),
        option_table=OptionTable(cat(parts_c), cat(parts_p), cat(parts_w), cat(parts_k)),
        time_limit_s=SOLVER_TIME_LIMIT_S,
    )
    return problem, batch_of


def _has_options(problem: AllocationProblem) -> bool:
    table = problem.option_table
    return bool(problem.options) or (table is not None and len(table.candidate_index) > 0)


def _first_on_or_after(days: Sequence[date], d: date) -> int:
    """Index of the first day >= d (len(days) when none)."""
    lo, hi = 0, len(days)
    while lo < hi:
        mid = (lo + hi) // 2
        if days[mid] < d:
            lo = mid + 1
        else:
            hi = mid
    return lo


def hindsight(year: ReplayYear) -> ReplayOutcome:
    """The best the year allowed with full knowledge: every arrival, exit and unit known.

    Why it bounds every policy: each service of a policy is a person and a unit both present
    on one decision day, so any policy's services form a feasible matching of this problem
    (exactly so for one-unit options; a household needing several units takes them here from
    one batch, see docs/replay.md).
    """
    validate(year)
    started = time.perf_counter()
    pools = {p.id: p for p in year.pools}
    scale = _scale(year)
    days = year.decision_days
    units_of: dict[tuple[str, date], list[UnitArrival]] = defaultdict(list)
    for u in sorted(year.units, key=lambda u: (u.on, u.id)):
        k = _first_on_or_after(days, u.on)
        if k < len(days):
            units_of[(u.pool, days[k])].append(u)
    batches = [_Batch(pool, day, len(us), day) for (pool, day), us in sorted(units_of.items())]
    problem, batch_of = _timed_problem(year.arrivals, batches, days, pools, scale)
    result = solve(problem)
    by_id = {a.id: a for a in year.arrivals}
    services: list[Service] = []
    taken: dict[tuple[str, date], int] = defaultdict(int)
    for cid, bid in result.assignments:
        a, b = by_id[cid], batch_of[bid]
        served = days[_first_on_or_after(days, max(a.arrives, b.day))]
        need = _option(a, b.pool).consumption
        start = taken[(b.pool, b.day)]
        taken[(b.pool, b.day)] += need
        units = tuple(u.id for u in units_of[(b.pool, b.day)][start : start + need])
        services.append(Service(cid, b.pool, units, served, a.priority, (served - a.arrives).days))
    served_ids = {s.candidate for s in services}
    return ReplayOutcome(
        policy="hindsight",
        services=tuple(sorted(services, key=lambda s: (s.day, s.candidate))),
        waiting_at_end=sum(
            1 for a in year.arrivals if a.id not in served_ids and a.leaves >= year.end
        ),
        units=len(year.units),
        solves=1,
        time_s=time.perf_counter() - started,
        status=result.status,
    )


# --------------------------------------------------------------------------- the replay loop


class _State:
    """Who waits and which units are free, decision day after decision day."""

    def __init__(self, year: ReplayYear):
        self.year = year
        self.pools = {p.id: p for p in year.pools}
        self.arrivals = sorted(year.arrivals, key=lambda a: (a.arrives, a.id))
        self.units = sorted(year.units, key=lambda u: (u.on, u.id))
        self.next_arrival = 0
        self.next_unit = 0
        self.waiting: dict[str, Arrival] = {}
        self.free: dict[str, list[UnitArrival]] = defaultdict(list)  # oldest first
        self.services: list[Service] = []
        self.holds: list[Hold] = []
        self.seen: list[Arrival] = []  # every arrival so far (the forecast's only source)
        self.units_seen: dict[str, int] = defaultdict(int)

    def advance(self, day: date) -> None:
        arrivals, units = self.arrivals, self.units
        while self.next_arrival < len(arrivals) and arrivals[self.next_arrival].arrives <= day:
            a = arrivals[self.next_arrival]
            self.waiting[a.id] = a
            self.seen.append(a)
            self.next_arrival += 1
        while self.next_unit < len(units) and units[self.next_unit].on <= day:
            u = units[self.next_unit]
            self.free[u.pool].append(u)
            self.units_seen[u.pool] += 1
            self.next_unit += 1
        for aid in [aid for aid, a in self.waiting.items() if a.leaves < day]:
            del self.waiting[aid]
        for pid in list(self.free):
            if self.pools[pid].closes < day:
                self.free[pid] = []

    def waiting_list(self) -> list[Arrival]:
        return sorted(self.waiting.values(), key=lambda a: (a.arrives, a.id))

    def free_counts(self) -> dict[str, int]:
        return {pid: len(us) for pid, us in sorted(self.free.items()) if us}

    def give(self, day: date, assignments: Iterable[Assignment]) -> None:
        for cid, pid in sorted(assignments):
            a = self.waiting.pop(cid)
            need = _option(a, pid).consumption
            if need > len(self.free[pid]):
                raise ReplayError(f"« {pid} » : plus assez d'unités libres pour « {cid} »")
            units, self.free[pid] = self.free[pid][:need], self.free[pid][need:]
            self.services.append(
                Service(
                    cid, pid, tuple(u.id for u in units), day, a.priority, (day - a.arrives).days
                )
            )

    def note_holds(self, day: date) -> None:
        """The free units left empty while a waiting person could have taken them."""
        for pid, units in sorted(self.free.items()):
            if units and any(
                o.pool == pid and o.consumption <= len(units)
                for a in self.waiting.values()
                for o in a.options
            ):
                self.holds.extend(Hold(day, u.id, pid) for u in units)

    def outcome(self, policy: str, solves: int, started: float, reordered: int) -> ReplayOutcome:
        served = {s.candidate for s in self.services}
        return ReplayOutcome(
            policy=policy,
            services=tuple(self.services),
            holds=tuple(self.holds),
            waiting_at_end=sum(
                1 for a in self.year.arrivals if a.id not in served and a.leaves >= self.year.end
            ),
            units=len(self.year.units),
            solves=solves,
            time_s=time.perf_counter() - started,
            reordered_days=reordered,
        )


def replay(
    year: ReplayYear,
    policy: str,
    params: HoldParams | None = None,
    *,
    progress: Progress | None = None,
) -> ReplayOutcome:
    """Play ``year`` under ``policy`` ("now", "hold" or "greedy")."""
    if policy not in POLICIES:
        raise ReplayError(f"politique « {policy} » inconnue (attendu : now, hold ou greedy)")
    validate(year)
    params = params or HoldParams()
    params.check()
    started = time.perf_counter()
    state = _State(year)
    scale = _scale(year)
    solves = reordered = 0
    planner = _HoldPlanner(year, params, scale) if policy == "hold" else None
    days = year.decision_days
    for i, day in enumerate(days):
        state.advance(day)
        free = state.free_counts()
        if free and state.waiting:
            waiting = state.waiting_list()
            if policy == "greedy":
                state.give(day, _first_come(waiting, free))
            elif policy == "now":
                state.give(day, _solve_batch(waiting, free, state.pools, scale))
                solves += 1
            else:
                assert planner is not None
                nxt = days[i + 1] if i + 1 < len(days) else None
                chosen, n, changed = planner.decide(day, nxt, state)
                solves += n
                reordered += changed
                state.give(day, chosen)
            state.note_holds(day)
        if progress is not None:
            progress(i + 1, len(days))
    return state.outcome(policy, solves, started, reordered)


def _first_come(waiting: Sequence[Arrival], free: dict[str, int]) -> list[Assignment]:
    """First come, first served: earliest arrival first, to their best pool with room."""
    left = dict(free)
    out: list[Assignment] = []
    for a in waiting:  # sorted by arrival, then id
        fits = [o for o in a.options if left.get(o.pool, 0) >= o.consumption]
        if fits:
            best = max(fits, key=lambda o: (o.fit, -o.consumption, o.pool))
            left[best.pool] -= best.consumption
            out.append((a.id, best.pool))
    return out


# --------------------------------------------------------------------------- hold


@dataclass
class _Scenario:
    """One sampled future: arrivals (with the day they are expected to leave) and units."""

    people: list[Arrival] = field(default_factory=list)
    units: dict[str, list[date]] = field(default_factory=dict)


class _HoldPlanner:
    """The sample-average approximation behind ``hold`` (see the module docstring)."""

    def __init__(self, year: ReplayYear, params: HoldParams, scale: int):
        self.year, self.params, self.scale = year, params, scale
        self.pools = {p.id: p for p in year.pools}
        # Each pool's units in the period: published (the convention), unlike their dates.
        self.total_units: dict[str, int] = defaultdict(int)
        for u in year.units:
            self.total_units[u.pool] += 1

    # -- the rules -------------------------------------------------------------------------

    def forced(self, day: date, nxt: date | None, state: _State) -> dict[str, int]:
        """Per pool, how many free units must go today if anyone can take them."""
        p = self.params
        out: dict[str, int] = {}
        for pid, units in state.free.items():
            if not units:
                continue
            overdue = any(
                (day - a.arrives).days > p.wait_limit_days
                for a in state.waiting.values()
                if any(o.pool == pid for o in a.options)
            )
            if nxt is None or nxt > self.pools[pid].closes or overdue:
                out[pid] = len(units)
            else:
                out[pid] = sum(1 for u in units if (nxt - u.on).days > p.max_hold_days)
        return out

    # -- scenarios -------------------------------------------------------------------------

    def history(self, day: date, state: _State) -> tuple[list[Arrival], int]:
        """Arrivals of the last ``history_days`` (the opening stock excluded: it is not a
        flow) and the window's length; no history when the window is too short."""
        lo = max(self.year.start, day - timedelta(days=self.params.history_days))
        span = (day - lo).days
        if span < max(1, self.params.min_history_days):
            return [], 0
        return [a for a in state.seen if a.arrives > lo and a.arrives > self.year.start], span

    def sample(self, day: date, state: _State, n: int, stream: int) -> list[_Scenario]:
        """``n`` scenarios of the next ``horizon_days``; without enough history, no arrival
        is forecast (the units to come and who is waiting still shape the lookahead)."""
        past, span = self.history(day, state)
        horizon = self.params.horizon_days
        end = day + timedelta(days=horizon)
        rng = np.random.default_rng([self.params.seed, day.toordinal(), stream])
        rate = len(past) / span if span else 0.0
        out: list[_Scenario] = []
        for s in range(n):
            sc = _Scenario()
            count = int(rng.poisson(rate * horizon)) if past and horizon else 0
            for k in range(count):
                model = past[int(rng.integers(len(past)))]
                on = day + timedelta(days=int(rng.integers(1, horizon + 1)))
                stay = (model.due - model.arrives) if model.due else None
                leaves = min(end, on + stay) if stay is not None else end
                sc.people.append(
                    Arrival(
                        f"~{stream}.{s}.{k}",
                        on,
                        max(on, leaves),
                        model.priority,
                        model.options,
                        model.territory,
                    )
                )
            for pid, pool in sorted(self.pools.items()):
                left = self.total_units[pid] - state.units_seen[pid]
                remaining = (pool.closes - day).days
                if left <= 0 or remaining <= 0 or horizon == 0:
                    continue
                reach = min(horizon, remaining)
                k_units = int(rng.binomial(left, reach / remaining))
                sc.units[pid] = sorted(
                    day + timedelta(days=int(rng.integers(1, reach + 1))) for _ in range(k_units)
                )
            out.append(sc)
        return out

    # -- lookahead ---------------------------------------------------------------------------

    def _until(self, people: Iterable[Arrival], day: date, end: date) -> dict[str, date]:
        """What a policy may believe of who stays: the programme end when it is ahead."""
        return {a.id: min(a.due, end) if a.due and a.due >= day else end for a in people}

    def lookahead(
        self,
        family: set[str],
        first: date,
        held: dict[str, int],
        held_since: date,
        people: list[Arrival],
        sc: _Scenario,
        day: date,
    ) -> tuple[AllocationProblem, dict[str, _Batch]]:
        """The scenario's matching from decision day ``first`` to the horizon: the ``held``
        units (usable from ``first``), the units and the people it brings."""
        end = day + timedelta(days=self.params.horizon_days)
        days = [d for d in self.year.decision_days if first <= d <= end]
        merged: dict[tuple[str, date, date], int] = defaultdict(int)
        for pid, n in held.items():
            if n > 0:
                merged[(pid, first, held_since)] += n
        for pid, ons in sc.units.items():
            if pid not in family:
                continue
            for on in ons:
                k = _first_on_or_after(days, on)
                if k < len(days):
                    merged[(pid, days[k], on)] += 1
        batches = [_Batch(p, d, n, i) for (p, d, i), n in sorted(merged.items())]
        future = [a for a in sc.people if any(o.pool in family for o in a.options)]
        everyone = people + future
        until = self._until(people, day, end) | {a.id: a.leaves for a in future}
        return _timed_problem(
            everyone,
            batches,
            days,
            self.pools,
            self.scale,
            until=until,
            idle_points=self.params.idle_points,
        )

    def value(
        self,
        family: set[str],
        day: date,
        nxt: date,
        waiting: list[Arrival],
        free: dict[str, int],
        today: list[Assignment],
        scenarios: list[_Scenario],
    ) -> tuple[float, int]:
        """Weight served today + the sample average of the best recourse after it."""
        by_id = {a.id: a for a in waiting}
        now_w = sum(_weight(by_id[c], _option(by_id[c], p), self.scale) for c, p in today)
        used: dict[str, int] = defaultdict(int)
        for c, p in today:
            used[p] += _option(by_id[c], p).consumption
        served = {c for c, _ in today}
        left = [a for a in waiting if a.id not in served]
        held = {pid: n - used[pid] for pid, n in free.items()}
        total, solves = 0, 0
        for sc in scenarios:
            problem, _ = self.lookahead(family, nxt, held, day, left, sc, day)
            if _has_options(problem):
                total += solve(problem).objective
                solves += 1
        return now_w + total / len(scenarios), solves

    def proposals(
        self,
        family: set[str],
        day: date,
        waiting: list[Arrival],
        free: dict[str, int],
        forced: dict[str, int],
        scenarios: list[_Scenario],
    ) -> tuple[list[list[Assignment]], int]:
        """Candidate todays: each scenario's optimal lookahead, today's part, with the
        units the rules force out given to the best who remain."""
        out: list[list[Assignment]] = []
        solves = 0
        for sc in scenarios:
            problem, batch_of = self.lookahead(family, day, free, day, waiting, sc, day)
            if not _has_options(problem):
                continue
            result = solve(problem)
            solves += 1
            today = [
                (c, batch_of[b].pool)
                for c, b in result.assignments
                if batch_of[b].day == day and batch_of[b].idle_from == day and not c.startswith("~")
            ]
            out.append(self._with_forced(today, waiting, free, forced))
        return out, solves

    def _with_forced(
        self,
        today: list[Assignment],
        waiting: list[Arrival],
        free: dict[str, int],
        forced: dict[str, int],
    ) -> list[Assignment]:
        by_id = {a.id: a for a in waiting}
        used: dict[str, int] = defaultdict(int)
        for c, p in today:
            used[p] += _option(by_id[c], p).consumption
        short = {p: min(free[p] - used[p], n - used[p]) for p, n in forced.items() if n > used[p]}
        if not short:
            return sorted(today)
        served = {c for c, _ in today}
        rest = [a for a in waiting if a.id not in served]
        return sorted(today + _solve_batch(rest, short, self.pools, self.scale))

    def decide(
        self, day: date, nxt: date | None, state: _State
    ) -> tuple[list[Assignment], int, int]:
        """Today's assignments, the solves it took, and 1 when they differ from ``now``'s."""
        waiting_all = state.waiting_list()
        free_all = state.free_counts()
        now_all = _solve_batch(waiting_all, free_all, self.pools, self.scale)
        if nxt is None:
            return now_all, 1, 0
        forced_all = self.forced(day, nxt, state)
        gen = self.sample(day, state, max(1, self.params.scenarios // 2), stream=0)
        ev = self.sample(day, state, self.params.scenarios, stream=1)
        solves, changed = 1, 0
        chosen: list[Assignment] = []
        for family in _families(state, free_all):
            waiting = [a for a in waiting_all if any(o.pool in family for o in a.options)]
            free = {p: n for p, n in free_all.items() if p in family}
            now = sorted((c, p) for c, p in now_all if p in family)
            forced = {p: n for p, n in forced_all.items() if p in family}
            if all(forced.get(p, 0) >= n for p, n in free.items()) and not any(
                a.due for a in waiting
            ):
                chosen += now
                continue
            cands, n = self.proposals(family, day, waiting, free, forced, gen)
            solves += n
            distinct = [now] + sorted({tuple(c) for c in cands if c != now} - {tuple(now)})
            if len(distinct) == 1:
                chosen += now
                continue
            best, best_v = now, None
            for cand in distinct:
                v, n = self.value(family, day, nxt, waiting, free, list(cand), ev)
                solves += n
                if best_v is None or v > best_v + 1e-6:
                    best, best_v = list(cand), v
            chosen += best
            changed |= int(best != now)
        return sorted(chosen), solves, changed


def _families(state: _State, free: dict[str, int]) -> list[set[str]]:
    """Groups of pools that share people (seen so far) and have free units today: the
    lookahead of one group never depends on another's (computed from the past only)."""
    parent: dict[str, str] = {p: p for p in state.pools}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a in state.seen:
        ps = [o.pool for o in a.options]
        for q in ps[1:]:
            ra, rb = find(ps[0]), find(q)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, set[str]] = defaultdict(set)
    for p in state.pools:
        groups[find(p)].add(p)
    return [g for _, g in sorted(groups.items()) if any(p in free for p in g)]
