"""Commission pools (CALEOL): a ranked shortlist per unit, the commission's decision, and the
unit passing on to the next rank.

Why this shape: the social housing of a reserved contingent is not given by a coordinator's
validation but by the landlord's commission, which examines rang 1..k for each flat and
gives it to the first candidate it accepts. One row of ``allocation_proposal`` per (run,
pool, unit, rank) keeps the whole list:

- rang 1 is an ordinary proposal made through the door (``propose``): the referral is
  "proposed", the unit is held like any pending proposal, the coordination hears of it;
- ranks 2..k are "shortlisted": no referral changes state (the door is not involved and
  nobody is told, as the commission requires), the person stays waitlisted but is held out
  of later runs; an ``audit_log`` row per unit records the list, who made it and when;
- a rank under examination does not expire: only the commission's decision moves the unit
  on (a unit cannot pass to rang 2 because a meeting was late); the page shows how long;
- whatever closes the current rank — the commission's decision, an expiry, the referral
  refused or cancelled — goes through the door, and the door calls ``unit_moved_on``
  (``engine.referrals.commission_ranks``, below the door in the layers): an
  attribution withdraws the other ranks, anything else offers the unit to the next rank
  (``matching.shortlist.next_rank``) whose person still waits, marking the others
  "withdrawn" with the reason; an exhausted list frees the unit for the next run.

So no page, flow or API route can leave a unit stuck on a closed rank or skip a rank.
"""

from __future__ import annotations

__all__ = [
    "AlreadyDecided",
    "Passed",
    "commission_view",
    "commissions",
    "decide",
    "free_unit_numbers",
    "held_referrals",
    "held_units",
    "may_decide",
    "may_see",
    "store_shortlists",
    "unit_moved_on",
]

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from engine.access.permissions import can
from engine.domain.clock import Clock
from engine.domain.errors import Conflict, NotFound, Refused
from engine.domain.labels import (
    COMMISSION_DECISION_LABELS,
    COMMISSION_REASON_PREFIX,
    COMMISSION_REFUSAL_LABELS,
    COMMISSION_REFUSAL_REASONS,
    DECLINE_LABELS,
    DECLINE_REASONS,
    decline_reason_label,
    plural,
    unit_count,
)
from engine.outbox.messages import OUTSIDE_TERRITORY
from engine.referrals.actions import StaleEdit
from engine.referrals.commission_ranks import (
    Passed,
    held_units,
    may_decide,
    passed_for,
    unit_moved_on,
    unit_words,
)
from engine.referrals.transitions import Actor, apply_transition
from engine.store import dialect
from engine.store import models as m
from engine.store.settings import Settings

RUN_ACTOR = Actor.system("allocation")
OPEN_RANK_STATUSES = ("proposed", "shortlisted")
UNIT_ATTRIBUTED = "attribue"
UNIT_IN_COMMISSION = "en_commission"
UNIT_RETURNED = "revenu"
UNIT_STATUS_LABELS = {
    UNIT_ATTRIBUTED: "Attribué",
    UNIT_IN_COMMISSION: "En commission",
    UNIT_RETURNED: "Revenu au contingent",
}


class AlreadyDecided(Conflict):
    """Another coordinator recorded the commission's decision on this rank first."""


# --- who sees and decides ---------------------------------------------------------------


def _territory_code(session: Session, user: m.StaffUser) -> str | None:
    if user.territory_id is None:
        return None
    return session.scalar(select(m.Territory.code).where(m.Territory.id == user.territory_id))


def may_see(session: Session, user: m.StaffUser, pool: m.SlotPool) -> bool:
    """The national team, or a coordinator of a territory the pool serves (a national pool:
    any coordinator — the candidates of their territory are on its lists)."""
    if not (user.active and can(user, "review_allocation")):
        return False
    if user.role == "national_admin" or pool.scope is None:
        return True
    code = _territory_code(session, user)
    return code is not None and code in pool.scope


