"""What a waitlisted person accepts, in order, and how each family of pools is allocated.

Why a module of its own: a person has a say. Their CIP/ESP (or the coordination) records the
pools — or whole territories — the person accepts, most preferred first, or "any" (no row);
the allocation run reads them in one batch (``preferences_for_run``) as pool *names*, the way
the solver knows pools. The national team chooses, per family of pools (the pools of one
offer), whether the run gives the grid's optimum (``optimal``: the choices act as
eligibility) or a stable matching (``stable``: deferred acceptance with people proposing, in
the order of their choices). Neither is a state change of the referral: recording choices
writes the row, an event on the referral's timeline (so the chargé·e sees the person's say)
and an audit row with the before and after; changing a mechanism writes an audit row.

Choices are recorded while the person waits for a place — ``waitlisted`` or ``proposed``: a
person may change their mind while a proposal awaits the coordination (the proposal itself
is validated or declined on the allocation page; the new choices count from the next run).
The run only reads the choices of ``waitlisted`` referrals: a pending proposal is pinned and
no stated choice may move it, and a referral that left the waitlist keeps a row nobody reads.

Stale edits: the version a page shows counts the changes ever recorded on the referral (its
``record_choices`` events, plus one), not the row's version — the row is deleted when the person
goes back to "any", and a re-created row would start again at 1 (a stale form could then
overwrite a newer choice). The referral row is locked while the count is compared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine.access.log import record_read
from engine.access.permissions import can
from engine.domain.clock import Clock
from engine.domain.errors import ANONYMISED, Conflict, Forbidden, NotFound, Refused
from engine.domain.labels import STATE_LABELS, unit_count
from engine.domain.vocabulary import ALLOCATION_MECHANISMS
from engine.referrals.actions import StaleEdit
from engine.referrals.transitions import Actor, record_event
from engine.store import dialect
from engine.store import models as m
from matching.eligibility import evaluate
from partners.eligibility_rules import Rule
from partners.taxonomy import covers

ANY = "any"
MAX_CHOICES = 20
TERRITORY_CODE_MAX = 80
EVENT_ACTION = "record_choices"  # the referral event (timeline), not a lifecycle action
AUDIT_ACTION = "record_allocation_choices"
MECHANISM_AUDIT_ACTION = "set_allocation_mechanism"
# A person waiting for a place may state choices; the run reads only the waitlisted ones.
RECORD_STATES = ("waitlisted", "proposed")
RUN_STATES = ("waitlisted",)
# Who records: the chantier's CIP/ESP, the coordination of the referral's territory, the
# national team (each within their scope). A chargé·e reads them.
RECORDER_ROLES = frozenset({"cip", "coordinator", "national_admin"})
READER_ROLES = RECORDER_ROLES | {"officer"}
DEFAULT_MECHANISM = "optimal"
MECHANISM_LABELS: dict[str, str] = {"optimal": "Optimal", "stable": "Stable"}
MECHANISM_EXPLANATIONS: dict[str, str] = {
    "optimal": (
        "optimal : le plus de points servis au total, les choix exprimés servent de "
        "conditions — une personne ne reçoit qu'une place qu'elle accepte, mais l'ordre de "
        "ses choix ne compte pas."
    ),
    "stable": (
        "stable : personne ne peut préférer une place qui l'aurait préférée(e) — acceptation "
        "différée, les personnes proposent : chacune demande d'abord la place de son premier "
        "choix, chaque dispositif garde les personnes qui ont le plus de points, les autres "
        "demandent leur choix suivant. Le total de points servis peut être un peu plus bas "
        "qu'avec le mécanisme optimal."
    ),
}


class StaleMechanism(Conflict):
    """Someone else changed the family's mechanism since the page was loaded."""

    def __init__(self, current: str) -> None:
        super().__init__(
            "Le mécanisme de cette famille de dispositifs a été modifié par quelqu'un d'autre "
            "pendant que vous consultiez la page. Rechargez la page : rien n'a été enregistré."
        )
        self.current = current


