"""A simulated year of work on the synthetic network: what officers, partners and CIP/ESP do.

Why: the impact indicators (exits, housing access, health rights, the officer-mobilised
uplifts) need a year of pathway facts, and the demo needs pages that show one. The year is
planned first — who is taken in hand by which chargé·e and when, who leaves the programme
and when — then the outcomes are drawn *by group* with exact quotas, so that the 2024
report's rates come out (overall rate r and uplift d give r + d·(1 − s) for the mobilised
share s and r − d·s for the others). Then everything is played in date order through the
same use cases as the pages: referral actions through the transition door, pathway facts
through ``engine.pathway.facts``, each with a clock set to its own day. Mails of a replayed
history are never sent: the outbox rows it wrote are marked ``skipped`` at the end.

Assumed where the report says nothing (stated in docs/impact.md): the split of dynamic exits
(durable 40 %, transition 35 %, positive 25 %), the share of officer referrals taken in hand
(80 %), partner acceptance (70 %), delays.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select, update

from engine.domain.clock import Clock
from engine.domain.lifecycle import OPEN_STATES
from engine.intake.run import run_intake
from engine.network.reference import reference_2024
from engine.network.seed import add_entrants, seed_details
from engine.pathway.facts import (
    Recorder,
    record_exit,
    record_health_event,
    record_housing_change,
)
from engine.referrals.actions import Actor, transition
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings

SIMULATION = "simulation d'une année"
TAKE_SHARE = 0.95  # referrals taken in hand (the others wait in the queue)
REFER_SHARE = 0.5  # of those taken, sent to a partner's open offer
PARTNER_ACCEPTS = 0.7
CLOSE_WITHOUT_PARTNER = 0.6
DYNAMIC_SPLIT = (("emploi_durable", 0.40), ("emploi_transition", 0.35), ("sortie_positive", 0.25))
SHELTER_AFTER_STREET = (
    ("emergency_shelter", 0.45),
    ("integration_housing", 0.25),
    ("hosted_third_party", 0.15),
    ("housed", 0.15),
)
HOSTED = ("emergency_shelter", "hosted_third_party", "integration_housing")
OUTCOME_SPLIT = (("resolved", 0.55), ("partially_resolved", 0.25), ("not_resolved", 0.20))
REFUSALS = ("no_capacity", "not_eligible", "declined_by_person", "unreachable")


class SimulationError(ValueError):
    """The network cannot be simulated for that year (French message)."""


@dataclass(order=True)
class _Step:
    day: date
    order: int
    kind: str = field(compare=False)  # "referral" | "fact"
    run: Callable[..., Any] = field(compare=False)


@dataclass
class SimulationSummary:
    year: int
    people: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def lines_fr(self) -> list[str]:
        c = self.counts
        return [
            f"Année {self.year} simulée pour {self.people} salarié·es.",
            f"Orientations : {c['take']} prises en charge, {c['refer']} envoyées à un partenaire "
            f"({c['partner_accept']} acceptées, {c['refuse']} refusées), {c['close']} clôturées.",
            f"Sorties : {c['exit']} ; changements de logement : {c['housing']} ; "
            f"événements santé : {c['health']}.",
            f"Courriels de l'historique non envoyés : {c['mails_skipped']}.",
        ]


def _pick(rng: random.Random, table: Iterable[tuple[Any, float]]) -> Any:
    items = list(table)
    return rng.choices([v for v, _ in items], weights=[w for _, w in items])[0]


def _quota(rng: random.Random, members: list[int], rate: float) -> set[int]:
    """Exactly round(rate × n) of ``members``, drawn at random (rate clamped to [0, 1])."""
    k = round(min(1.0, max(0.0, rate)) * len(members))
    return set(rng.sample(sorted(members), k))


def _with_uplift(
    rng: random.Random, members: list[int], mobilised: set[int], rate: float, uplift: float
) -> set[int]:
    """Members drawn so that the overall rate is ``rate`` and the mobilised group's rate
    exceeds the others' by ``uplift`` (as far as [0, 1] allows)."""
    if not members:
        return set()
    mob = [p for p in members if p in mobilised]
    rest = [p for p in members if p not in mobilised]
    s = len(mob) / len(members)
    return _quota(rng, mob, rate + uplift * (1 - s)) | _quota(rng, rest, rate - uplift * s)


def _referral_work_until(last: date) -> Callable[[_Step], bool]:
    def due(step: _Step) -> bool:
        return step.day <= last and step.kind == "referral"

    return due


def _day_between(rng: random.Random, lo: date, hi: date) -> date:
    if hi <= lo:
        return lo
    return lo + timedelta(days=rng.randint(0, (hi - lo).days))