# --- units held and people held ---------------------------------------------------------


def held_referrals(session: Session) -> dict[int, tuple[int, int, int]]:
    """Referral id -> (run id, pool id, rank) of the people waiting on an open shortlist:
    they are candidates of no later run until the commission reaches or passes them."""
    P = m.AllocationProposal
    return {
        rid: (run_id, pool_id, int(rank or 0))
        for rid, run_id, pool_id, rank in session.execute(
            select(P.referral_id, P.run_id, P.pool_id, P.rank).where(P.status == "shortlisted")
        ).all()
    }


def free_unit_numbers(session: Session, pool: m.SlotPool) -> list[int]:
    """Unit numbers of the pool neither attributed nor under examination, in order."""
    taken = select(m.SlotAssignment.unit_id).where(m.SlotAssignment.active)
    held = held_units(session).get(pool.id, set())
    numbers = session.scalars(
        select(m.SlotUnit.unit_no)
        .where(m.SlotUnit.pool_id == pool.id, m.SlotUnit.id.not_in(taken))
        .order_by(m.SlotUnit.unit_no)
    ).all()
    return [n for n in numbers if n not in held]


# --- the run's shortlists -----------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """One candidate of a unit's list, as the run computed it."""

    referral: m.Referral
    units: int
    weight: int
    explanation: str


@dataclass
class StoredShortlists:
    units: int = 0
    candidates: int = 0
    proposals: list[m.AllocationProposal] = field(default_factory=list)


def store_shortlists(
    session: Session,
    settings: Settings,
    run: m.AllocationRun,
    pool: m.SlotPool,
    lists: Sequence[Sequence[Listed]],
    *,
    clock: Clock,
    actor: Actor = RUN_ACTOR,
) -> StoredShortlists:
    """Write one list per free unit of a commission pool: rang 1 proposed through the door,
    ranks 2..k "shortlisted" (nobody told), one audit row per unit.

    Checked before anything is written: a commission pool, no more lists than free units,
    no empty list, nobody twice, everyone waitlisted and on no other open list; the
    database's indexes repeat the last two (one shortlisted row per referral, one candidate
    per rank, one proposed rank per unit)."""
    if not pool.commission:
        raise Refused(f"« {pool.name} » n'est pas attribué en commission")
    free = free_unit_numbers(session, pool)
    if len(lists) > len(free):
        raise Refused(
            f"« {pool.name} » : {plural(len(lists), 'liste')} pour "
            f"{unit_count(len(free), pool.unit_kind)} libre(s)"
        )
    held = held_referrals(session)
    seen: set[int] = set()
    for n, entries in enumerate(lists, start=1):
        if not entries:
            raise Refused(f"« {pool.name} » : la liste n° {n} est vide")
        if len(entries) > pool.shortlist_size:
            raise Refused(
                f"« {pool.name} » : la liste n° {n} compte {len(entries)} candidats, "
                f"{pool.shortlist_size} au plus"
            )
        for e in entries:
            r = e.referral
            if r.id in seen or r.id in held:
                raise Refused(f"l'orientation n° {r.id} figure déjà sur une liste de commission")
            if r.state != "waitlisted":
                raise Refused(f"l'orientation n° {r.id} n'est pas en attente de place")
            seen.add(r.id)
    now = clock.now()
    out = StoredShortlists()
    for unit_no, entries in zip(free, lists, strict=False):
        rows = []
        for rank, e in enumerate(entries, start=1):
            prop = m.AllocationProposal(
                run_id=run.id,
                referral_id=e.referral.id,
                pool_id=pool.id,
                units=e.units,
                weight=e.weight,
                priority=e.referral.priority,
                explanation=e.explanation,
                status="proposed" if rank == 1 else "shortlisted",
                expires_at=None,  # only the commission's decision moves a unit on
                unit_no=unit_no,
                rank=rank,
            )
            session.add(prop)
            rows.append(prop)
        session.flush()
        apply_transition(
            session,
            settings,
            entries[0].referral,
            "propose",
            actor=actor,
            clock=clock,
            proposal=rows[0],
            note=f"exécution n° {run.id} : rang 1 de la commission, {unit_words(pool, unit_no)}",
        )
        session.add(
            m.AuditLog(
                actor_user_id=run.created_by,
                actor_label=actor.label[:80],
                action="commission_shortlist",
                object_type="allocation_run",
                object_id=str(run.id),
                at=now,
                details={
                    "pool_id": pool.id,
                    "unit_no": unit_no,
                    "ranks": [
                        {"rank": p.rank, "proposal_id": p.id, "referral_id": p.referral_id}
                        for p in rows
                    ],
                },
            )
        )
        out.units += 1
        out.candidates += len(rows)
        out.proposals.append(rows[0])
    return out