# --- reachable pools and the expansion of choices (shared by the page and the run) ----------


def reachable(pool: m.SlotPool, offer: m.Offer, referral: m.Referral, code: str | None) -> bool:
    """Could this pool serve this referral? The allocation run's test (``_build_problem``)
    before the eligibility rules: the offer covers the frein's thématique (or the pool is the
    one the chargé·e waitlisted it on) and the pool's scope includes the referral's
    territory. The rules depend on facts that change while the person waits (months on the
    street, the grid), so a choice is not refused for them: the run skips a pool the person
    is not eligible for when it solves."""
    if pool.id != referral.pool_id and not any(
        covers(t, referral.thematique) for t in offer.thematiques or []
    ):
        return False
    return pool.scope is None or (code is not None and code in pool.scope)


def in_territory(code: str, home: str | None, scope: Sequence[Any] | None) -> bool:
    """Does a territory choice take in this pool? Its home territory, or a scope naming it
    (a national pool, scope None, is in no territory in particular)."""
    return home == code or (scope is not None and code in scope)


def _scope(scope: Sequence[Any] | None) -> tuple[str, ...] | None:
    return None if scope is None else tuple(str(c) for c in scope)


@dataclass(frozen=True)
class PoolPlace:
    """Where a pool is, for expanding territory choices: id, home territory code, scope."""

    id: int
    home: str | None
    scope: tuple[str, ...] | None


class PoolIndex:
    """The pools of a run (or of a referral's reach) indexed once: which ids exist, and each
    territory's pools in pool-id order — so that expanding 5,000 people's territory choices
    over 5,000 pools costs the size of the answers, not people × pools."""

    def __init__(self, pools: Iterable[PoolPlace]) -> None:
        self.known: set[int] = set()
        self.by_territory: dict[str, list[int]] = {}
        for p in sorted(pools, key=lambda p: p.id):
            self.known.add(p.id)
            codes = {p.home} if p.home is not None else set()
            codes.update(p.scope or ())
            for code in codes:
                self.by_territory.setdefault(code, []).append(p.id)


def expand_choices(choices: Sequence[Any], pools: PoolIndex | Iterable[PoolPlace]) -> list[int]:
    """Pool ids in the order of the choices: a pool stands for itself (when among ``pools``),
    a territory for its pools (home or scope, ``in_territory``) in pool-id order; the first
    occurrence of a pool counts. Malformed entries (a hand-edited row) are skipped, never
    guessed."""
    index = pools if isinstance(pools, PoolIndex) else PoolIndex(pools)
    out: list[int] = []
    seen: set[int] = set()
    for choice in choices:
        if not isinstance(choice, dict) or len(choice) != 1:
            continue
        if "pool" in choice:
            pid = choice["pool"]
            found = [pid] if isinstance(pid, int) and not isinstance(pid, bool) else []
            ids = [i for i in found if i in index.known]
        elif "territory" in choice and isinstance(choice["territory"], str):
            ids = index.by_territory.get(choice["territory"], [])
        else:
            continue
        for i in ids:
            if i not in seen:
                seen.add(i)
                out.append(i)
    return out


# --- validation ------------------------------------------------------------------------------