class _Year:
    """The plan of one year and its replay in date order, month by month."""

    def __init__(self, db: Database, settings: Settings, year: int, seed: int, today: date):
        self.db, self.settings, self.year, self.seed = db, settings, year, seed
        self.rng = random.Random(seed * 1_000_003 + year)
        self.start = date(year, 1, 1)
        self.end = min(date(year, 12, 31), today)
        if self.end < self.start:
            raise SimulationError(f"l'année {year} n'a pas commencé à la date de référence")
        ref = reference_2024()
        self.cvg = ref["programmes"]["cvg"]
        self.phc = ref["programmes"]["phc"]
        self.steps: list[_Step] = []
        self.exit_on: dict[int, date] = {}
        self.entry: dict[int, date] = {}
        self.people: list[Any] = []
        self.mobilised: dict[str, set[int]] = defaultdict(set)
        self.last_referral = 0
        self.entrants: dict[str, int] = dict(seed_details(db).get("entrants") or {})
        self.summary = SimulationSummary(year)
        self.done = 0

    def add(self, day: date, kind: str, run: Callable[..., Any]) -> None:
        if self.start <= day <= self.end:
            self.steps.append(_Step(day, len(self.steps), kind, run))

    # --- the year, month by month --------------------------------------------------------

    def run(self, progress: Callable[[int, int], None] | None) -> SimulationSummary:
        run_intake(self.db, self.settings, clock=Clock.on_day(self.start, running=False))
        self._load_directory()
        initial = self._new_people()
        if not initial:
            raise SimulationError(
                f"aucun·e salarié·e accompagné·e en {self.year} : générez d'abord le réseau "
                f"(aiguillage seed --entrants --today {self.year}-01-01)"
            )
        cvg_total = sum(p.programme == "cvg" for p in initial) + self.entrants.get("cvg", 0)
        self._plan_exits(initial, cvg_total)
        self._plan_new_referrals()
        for month in range(1, 13):
            first = date(self.year, month, 1)
            if first > self.end:
                break
            following = date(self.year + month // 12, month % 12 + 1, 1)
            last = min(following - timedelta(days=1), self.end)
            entering = min(first + timedelta(days=9), last)
            counts = {p: self._share_of_month(p, month) for p in ("cvg", "phc")}
            if any(counts.values()) and entering <= self.end:
                add_entrants(self.db, counts=counts, day=entering, seed=self.seed)
                run_intake(self.db, self.settings, clock=Clock.on_day(entering, running=False))
                for p in self._new_people():
                    if p.programme_end is not None and p.programme_end <= self.end:
                        self.exit_on[p.id] = p.programme_end
                self._plan_new_referrals()
            self._replay(_referral_work_until(last), progress)
        self.summary.people = len(self.people)
        self._plan_outcomes(self.people, self.mobilised)
        self._replay(lambda s: True, progress)
        self._skip_history_mails()
        return self.summary

    def _share_of_month(self, programme: str, month: int) -> int:
        """Entrants of ``month``: the held-back count spread evenly over the twelve months."""
        n = self.entrants.get(programme, 0)
        return round(n * month / 12) - round(n * (month - 1) / 12)

    def _load_directory(self) -> None:
        with unit_of_work(self.db) as session:
            self.users = {u.id: u for u in session.scalars(select(m.StaffUser)).all()}
            session.expunge_all()
            self.contacts = {
                u.partner_id: u for u in self.users.values() if u.role == "partner_contact"
            }
            self.open_offers = {
                o.id: o.partner_id
                for o in session.scalars(select(m.Offer).where(m.Offer.slot_based.is_(False)))
            }

    def _new_people(self) -> list[Any]:
        """People accompanied in the year not yet known to the plan (the seeded, then each
        month's entrants)."""
        known = max(self.entry, default=0)
        with unit_of_work(self.db) as session:
            rows = session.execute(
                select(
                    m.Salarie.id,
                    m.Salarie.programme,
                    m.Salarie.entry_date,
                    m.Salarie.programme_end,
                    m.Salarie.housing,
                )
                .where(
                    m.Salarie.id > known,
                    m.Salarie.entry_date <= self.end,
                    (m.Salarie.exit_date.is_(None)) | (m.Salarie.exit_date >= self.start),
                )
                .order_by(m.Salarie.id)
            ).all()
        for r in rows:
            self.entry[r.id] = r.entry_date
        self.people.extend(rows)
        return list(rows)

    def _plan_new_referrals(self) -> None:
        with unit_of_work(self.db) as session:
            refs = session.execute(
                select(
                    m.Referral.id,
                    m.Referral.salarie_id,
                    m.Referral.owner_user_id,
                    m.Referral.domain,
                    m.Referral.created_at,
                    m.Referral.suggestions,
                )
                .where(m.Referral.id > self.last_referral, m.Referral.state == "new")
                .order_by(m.Referral.id)
            ).all()
        if refs:
            self.last_referral = refs[-1].id
        self._plan_referrals(refs)

    def _replay(
        self, due: Callable[[_Step], bool], progress: Callable[[int, int], None] | None
    ) -> None:
        """Play the planned steps that are due, in date order (a day's referral work before
        its facts), one transaction per month of steps."""
        ready = sorted(
            (s for s in self.steps if due(s)), key=lambda s: (s.day, s.kind != "referral", s.order)
        )
        if not ready:
            return
        taken = {id(s) for s in ready}
        self.steps = [s for s in self.steps if id(s) not in taken]
        by_month: dict[int, list[_Step]] = defaultdict(list)
        for step in ready:
            by_month[step.day.month].append(step)
        for month in sorted(by_month):
            with unit_of_work(self.db, immediate=True) as session:
                for step in by_month[month]:
                    step.run(session, Clock.on_day(step.day, hour=10, running=False))
                    self.done += 1
            if progress:
                progress(self.done, self.done + len(self.steps))

    def _skip_history_mails(self) -> None:
        with unit_of_work(self.db, immediate=True) as session:
            # A replayed history sends no mail: what it queued is marked as not to be sent.
            ends = Clock.on_day(self.end, hour=23, running=False).now()
            skipped = session.execute(
                update(m.OutboxMessage)
                .where(m.OutboxMessage.status == "pending", m.OutboxMessage.created_at <= ends)
                .values(status="skipped", last_error="historique simulé : non envoyé")
            )
            self.summary.counts["mails_skipped"] = int(skipped.rowcount or 0)  # type: ignore[attr-defined]

    def _plan_exits(self, people: Sequence[Any], cvg_total: int) -> None:
        """CVG: as many exits as the year's accompanied minus active (the report's figures),
        the earliest programme ends first; PHC: every pathway that reaches its end exits."""
        cvg = [p for p in people if p.programme == "cvg"]
        share = 1 - self.cvg["salaries_active_2024"] / self.cvg["salaries_accompanied_2024"]
        k = min(len(cvg), round(share * cvg_total))
        by_end = sorted(cvg, key=lambda p: (p.programme_end or self.end, p.id))[:k]
        for p in by_end:
            lo = max(p.entry_date, self.start) + timedelta(days=30)
            self.exit_on[p.id] = min(max(p.programme_end or self.end, lo), self.end)
        for p in people:
            if p.programme == "phc" and p.programme_end is not None and p.programme_end <= self.end:
                self.exit_on[p.id] = max(p.programme_end, self.start)

    def _plan_referrals(self, refs: Sequence[Any]) -> None:
        """Who is taken in hand, referred, answered, closed — and so who is "mobilised"."""
        rng, mobilised = self.rng, self.mobilised
        users, contacts, open_offers = self.users, self.contacts, self.open_offers
        for ref in refs:
            owner = users.get(ref.owner_user_id) if ref.owner_user_id else None
            if owner is None or owner.role not in ("officer", "coordinator"):
                continue
            if rng.random() >= TAKE_SHARE:
                continue
            leaves = self.exit_on.get(ref.salarie_id, self.end)
            taken = max(self.start, ref.created_at.date()) + timedelta(days=rng.randint(1, 45))
            if taken >= leaves:
                continue
            if owner.role == "officer":
                mobilised[ref.domain].add(ref.salarie_id)
            actor = Actor.of(owner)
            self._act(taken, ref.id, "take", actor)
            offer = next((o[0] for o in ref.suggestions or [] if o[0] in open_offers), None)
            if offer is not None and rng.random() < REFER_SHARE:
                sent = taken + timedelta(days=rng.randint(1, 10))
                self._act(sent, ref.id, "refer", actor, offer_id=offer)
                partner = contacts.get(open_offers[offer])
                if partner is None:
                    continue
                answered = sent + timedelta(days=rng.randint(2, 20))
                if rng.random() >= PARTNER_ACCEPTS:
                    reason = rng.choice(REFUSALS)
                    self._act(answered, ref.id, "refuse", Actor.of(partner), reason=reason)
                    continue
                self._act(answered, ref.id, "partner_accept", Actor.of(partner))
                started = answered + timedelta(days=rng.randint(3, 15))
                self._act(started, ref.id, "start", Actor.of(partner))
                closed = started + timedelta(days=rng.randint(20, 120))
            elif rng.random() < CLOSE_WITHOUT_PARTNER:
                closed = taken + timedelta(days=rng.randint(10, 90))
            else:
                continue
            self._act(closed, ref.id, "close", actor, outcome=_pick(rng, OUTCOME_SPLIT))

    def _act(self, day: date, referral_id: int, action: str, actor: Actor, **kw: Any) -> None:
        def run(session, clock: Clock) -> None:  # type: ignore[no-untyped-def]
            state = session.scalar(select(m.Referral.state).where(m.Referral.id == referral_id))
            if state not in OPEN_STATES:  # cancelled by an exit in the meantime
                return
            transition(session, self.settings, referral_id, action, actor=actor, clock=clock, **kw)
            self.summary.counts[action] += 1

        self.add(day, "referral", run)

    def _plan_outcomes(self, people: Sequence[Any], mobilised: dict[str, set[int]]) -> None:
        rng, cvg_o, phc_o = self.rng, self.cvg["outcomes"], self.phc["outcomes"]
        cvg = [p for p in people if p.programme == "cvg"]
        phc = [p for p in people if p.programme == "phc"]
        # Exits and their categories.
        cvg_exits = [p.id for p in cvg if p.id in self.exit_on]
        dynamic = _with_uplift(
            rng,
            cvg_exits,
            mobilised["emploi"],
            cvg_o["exit_to_employment_or_training"],
            cvg_o["employment_uplift_when_emploi_officer_mobilised"],
        )
        phc_all = [p.id for p in phc]
        phc_exits = [pid for pid in phc_all if pid in self.exit_on]
        # The PHC rate is among everyone accompanied: drawn among those who exit.
        want = round(phc_o["employment_or_training"] * len(phc_all))
        dynamic |= set(rng.sample(sorted(phc_exits), min(want, len(phc_exits))))
        for pid, day in self.exit_on.items():
            category = _pick(rng, DYNAMIC_SPLIT) if pid in dynamic else "autre"
            self._fact(day, pid, "exit", category=category)
        # Housing: the hosted at entry (CVG) reach housing; the street at entry (PHC) a roof.
        hosted = [p.id for p in cvg if p.housing in HOSTED]
        for pid in sorted(
            _with_uplift(
                rng,
                hosted,
                mobilised["logement"],
                cvg_o["housing_access_among_hosted_at_entry"],
                cvg_o["housing_uplift_when_logement_officer_mobilised"],
            )
        ):
            self._fact(self._during(pid), pid, "housing", after="housed")
        street = [p.id for p in phc if p.housing == "street"]
        for pid in sorted(_quota(rng, street, phc_o["sheltered_or_housed_among_street_at_entry"])):
            after = _pick(rng, SHELTER_AFTER_STREET)
            self._fact(self._during(pid), pid, "housing", after=after)
        # Health: rights opened, or else coverage improved, with the santé uplift on either.
        ids = [p.id for p in cvg]
        rights_rate = cvg_o["health_rights_opened"]
        extra_rate = cvg_o["health_coverage_improved_additionally"]
        improved = _with_uplift(
            rng,
            ids,
            mobilised["sante"],
            rights_rate + extra_rate,
            cvg_o["health_uplift_when_sante_officer_mobilised"],
        )
        ordered = sorted(improved)
        rng.shuffle(ordered)
        n_rights = round(rights_rate * len(ids))
        for k, pid in enumerate(ordered):
            kind = "rights_opened" if k < n_rights else "coverage_improved"
            self._fact(self._during(pid), pid, "health", kind=kind)
        for pid in sorted(_quota(rng, [p.id for p in phc], phc_o["care_pathway"])):
            self._fact(self._during(pid), pid, "health", kind="care_pathway")

    def _during(self, pid: int) -> date:
        """A day within the person's pathway in the year (before their exit)."""
        lo = max(self.entry[pid], self.start)
        hi = self.exit_on.get(pid, self.end) - timedelta(days=1)
        return _day_between(self.rng, lo, max(lo, hi))

    def _fact(self, day: date, pid: int, fact: str, **kw: Any) -> None:
        recorder = Recorder.system(SIMULATION)

        def run(session, clock: Clock) -> None:  # type: ignore[no-untyped-def]
            if fact == "exit":
                record_exit(session, self.settings, recorder, pid, on=day, clock=clock, **kw)
            elif fact == "housing":
                person = session.get(m.Salarie, pid)
                if person is None or person.housing == kw["after"]:
                    return
                record_housing_change(session, recorder, pid, on=day, clock=clock, **kw)
            else:
                record_health_event(session, recorder, pid, on=day, clock=clock, **kw)
            self.summary.counts[fact] += 1

        # Facts of a day come after that day's referral work (an exit cancels what is left).
        self.add(day, "fact", run)


def simulate_year(
    db: Database,
    settings: Settings,
    *,
    year: int,
    clock: Clock,
    seed: int = 42,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationSummary:
    """Replay ``year`` (up to the clock's day) on the routed network; returns counts.

    Raises SimulationError (French) when nobody was accompanied that year."""
    return _Year(db, settings, year, seed, clock.today()).run(progress)