# --- the commission's decision ------------------------------------------------------------


@dataclass
class Decision:
    proposal: m.AllocationProposal
    decision: str
    passed: Passed | None
    unit: str = "l'unité"  # "logement n° 2"
    next_reference: str | None = None

    def sentence(self) -> str:
        """What the coordinator reads once the decision is recorded."""
        p = self.proposal
        head = (
            f"{COMMISSION_DECISION_LABELS[self.decision]} enregistré au rang {p.rank} "
            f"({self.unit})."
        )
        if self.decision == "attribue":
            return head + " Les autres rangs sont retirés de la liste, sans aucun envoi."
        passed = self.passed or Passed()
        skipped = "".join(
            f" Rang {rank} retiré : la personne n'était plus en attente."
            for rank, _ in passed.withdrawn
        )
        if passed.next_proposal is not None:
            return (
                head + skipped + f" Passage automatique au rang {passed.next_proposal.rank} "
                f"({self.next_reference})."
            )
        return (
            head + skipped + " Liste épuisée : l'unité revient au contingent et sera proposée à la "
            "prochaine attribution."
        )


def _reason_words(decision: str, reason: str | None, note: str | None) -> tuple[str, str, str]:
    """(stored code, the event's note, the French words) of a refusal; French refusal
    when the code is missing, unknown, or "other" without a precision."""
    if decision == "refus_candidat":
        codes, labels, field_name = DECLINE_REASONS, DECLINE_LABELS, "motif du refus du candidat"
    else:
        codes, labels = COMMISSION_REFUSAL_REASONS, COMMISSION_REFUSAL_LABELS
        field_name = "motif du refus de la commission"
    if not reason:
        raise Refused(f"choisissez le {field_name}")
    if reason not in codes:
        raise Refused(f"{field_name} inconnu : « {str(reason)[:40]} »")
    if reason == "other" and not note:
        raise Refused("le motif « Autre » demande une précision")
    words = labels[reason] if reason != "other" else "Autre motif"
    who = "Refus du candidat" if decision == "refus_candidat" else "Refus de la commission"
    stored = reason if decision == "refus_candidat" else COMMISSION_REASON_PREFIX + reason
    text = f"{who} : {words}" + (f" : {note}" if note else "")
    return stored, text, words