def _clean_shape(choices: Any) -> list[dict[str, Any]]:
    """The choices as a list of ``{"pool": int}`` / ``{"territory": str}``, or Refused in
    French naming the faulty item (its rank, 1-based)."""
    if isinstance(choices, (str, bytes, dict)) or not isinstance(choices, Sequence):
        raise Refused(
            "choix illisibles : donnez une liste de dispositifs ou de territoires, ou "
            "« Toutes les places possibles »"
        )
    if not choices:
        raise Refused(
            "aucun choix : choisissez au moins un dispositif ou un territoire, ou "
            "« Toutes les places possibles »"
        )
    if len(choices) > MAX_CHOICES:
        raise Refused(f"trop de choix : {MAX_CHOICES} au plus ({len(choices)} reçus)")
    out: list[dict[str, Any]] = []
    for rank, choice in enumerate(choices, start=1):
        if not isinstance(choice, dict) or len(choice) != 1:
            raise Refused(f"choix n° {rank} illisible : un dispositif ou un territoire")
        if "pool" in choice:
            pid = choice["pool"]
            if isinstance(pid, bool) or not isinstance(pid, int) or not 1 <= pid <= m.MAX_ID:
                raise Refused(f"choix n° {rank} : dispositif inconnu")
            out.append({"pool": pid})
        elif "territory" in choice:
            code = choice["territory"]
            if (
                not isinstance(code, str)
                or not code.strip()
                or len(code) > TERRITORY_CODE_MAX
                or "\x00" in code
            ):
                raise Refused(f"choix n° {rank} : territoire inconnu")
            out.append({"territory": code.strip()})
        else:
            raise Refused(f"choix n° {rank} illisible : un dispositif ou un territoire")
    return out


@dataclass
class _Reach:
    """What a referral can reach: its pools (id order), territory codes and names."""

    pools: dict[int, m.SlotPool]
    offers: dict[int, m.Offer]
    territory_code: str | None
    territory_names: dict[str, str]
    codes: dict[int, str]  # territory id -> code

    def places(self) -> list[PoolPlace]:
        return [
            PoolPlace(
                p.id, self.codes.get(p.territory_id) if p.territory_id else None, _scope(p.scope)
            )
            for p in self.pools.values()
        ]


def _reach(session: Session, referral: m.Referral) -> _Reach:
    codes = dict(session.execute(select(m.Territory.id, m.Territory.code)).all())
    names = dict(session.execute(select(m.Territory.code, m.Territory.name)).all())
    code = codes.get(referral.territory_id) if referral.territory_id else None
    offers = {
        o.id: o
        for o in session.scalars(
            select(m.Offer).where(m.Offer.id.in_(select(m.SlotPool.offer_id).distinct()))
        )
    }
    pools = {
        p.id: p
        for p in session.scalars(select(m.SlotPool).order_by(m.SlotPool.id))
        if reachable(p, offers[p.offer_id], referral, code)
    }
    return _Reach(pools, offers, code, names, codes)


def _validate(
    session: Session, referral: m.Referral, choices: list[dict[str, Any]], reach: _Reach
) -> None:
    """Every pool exists and could serve the referral, every territory exists and has such a
    pool, nothing is chosen twice."""
    seen: set[tuple[str, Any]] = set()
    places = reach.places()
    for rank, choice in enumerate(choices, start=1):
        key = next(iter(choice.items()))
        if key in seen:
            what = "dispositif" if key[0] == "pool" else "territoire"
            raise Refused(f"choix n° {rank} en double : ce {what} est déjà choisi")
        seen.add(key)
        if key[0] == "pool":
            pool = session.get(m.SlotPool, key[1])
            if pool is None:
                raise Refused(f"choix n° {rank} : dispositif inconnu (n° {key[1]})")
            if pool.id not in reach.pools:
                raise Refused(
                    f"choix n° {rank} : « {_pool_words(pool, reach.territory_names)} » ne "
                    "peut pas accueillir cette orientation (thématique ou territoire)"
                )
        else:
            code = key[1]
            if code not in reach.territory_names:
                raise Refused(f"choix n° {rank} : territoire inconnu « {code[:40]} »")
            if not any(in_territory(code, p.home, p.scope) for p in places):
                raise Refused(
                    f"choix n° {rank} : aucun dispositif du territoire "
                    f"{reach.territory_names[code]} ne peut accueillir cette orientation"
                )


def _pool_words(pool: m.SlotPool, names: Mapping[str, str]) -> str:
    from engine.allocation.review import with_territory_names

    return with_territory_names(pool.name, dict(names))


def _summary(
    choices: list[dict[str, Any]] | None, pools: Mapping[int, m.SlotPool], names: Mapping[str, str]
) -> str:
    """The choices in words for the timeline ("1. CDC Habitat … ; 2. territoire Paris")."""
    if not choices:
        return "Toutes les places possibles"
    parts = []
    for rank, choice in enumerate(choices, start=1):
        if "pool" in choice:
            pool = pools.get(choice["pool"])
            words = _pool_words(pool, names) if pool else f"dispositif n° {choice['pool']}"
        else:
            words = f"toutes les places du territoire {names.get(choice['territory'], '?')}"
        parts.append(f"{rank}. {words}")
    return " ; ".join(parts)


# --- recording -------------------------------------------------------------------------------


def choices_version(session: Session, referral_id: int) -> int:
    """The version of a referral's choices a form carries: 1, plus one per change ever
    recorded (monotonic, unlike the row's own version, which restarts when "any" deletes
    the row and new choices create it again)."""
    return 1 + int(
        session.scalar(
            select(func.count())
            .select_from(m.ReferralEvent)
            .where(
                m.ReferralEvent.referral_id == referral_id,
                m.ReferralEvent.action == EVENT_ACTION,
            )
        )
        or 0
    )


def _row(session: Session, referral_id: int) -> m.AllocationPreference | None:
    return session.scalar(
        select(m.AllocationPreference).where(m.AllocationPreference.referral_id == referral_id)
    )


def _check_reader(user: m.StaffUser, referral: m.Referral) -> None:
    """Out of scope, or a partner contact: NotFound (nobody learns the referral exists)."""
    if not can(user, "read", referral) or user.role not in READER_ROLES:
        raise NotFound("orientation introuvable")


def record_preferences(
    session: Session,
    referral_id: int,
    choices: Sequence[Mapping[str, Any]] | str,
    *,
    actor: Actor,
    clock: Clock,
    expected_version: int | None,
) -> m.AllocationPreference | None:
    """Record what the person accepts, most preferred first, or ``"any"`` (the row goes).

    ``choices``: ``[{"pool": id} | {"territory": code}, …]`` (1 to 20, no duplicate) or
    ``"any"``. ``expected_version`` is ``choices_version`` as the page showed it (None: a
    system caller that does not compare). Raises NotFound (out of scope, partner contact),
    Forbidden (a chargé·e: they read the choices, the CIP/ESP or coordination records
    them), StaleEdit (recorded by someone else meanwhile), Refused (not waiting for a place,
    a choice that is unknown, out of reach or twice). Nothing is written unless everything
    is accepted; recording the same choices again writes nothing. Returns the row (None for
    "any"). The caller's unit of work commits."""
    ref = dialect.get_locked(session, m.Referral, referral_id)
    if ref is None:
        raise NotFound("orientation introuvable")
    user = actor.user
    if user is not None:
        _check_reader(user, ref)
        if user.role not in RECORDER_ROLES:
            raise Forbidden(
                "les choix de la personne s'enregistrent par la ou le CIP / ESP du chantier "
                "ou par la coordination"
            )
    current_version = choices_version(session, ref.id)
    if expected_version is not None and expected_version != current_version:
        raise StaleEdit(current_version)
    person = session.get(m.Salarie, ref.salarie_id)
    if person is not None and person.anonymised_at is not None:
        raise Refused(ANONYMISED)
    if ref.state not in RECORD_STATES:
        raise Refused(
            "cette orientation n'attend pas de place (état : "
            f"{STATE_LABELS.get(ref.state, ref.state).lower()}) : les choix de la personne "
            "s'enregistrent pendant l'attente d'une place"
        )
    if isinstance(choices, str):
        if choices != ANY:
            raise Refused(
                "choix illisibles : donnez une liste de dispositifs ou de territoires, ou "
                "« Toutes les places possibles »"
            )
        new: list[dict[str, Any]] | None = None
    else:
        new = _clean_shape(choices)
    reach = _reach(session, ref)
    if new is not None:
        _validate(session, ref, new, reach)
    row = _row(session, ref.id)
    before = list(row.choices) if row is not None else None
    if before == new:
        return row  # the same choices: nothing to record
    now = clock.now()
    if new is None:
        assert row is not None
        session.delete(row)
        row = None
    elif row is None:
        row = m.AllocationPreference(
            referral_id=ref.id,
            choices=new,
            recorded_by=user.id if user else None,
            recorded_at=now,
        )
        session.add(row)
    else:
        row.choices = new
        row.recorded_by = user.id if user else None
        row.recorded_at = now
    try:
        session.flush()
    except StaleDataError:
        raise StaleEdit(current_version) from None
    pools = {p.id: p for p in reach.pools.values()}
    record_event(
        session,
        ref,
        from_state=ref.state,
        action=EVENT_ACTION,
        actor=actor,
        at=now,
        note="Choix de la personne : " + _summary(new, pools, reach.territory_names),
    )
    session.add(
        m.AuditLog(
            actor_user_id=user.id if user else None,
            actor_label=actor.label[:80],
            action=AUDIT_ACTION,
            object_type="referral",
            object_id=str(ref.id),
            at=now,
            details={
                "salarie_id": ref.salarie_id,
                "before": before if before is not None else ANY,
                "after": new if new is not None else ANY,
            },
        )
    )
    return row