def decide(
    session: Session,
    settings: Settings,
    proposal_id: int,
    *,
    decision: str,
    actor: Actor,
    clock: Clock,
    reason: str | None = None,
    note: str | None = None,
    expected_version: int | None = None,
) -> Decision:
    """Record the commission's decision on a unit's current rank, through the door.

    "attribue" validates (the unit consumed, the other ranks withdrawn); "refus_candidat"
    (a code of ``DECLINE_REASONS``) and "refus_commission" (a code of
    ``COMMISSION_REFUSAL_REASONS``) decline — the person goes back to the waitlist — and
    the door passes the unit on. A proposal the actor may not see is a ``NotFound``; a rank
    someone else decided first is ``AlreadyDecided``; an older version is ``StaleEdit``.
    Everything is checked before anything is written."""
    prop = dialect.get_locked(session, m.AllocationProposal, proposal_id)
    if prop is None or prop.rank is None:
        raise NotFound("proposition de commission introuvable")
    pool = session.get(m.SlotPool, prop.pool_id)
    assert pool is not None
    if actor.user is not None and not may_see(session, actor.user, pool):
        raise NotFound("proposition de commission introuvable")
    if decision not in COMMISSION_DECISION_LABELS:
        raise Refused(f"décision inconnue : « {str(decision)[:40]} »")
    if prop.status == "shortlisted":
        raise Refused(
            f"le rang {prop.rank} n'est pas encore examiné : la commission décide d'abord "
            "sur le rang en cours"
        )
    if prop.status != "proposed":
        raise AlreadyDecided(
            f"la décision sur le rang {prop.rank} de ce logement a déjà été enregistrée "
            f"({_status_words(prop)}), sans doute par une autre personne : rechargez la page, "
            "rien n'a été enregistré"
        )
    if expected_version is not None and prop.version != expected_version:
        raise StaleEdit(prop.version)
    if note is not None:
        if "\x00" in note:
            raise Refused("la précision contient un caractère interdit")
        note = note.strip() or None
    ref = dialect.get_locked(session, m.Referral, prop.referral_id)
    assert ref is not None
    if actor.user is not None and not may_decide(session, actor.user, pool, ref):
        raise NotFound("proposition de commission introuvable")
    stored: str | None = None
    if decision == "attribue":
        apply_transition(
            session,
            settings,
            ref,
            "validate",
            actor=actor,
            clock=clock,
            proposal=prop,
            note=f"Attribué par la commission au rang {prop.rank}" + (f" : {note}" if note else ""),
        )
    else:
        stored, text, _words = _reason_words(decision, reason, note)
        apply_transition(
            session,
            settings,
            ref,
            "decline_proposal",
            actor=actor,
            clock=clock,
            proposal=prop,
            note=text,
        )
        prop.decline_reason = stored
    passed = passed_for(session, prop.id)
    session.add(
        m.AuditLog(
            actor_user_id=actor.user.id if actor.user else None,
            actor_label=actor.label[:80],
            action="commission_decision",
            object_type="allocation_proposal",
            object_id=str(prop.id),
            at=clock.now(),
            # The code, never the note: the note stays on the referral's event.
            details={
                "run_id": prop.run_id,
                "pool_id": prop.pool_id,
                "unit_no": prop.unit_no,
                "rank": prop.rank,
                "decision": decision,
                "reason": stored,
            },
        )
    )
    session.flush()
    out = Decision(prop, decision, passed, unit=unit_words(pool, prop.unit_no))
    if passed is not None and passed.next_proposal is not None:
        out.next_reference = session.scalar(
            select(m.Salarie.reference)
            .join(m.Referral, m.Referral.salarie_id == m.Salarie.id)
            .where(m.Referral.id == passed.next_proposal.referral_id)
        )
    return out


def _status_words(prop: m.AllocationProposal) -> str:
    return {
        "validated": "attribué",
        "declined": "refusé",
        "expired": "expiré sans décision",
        "withdrawn": "retiré",
    }.get(prop.status, prop.status)


# --- read models: the list of commissions and one commission --------------------------------


@dataclass
class CommissionSummary:
    run_id: int
    pool_id: int
    pool_name: str
    started_at: datetime
    unit_kind: str
    attributed: int = 0
    in_commission: int = 0
    returned: int = 0

    @property
    def units(self) -> int:
        return self.attributed + self.in_commission + self.returned

    @property
    def url(self) -> str:
        return f"/attributions/commissions/{self.run_id}/{self.pool_id}"


def _unit_state(statuses: Sequence[str]) -> str:
    if "validated" in statuses:
        return UNIT_ATTRIBUTED
    if "proposed" in statuses:
        return UNIT_IN_COMMISSION
    return UNIT_RETURNED