# --- the page of a referral's choices ---------------------------------------------------------


@dataclass(frozen=True)
class PoolOption:
    """A pool the person may choose, as the page shows it."""

    id: int
    name: str  # with territory names
    partner: str
    home: str | None  # home territory name
    scope_names: tuple[str, ...] | None  # None: national
    free: str  # "2 logements"
    free_units: int
    mechanism: str
    rule_failed: str | None  # why the person is not eligible today (None: eligible)


@dataclass(frozen=True)
class ChoiceLine:
    """One recorded choice in words: ``value`` is the form's ("pool:12", "territoire:paris")."""

    rank: int
    value: str
    label: str


@dataclass
class ChoicesView:
    referral: m.Referral
    reference: str
    territory_name: str | None
    version: int
    can_record: bool
    waiting: bool  # in a state where choices may be recorded
    options: list[PoolOption] = field(default_factory=list)
    territories: list[tuple[str, str]] = field(default_factory=list)  # (code, name)
    current: list[ChoiceLine] = field(default_factory=list)  # [] = any
    expanded: list[str] = field(default_factory=list)  # the pools the choices mean, in order
    recorded_at: datetime | None = None
    recorded_by: str | None = None
    read_by_run: bool = True  # the run reads the choices now (waitlisted)


def _free_units(session: Session, pool_ids: list[int]) -> dict[int, int]:
    """Units neither held by a validated proposal nor held back by an open one."""
    if not pool_ids:
        return {}
    used = dict(
        session.execute(
            select(m.SlotUnit.pool_id, func.count())
            .join(m.SlotAssignment, m.SlotAssignment.unit_id == m.SlotUnit.id)
            .where(m.SlotAssignment.active, m.SlotUnit.pool_id.in_(pool_ids))
            .group_by(m.SlotUnit.pool_id)
        ).all()
    )
    proposed = dict(
        session.execute(
            select(m.AllocationProposal.pool_id, func.sum(m.AllocationProposal.units))
            .where(
                m.AllocationProposal.status == "proposed",
                m.AllocationProposal.pool_id.in_(pool_ids),
            )
            .group_by(m.AllocationProposal.pool_id)
        ).all()
    )
    pools = session.scalars(select(m.SlotPool).where(m.SlotPool.id.in_(pool_ids)))
    return {
        p.id: max(0, p.capacity - int(used.get(p.id, 0)) - int(proposed.get(p.id) or 0))
        for p in pools
    }


def _rule_failures(session: Session, referral: m.Referral, reach: _Reach) -> dict[int, str | None]:
    """Per reachable pool, the first eligibility rule the person fails today (or None)."""
    from engine.allocation.run import _facts

    person = session.get(m.Salarie, referral.salarie_id)
    assert person is not None
    open_freins = int(
        session.scalar(
            select(func.count())
            .select_from(m.Frein)
            .where(m.Frein.salarie_id == person.id, m.Frein.status == "open")
        )
        or 1
    )
    facts = _facts(person, reach.territory_code, open_freins)
    out: dict[int, str | None] = {}
    verdicts: dict[int, str | None] = {}
    for pid, pool in reach.pools.items():
        if pool.offer_id not in verdicts:
            offer = reach.offers[pool.offer_id]
            verdict = evaluate(tuple(Rule.model_validate(r) for r in offer.rules or []), facts)
            verdicts[pool.offer_id] = (
                None
                if verdict.eligible
                else (verdict.failed[0].label if verdict.failed else "règle non remplie")
            )
        out[pid] = verdicts[pool.offer_id]
    return out


def choices_view(
    session: Session, user: m.StaffUser, referral_id: int, *, now: datetime
) -> ChoicesView:
    """The page of a referral's choices: the pools that could serve it (territory, free
    units, today's eligibility), the territories that have one, the current choices and
    the pools they mean in order. The read is logged (it shows a person's file)."""
    ref = session.get(m.Referral, referral_id)
    if ref is None:
        raise NotFound("orientation introuvable")
    _check_reader(user, ref)
    person = session.get(m.Salarie, ref.salarie_id)
    assert person is not None
    record_read(
        session, user, person.id, at=now, purpose="choix de la personne", with_identity=False
    )
    reach = _reach(session, ref)
    names = reach.territory_names
    partners = dict(session.execute(select(m.Partner.id, m.Partner.name)).all())
    free = _free_units(session, list(reach.pools))
    failures = _rule_failures(session, ref, reach)
    waiting = ref.state in RECORD_STATES
    view = ChoicesView(
        referral=ref,
        reference=person.reference,
        territory_name=names.get(reach.territory_code) if reach.territory_code else None,
        version=choices_version(session, ref.id),
        can_record=waiting and user.role in RECORDER_ROLES and person.anonymised_at is None,
        waiting=waiting,
        read_by_run=ref.state in RUN_STATES,
    )
    for p in reach.pools.values():
        offer = reach.offers[p.offer_id]
        home = reach.codes.get(p.territory_id) if p.territory_id else None
        view.options.append(
            PoolOption(
                id=p.id,
                name=_pool_words(p, names),
                partner=partners.get(offer.partner_id, ""),
                home=names.get(home) if home else None,
                scope_names=None
                if p.scope is None
                else tuple(sorted(names.get(str(c), str(c)) for c in p.scope)),
                free=unit_count(free.get(p.id, 0), p.unit_kind),
                free_units=free.get(p.id, 0),
                mechanism=offer.allocation_mechanism or DEFAULT_MECHANISM,
                rule_failed=failures.get(p.id),
            )
        )
    places = reach.places()
    view.territories = sorted(
        ((code, name) for code, name in names.items()
         if any(in_territory(code, p.home, p.scope) for p in places)),
        key=lambda t: t[1],
    )  # fmt: skip
    row = _row(session, ref.id)
    if row is not None:
        view.recorded_at = row.recorded_at
        author = session.get(m.StaffUser, row.recorded_by) if row.recorded_by else None
        view.recorded_by = author.display_name if author else None
        all_pools = {p.id: p for p in session.scalars(select(m.SlotPool))}
        for rank, choice in enumerate(row.choices or [], start=1):
            if not isinstance(choice, dict):
                continue
            if "pool" in choice:
                pool = all_pools.get(choice["pool"])
                label = _pool_words(pool, names) if pool else f"dispositif n° {choice['pool']}"
                view.current.append(ChoiceLine(rank, f"pool:{choice['pool']}", label))
            elif "territory" in choice:
                code = str(choice["territory"])
                label = f"Toutes les places du territoire {names.get(code, code)}"
                view.current.append(ChoiceLine(rank, f"territoire:{code}", label))
        view.expanded = [
            _pool_words(reach.pools[pid], names)
            for pid in expand_choices(row.choices or [], places)
        ]
    return view