def commissions(session: Session, user: m.StaffUser) -> list[CommissionSummary]:
    """The commissions (run × commission pool) the user may see, latest first, with their
    units attributed, still in commission and returned to the contingent."""
    P = m.AllocationProposal
    rows = session.execute(
        select(P.run_id, P.pool_id, P.unit_no, P.status, m.AllocationRun.started_at)
        .join(m.AllocationRun, m.AllocationRun.id == P.run_id)
        .where(P.rank.is_not(None))
        .order_by(P.run_id.desc(), P.pool_id, P.unit_no)
    ).all()
    if not rows:
        return []
    pools = {
        p.id: p
        for p in session.scalars(
            select(m.SlotPool).where(m.SlotPool.id.in_({r.pool_id for r in rows}))
        ).all()
    }
    visible = {pid for pid, p in pools.items() if may_see(session, user, p)}
    from engine.allocation.review import territory_names, with_territory_names

    names = territory_names(session)
    units: dict[tuple[int, int], dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    started: dict[int, datetime] = {}
    for run_id, pool_id, unit_no, status, at in rows:
        if pool_id in visible:
            units[(run_id, pool_id)][int(unit_no or 0)].append(status)
            started[run_id] = at
    out = []
    for (run_id, pool_id), by_unit in units.items():
        pool = pools[pool_id]
        s = CommissionSummary(
            run_id,
            pool_id,
            with_territory_names(pool.name, names),
            started[run_id],
            pool.unit_kind,
        )
        for statuses in by_unit.values():
            state = _unit_state(statuses)
            if state == UNIT_ATTRIBUTED:
                s.attributed += 1
            elif state == UNIT_IN_COMMISSION:
                s.in_commission += 1
            else:
                s.returned += 1
        out.append(s)
    out.sort(key=lambda c: (-c.run_id, c.pool_name))
    return out


@dataclass
class RankView:
    proposal: m.AllocationProposal
    reference: str
    territory: str
    referral_state: str
    readable: bool  # may open the referral's case page
    decidable: bool  # may record the commission's decision on it
    explanation: str
    decided_by: str | None = None
    note: str | None = None  # the precision of an "other" refusal

    @property
    def rank(self) -> int:
        return self.proposal.rank or 0

    @property
    def status(self) -> str:
        return self.proposal.status

    @property
    def status_label(self) -> str:
        p = self.proposal
        if p.status == "proposed":
            return "Rang en cours d'examen par la commission"
        if p.status == "shortlisted":
            return "En attente : rang non encore atteint"
        if p.status == "validated":
            return "Attribué par la commission"
        if p.status == "expired":
            return "Proposition expirée sans décision"
        if p.status == "withdrawn":
            return "Retiré de la liste"
        words = decline_reason_label(p.decline_reason) or "Refus"
        if p.decline_reason in DECLINE_REASONS:
            words = f"Refus du candidat : {words}"
        if p.decline_reason in ("other", COMMISSION_REASON_PREFIX + "other") and self.note:
            words = f"{words} ({self.note})"
        return words


@dataclass
class UnitView:
    unit_no: int
    state: str
    ranks: list[RankView]

    @property
    def state_label(self) -> str:
        return UNIT_STATUS_LABELS[self.state]

    @property
    def current(self) -> RankView | None:
        return next((r for r in self.ranks if r.status == "proposed"), None)

    @property
    def history(self) -> list[RankView]:
        """The ranks decided or withdrawn, in the order it happened."""
        done = [r for r in self.ranks if r.proposal.decided_at is not None]
        return sorted(done, key=lambda r: (r.proposal.decided_at, r.rank))


@dataclass
class CommissionView:
    run: m.AllocationRun
    pool: m.SlotPool
    pool_name: str
    units: list[UnitView]

    def count(self, state: str) -> int:
        return sum(1 for u in self.units if u.state == state)

    @property
    def counts(self) -> list[tuple[str, int]]:
        return [(UNIT_STATUS_LABELS[s], self.count(s)) for s in UNIT_STATUS_LABELS]


def commission_view(
    session: Session, user: m.StaffUser, run_id: int, pool_id: int
) -> CommissionView:
    """One commission: each unit with its ranked candidates (pseudonymous reference, points,
    explanation), the rank under examination, what was decided. ``NotFound`` when the run
    made no list for this pool or the user may not see the pool."""
    run = session.get(m.AllocationRun, run_id)
    pool = session.get(m.SlotPool, pool_id)
    if run is None or pool is None or not may_see(session, user, pool):
        raise NotFound("commission introuvable")
    P, R = m.AllocationProposal, m.Referral
    rows = session.execute(
        select(P, R, m.Salarie.reference, m.Territory.name)
        .join(R, R.id == P.referral_id)
        .join(m.Salarie, m.Salarie.id == R.salarie_id)
        .outerjoin(m.Territory, m.Territory.id == R.territory_id)
        .where(P.run_id == run_id, P.pool_id == pool_id, P.rank.is_not(None))
        .order_by(P.unit_no, P.rank)
    ).all()
    if not rows:
        raise NotFound("commission introuvable")
    from engine.allocation.review import territory_names, with_territory_names

    names = territory_names(session)
    deciders = {p.decided_by for p, *_ in rows} - {None}
    people = (
        dict(
            session.execute(
                select(m.StaffUser.id, m.StaffUser.display_name).where(m.StaffUser.id.in_(deciders))
            ).all()
        )
        if deciders
        else {}
    )
    notes = _other_notes(session, [p for p, *_ in rows])
    by_unit: dict[int, list[RankView]] = defaultdict(list)
    for p, ref, reference, terr in rows:
        by_unit[int(p.unit_no or 0)].append(
            RankView(
                proposal=p,
                reference=reference,
                territory=terr or OUTSIDE_TERRITORY,
                referral_state=ref.state,
                readable=can(user, "read", ref),
                decidable=may_decide(session, user, pool, ref),
                explanation=with_territory_names(_proposed_words(p), names),
                decided_by=people.get(p.decided_by) if p.decided_by else None,
                note=notes.get(p.id),
            )
        )
    units = [
        UnitView(unit_no, _unit_state([r.status for r in ranks]), ranks)
        for unit_no, ranks in sorted(by_unit.items())
    ]
    return CommissionView(run, pool, with_territory_names(pool.name, names), units)


def _proposed_words(p: m.AllocationProposal) -> str:
    """The run's sentence, saying "proposée" until the commission attributed the unit; for
    ranks 2..k, from their place on the list on (the run's "no place in this run" sentence
    before it stops being true once the unit passes to them)."""
    text = p.explanation or ""
    if p.rank is not None and p.rank >= 2:
        at = text.find(f"Rang {p.rank} sur la liste")
        text = text[at:] if at > 0 else text
    return text if p.status == "validated" else text.replace("Place attribuée", "Place proposée", 1)


def _other_notes(session: Session, props: list[m.AllocationProposal]) -> dict[int, str]:
    """The precision given with an "other" refusal: the note of the door's event."""
    wanted = [
        p
        for p in props
        if p.decline_reason in ("other", COMMISSION_REASON_PREFIX + "other") and p.decided_at
    ]
    if not wanted:
        return {}
    E = m.ReferralEvent
    out: dict[int, str] = {}
    conds = [and_(E.referral_id == p.referral_id, E.at == p.decided_at) for p in wanted]
    found: dict[tuple[int, Any], str] = {}
    for rid, at, note in session.execute(
        select(E.referral_id, E.at, E.note).where(E.action == "decline_proposal", or_(*conds))
    ).all():
        if note:
            found[(rid, at)] = note
    for p in wanted:
        note = found.get((p.referral_id, p.decided_at))
        if note and " : Autre motif : " in note:
            out[p.id] = note.split(" : Autre motif : ", 1)[1]
    return out