def choices_summary(session: Session, user: m.StaffUser, referral_id: int) -> ChoicesView:
    """The current choices only, for the small block of the case page (no access-log row:
    the case page that loads it already wrote one; it shows no identity)."""
    ref = session.get(m.Referral, referral_id)
    if ref is None:
        raise NotFound("orientation introuvable")
    _check_reader(user, ref)
    person = session.get(m.Salarie, ref.salarie_id)
    assert person is not None
    names = dict(session.execute(select(m.Territory.code, m.Territory.name)).all())
    waiting = ref.state in RECORD_STATES
    view = ChoicesView(
        referral=ref,
        reference=person.reference,
        territory_name=None,
        version=choices_version(session, ref.id),
        can_record=waiting and user.role in RECORDER_ROLES and person.anonymised_at is None,
        waiting=waiting,
        read_by_run=ref.state in RUN_STATES,
    )
    row = _row(session, ref.id)
    if row is None:
        return view
    view.recorded_at = row.recorded_at
    ids = [c["pool"] for c in row.choices or [] if isinstance(c, dict) and "pool" in c]
    pools = {
        p.id: p
        for p in session.scalars(
            select(m.SlotPool).where(m.SlotPool.id.in_([i for i in ids if isinstance(i, int)]))
        )
    }
    for rank, choice in enumerate(row.choices or [], start=1):
        if isinstance(choice, dict) and "pool" in choice:
            pool = pools.get(choice["pool"])
            label = _pool_words(pool, names) if pool else f"dispositif n° {choice['pool']}"
            view.current.append(ChoiceLine(rank, f"pool:{choice['pool']}", label))
        elif isinstance(choice, dict) and "territory" in choice:
            code = str(choice["territory"])
            label = f"Toutes les places du territoire {names.get(code, code)}"
            view.current.append(ChoiceLine(rank, f"territoire:{code}", label))
    return view


# --- what the allocation run reads -----------------------------------------------------------


def preferences_for_run(
    session: Session,
    referral_ids: Iterable[int],
    pool_names: Mapping[int, str],
    pool_territory: Mapping[int, str | None],
) -> dict[str, tuple[str, ...]]:
    """Candidate id (``str(referral id)``) -> the pool *names* they accept, most preferred
    first, for one run's snapshot.

    ``pool_names``: pool id -> the solver's name of every pool of the run; ``pool_territory``:
    pool id -> its home territory code (None when it has none). A territory choice stands for
    the run's pools whose home is that territory or whose scope names it, in pool-id order;
    a pool chosen twice (directly and through its territory) counts at its first place.

    A referral absent from the result accepts any pool ("any": no row, or not waitlisted —
    a pending proposal is pinned and choices never move it). A present one with an empty
    tuple stated choices of which none is among this run's pools: it accepts nothing in this
    run. The names may include pools the person has no option for (a rule they fail today):
    the run intersects with the options. Two queries, whatever the number of candidates."""
    wanted = {int(r) for r in referral_ids}
    if not wanted:
        return {}
    P, R = m.AllocationPreference, m.Referral
    # The rows of waiting referrals are few (only people who stated choices): read them all
    # in one query and keep the run's, rather than an IN list of 50,000 ids.
    rows: list[tuple[int, Any]] = [
        (rid, choices)
        for rid, choices in session.execute(
            select(P.referral_id, P.choices)
            .join(R, R.id == P.referral_id)
            .where(R.state.in_(RUN_STATES))
            .order_by(P.referral_id)
        ).all()
        if rid in wanted
    ]
    if not rows:
        return {}
    scopes: dict[int, list[Any] | None] = {
        pid: scope for pid, scope in session.execute(select(m.SlotPool.id, m.SlotPool.scope))
    }
    index = PoolIndex(
        PoolPlace(pid, pool_territory.get(pid), _scope(scopes.get(pid))) for pid in pool_names
    )
    return {
        str(rid): tuple(pool_names[pid] for pid in expand_choices(choices or [], index))
        for rid, choices in rows
    }


# --- mechanisms per family of pools ---------------------------------------------------------


def mechanism_by_offer(session: Session) -> dict[int, str]:
    """Offer id -> its mechanism ("optimal" | "stable"), for every offer that has a pool:
    the pools of one offer form a family allocated one way."""
    return {
        oid: mech or DEFAULT_MECHANISM
        for oid, mech in session.execute(
            select(m.Offer.id, m.Offer.allocation_mechanism).where(
                m.Offer.id.in_(select(m.SlotPool.offer_id).distinct())
            )
        ).all()
    }


def set_mechanism(
    session: Session,
    offer_id: int,
    mechanism: str,
    *,
    actor: Actor,
    clock: Clock,
    expected: str | None = None,
) -> m.Offer:
    """Choose how a family of pools is allocated (the national team only), with its audit
    row. ``expected``: the mechanism the page showed (a StaleMechanism when another admin
    changed it meanwhile). Choosing the current one writes nothing."""
    user = actor.user
    if user is not None and user.role != "national_admin":
        if can(user, "review_allocation"):
            raise Forbidden("le mécanisme d'attribution se choisit par l'équipe nationale")
        raise NotFound("offre introuvable")
    offer = dialect.get_locked(session, m.Offer, offer_id)
    if offer is None:
        raise NotFound("offre introuvable")
    has_pool = session.scalar(select(m.SlotPool.id).where(m.SlotPool.offer_id == offer.id))
    if not offer.slot_based and has_pool is None:
        raise Refused(f"« {offer.name[:80]} » n'a pas de places comptées")
    if mechanism not in ALLOCATION_MECHANISMS:
        raise Refused(f"mécanisme inconnu « {str(mechanism)[:20]} » (attendus : optimal, stable)")
    current = offer.allocation_mechanism or DEFAULT_MECHANISM
    if expected is not None and expected != current:
        raise StaleMechanism(current)
    if mechanism == current:
        return offer
    offer.allocation_mechanism = mechanism
    session.add(
        m.AuditLog(
            actor_user_id=user.id if user else None,
            actor_label=actor.label[:80],
            action=MECHANISM_AUDIT_ACTION,
            object_type="offer",
            object_id=str(offer.id),
            at=clock.now(),
            details={"from": current, "to": mechanism},
        )
    )
    return offer


@dataclass
class MechanismFamily:
    """A family of pools (one offer's) with its mechanism, as the national page shows it."""

    offer_id: int
    offer: str
    partner: str
    mechanism: str
    pools: list[str]
    capacity: str  # "3 logements"
    commission: bool  # some pool is given through a commission's shortlist


def mechanism_families(session: Session, user: m.StaffUser) -> list[MechanismFamily]:
    """Every slot-based offer with its pools and mechanism (national team and coordination;
    NotFound for the others)."""
    if not can(user, "review_allocation"):
        raise NotFound("page introuvable")
    names = dict(session.execute(select(m.Territory.code, m.Territory.name)).all())
    pools_of: dict[int, list[m.SlotPool]] = {}
    for p in session.scalars(select(m.SlotPool).order_by(m.SlotPool.id)):
        pools_of.setdefault(p.offer_id, []).append(p)
    offers = session.execute(
        select(m.Offer, m.Partner.name)
        .join(m.Partner, m.Partner.id == m.Offer.partner_id)
        .where(or_(m.Offer.slot_based, m.Offer.id.in_(list(pools_of))))
        .order_by(m.Partner.name, m.Offer.name, m.Offer.id)
    ).all()
    out = []
    for offer, partner in offers:
        pools = pools_of.get(offer.id, [])
        kind = offer.unit_kind or (pools[0].unit_kind if pools else None)
        out.append(
            MechanismFamily(
                offer_id=offer.id,
                offer=offer.name,
                partner=partner,
                mechanism=offer.allocation_mechanism or DEFAULT_MECHANISM,
                pools=[_pool_words(p, names) for p in pools],
                capacity=unit_count(sum(p.capacity for p in pools), kind),
                commission=any(p.commission for p in pools),
            )
        )
    return out
