"""The case file of one referral, narrowed to what the reader's role may see.

Why here and not in the page: reading a case file always writes its access-log row (through
``engine.access.log``) — the caller cannot forget it. The story is told here too, in French
words a reader understands — each event as an action with its target ("Orientée vers …",
"Transférée à Marie Dupont (chargé·e logement, Paris)"), each actor by name and role or, for
a flow, by what it does, each routing reason as a sentence — so no page ever shows a code, an
e-mail address or an internal id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from engine.access.log import record_read
from engine.access.permissions import can, referral_scope
from engine.domain.labels import (
    ACTION_LABELS,
    CONFIRM_LABELS,
    EVENT_LABELS,
    OUTCOME_LABELS,
    REFUSAL_LABELS,
    ROUTING_REASON_DEFAULT,
    ROUTING_REASON_LABELS,
    SYSTEM_ACTOR_DEFAULT,
    SYSTEM_ACTOR_LABELS,
    domain_in_sentence,
)
from engine.domain.lifecycle import BY_ACTION, OPEN_STATES, RELEASE_ON, Transition, allowed_actions
from engine.referrals.notes import list_notes, pending_reorientation_requests
from engine.referrals.queue import like_escape
from engine.store import models as m
from partners.taxonomy import THEMATIQUES, Thematique

# Actions that end an orientation for good or hand it away: the case page asks for a
# confirmation (a second submit carrying ``confirm=1``) before applying them.
DESTRUCTIVE_ACTIONS = frozenset(CONFIRM_LABELS)


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class TimelineEntry:
    """One event of the orientation, in words: what happened, who did it, with what note."""

    at: datetime
    action: str
    title: str  # "Prise en charge", "Refusée : personne injoignable"
    actor: str  # "Marie Dupont (chargé·e logement, Paris)" or a flow in words, never an e-mail
    automatic: bool = False  # a flow acted (the actor reads as a sentence, not "par …")
    note: str | None = None
    link: Link | None = None


@dataclass(frozen=True)
class ReasonLine:
    """One routing reason as a French sentence (with a link to a readable orientation)."""

    text: str
    link: Link | None = None


@dataclass(frozen=True)
class Confirmation:
    """The confirmation step of a destructive action: heading, consequences, button."""

    action: str
    heading: str
    consequences: list[str]
    button: str


@dataclass
class CaseFile:
    """Everything the case view shows, already narrowed to what the role may see."""

    referral: m.Referral
    salarie: m.Salarie
    identity: m.SalarieIdentity | None
    chantier: m.Chantier
    territory: m.Territory | None
    offer: m.Offer | None
    partner: m.Partner | None
    minimal: bool  # partner contacts see only the pseudonymous reference and the need
    freins: list[m.Frein] = field(default_factory=list)
    other_domain_freins: int = 0  # freins a chargé·e of another domain does not see
    referrals: list[m.Referral] = field(default_factory=list)
    events: list[m.ReferralEvent] = field(default_factory=list)
    actions: list[Transition] = field(default_factory=list)
    suggestions: list[tuple[m.Offer, int, int]] = field(default_factory=list)
    offers: list[m.Offer] = field(default_factory=list)  # any offer covering the territory
    # Imported services (data·inclusion) without a public address: mobilised by other means.
    manual: list[m.Offer] = field(default_factory=list)
    pools: list[m.SlotPool] = field(default_factory=list)
    transfer_targets: list[m.StaffUser] = field(default_factory=list)
    open_proposal: m.AllocationProposal | None = None
    can_flag_health_urgency: bool = False  # santé chargé·e or coordination, not yet flagged
    timeline: list[TimelineEntry] = field(default_factory=list)
    routing_reasons: list[ReasonLine] = field(default_factory=list)
    explanation: str = ""
    transferred_to: str | None = None  # "Transférée à Marie Dupont (chargé·e logement, Paris)"
    transferred_to_link: Link | None = None  # the new orientation, when the reader may read it
    waitlist_unavailable: bool = False  # the action exists in this state but no pool fits
    notes: list[m.CaseNote] = field(default_factory=list)
    note_authors: dict[int, str] = field(default_factory=dict)  # note id -> name (role)
    pending_requests: list[m.CaseNote] = field(default_factory=list)
    can_add_note: bool = False
    can_request_reorientation: bool = False
    can_add_frein: bool = False
    frein_choices: list[tuple[str, list[Thematique]]] = field(default_factory=list)


# Actions done elsewhere than on the case page (the allocation review page).
_ELSEWHERE = frozenset({"validate", "decline_proposal"})


def read_case_file(
    session: Session,
    user: m.StaffUser,
    referral_id: int,
    *,
    now: datetime,
    purpose: str = "consultation",
) -> CaseFile | None:
    """The case file of one referral, or None when missing or out of scope (→ 404).

    Writes one access-log row per read (who, which person, when, why, with identity or not);
    the caller's unit of work commits it with the read.
    """
    ref = session.get(m.Referral, referral_id)
    if ref is None or not can(user, "read", ref):
        return None
    salarie = session.get(m.Salarie, ref.salarie_id)
    assert salarie is not None
    chantier = session.get(m.Chantier, ref.chantier_id)
    assert chantier is not None
    territory = session.get(m.Territory, ref.territory_id) if ref.territory_id else None
    offer = session.get(m.Offer, ref.offer_id) if ref.offer_id else None
    partner = session.get(m.Partner, offer.partner_id) if offer else None
    minimal = user.role == "partner_contact"
    with_identity = (not minimal) and can(user, "read_identity", ref)
    identity = session.get(m.SalarieIdentity, salarie.id) if with_identity else None
    record_read(
        session, user, salarie.id, at=now, purpose=purpose, with_identity=identity is not None
    )
    case = CaseFile(
        referral=ref,
        salarie=salarie,
        identity=identity,
        chantier=chantier,
        territory=territory,
        offer=offer,
        partner=partner,
        minimal=minimal,
    )
    case.actions = [
        t
        for t in allowed_actions(ref.state)
        if t.action not in _ELSEWHERE and can(user, t.action, ref)
    ]
    if minimal:
        return case
    case.can_flag_health_urgency = (
        ref.state in OPEN_STATES
        and not salarie.health_urgency
        and can(user, "flag_health_urgency", ref)
    )
    _load_history(session, user, case)
    if case.actions:
        _load_action_choices(session, case)
        if not case.pools and any(t.action == "waitlist" for t in case.actions):
            # No pool to wait for: the form could not be sent; say why instead.
            case.actions = [t for t in case.actions if t.action != "waitlist"]
            case.waitlist_unavailable = True
    _load_story(session, user, case)
    _load_notes(session, user, case)
    return case


def _load_history(session: Session, user: m.StaffUser, case: CaseFile) -> None:
    """The person's freins (those of the reader's domain for a chargé·e), their referrals in
    the reader's scope, this referral's events and its open proposal."""
    ref, salarie = case.referral, case.salarie
    freins = list(
        session.scalars(
            select(m.Frein).where(m.Frein.salarie_id == salarie.id).order_by(m.Frein.id)
        )
    )
    # Need to know: a chargé·e sees the freins of their own domain (and transverse ones);
    # the others (a health frein for the housing officer) are only counted.
    if user.role == "officer":
        case.freins = [f for f in freins if f.domain in (user.domain, "transverse")]
        case.other_domain_freins = len(freins) - len(case.freins)
    else:
        case.freins = freins
    case.referrals = list(
        session.scalars(
            select(m.Referral)
            .where(m.Referral.salarie_id == salarie.id, referral_scope(user))
            .order_by(m.Referral.id)
        )
    )
    case.events = list(
        session.scalars(
            select(m.ReferralEvent)
            .where(m.ReferralEvent.referral_id == ref.id)
            .order_by(m.ReferralEvent.at, m.ReferralEvent.id)
        )
    )
    case.open_proposal = session.scalar(
        select(m.AllocationProposal).where(
            m.AllocationProposal.referral_id == ref.id, m.AllocationProposal.status == "proposed"
        )
    )


MAX_OTHER_OFFERS = 300  # "Autres offres": the catalogue and the frein's imported services


def _load_action_choices(session: Session, case: CaseFile) -> None:
    """Offers, pools and people the action forms let the user choose from."""
    ref = case.referral
    by_id = {
        o.id: o
        for o in session.scalars(
            select(m.Offer).where(m.Offer.id.in_([int(s[0]) for s in ref.suggestions or []]))
        )
    }
    case.suggestions = [
        (by_id[int(s[0])], int(s[1]), int(s[2]))
        for s in ref.suggestions or []
        if int(s[0]) in by_id
    ]
    code = case.territory.code if case.territory else None
    # The network's catalogue, and of the national referential's services (tens of thousands)
    # only those of the frein's category that cover the territory, not withdrawn: the list
    # stays a list a person reads, and the page a few milliseconds.
    S = m.ImportedService
    category = ref.thematique.split("--")[0]
    imported = and_(
        S.withdrawn_at.is_(None),
        S.thematiques.like(f"%|{like_escape(category)}%", escape="\\"),
        or_(S.territories == "*", S.territories.like(f"%|{like_escape(code or '')}|%", escape="\\"))
        if code
        else S.territories == "*",
    )
    offers = session.execute(
        select(m.Offer, m.Partner, S.id)
        .join(m.Partner, m.Partner.id == m.Offer.partner_id)
        .outerjoin(S, S.offer_id == m.Offer.id)
        .where(or_(S.id.is_(None), imported))
        .order_by(m.Partner.name, m.Offer.name)
        .limit(MAX_OTHER_OFFERS)
    ).all()
    case.offers = [
        o
        for o, p, _ in offers
        if p.coverage is None or (code is not None and code in (p.coverage or []))
    ]
    # Imported services no one can be mailed at: oriented by phone, link or walk-in instead.
    from engine.outbox.messages import partner_recipients

    shown = {o.id: o for o in case.offers} | {o.id: o for o, _, _ in case.suggestions}
    imported_ids = set(session.scalars(select(S.offer_id).where(S.offer_id.in_(list(shown)))))
    case.manual = [
        shown[i] for i in sorted(imported_ids) if not partner_recipients(session, shown[i].partner)
    ]
    offer_ids = {o.id for o, _, _ in case.suggestions} | ({ref.offer_id} if ref.offer_id else set())
    pools = session.scalars(
        select(m.SlotPool).where(m.SlotPool.offer_id.in_(offer_ids)).order_by(m.SlotPool.name)
    ).all()
    case.pools = [p for p in pools if p.scope is None or (code is not None and code in p.scope)]
    targets = select(m.StaffUser).where(
        m.StaffUser.active,
        m.StaffUser.role.in_(("officer", "coordinator")),
        m.StaffUser.territory_id == ref.territory_id
        if ref.territory_id
        else m.StaffUser.national_queue,
    )
    case.transfer_targets = list(
        session.scalars(targets.order_by(m.StaffUser.role, m.StaffUser.display_name))
    )


# --- the story in words: timeline, routing reasons, transfer --------------------------------


class _People:
    """Staff users, territories, chantiers and partners by id, read once per page and
    described in words ("Marie Dupont (chargé·e logement, Paris)"); never an e-mail."""

    def __init__(self, session: Session, user_ids: set[int]) -> None:
        self.session = session
        ids = {i for i in user_ids if isinstance(i, int)}
        self.users = {
            u.id: u for u in session.scalars(select(m.StaffUser).where(m.StaffUser.id.in_(ids)))
        }
        self._names: dict[tuple[str, int], str | None] = {}

    def _name_of(
        self, model: type[m.Territory] | type[m.Chantier] | type[m.Partner], key: int | None
    ) -> str | None:
        if key is None:
            return None
        cache_key = (model.__tablename__, key)
        if cache_key not in self._names:
            name = self.session.scalar(select(model.name).where(model.id == key))
            self._names[cache_key] = str(name) if name is not None else None
        return self._names[cache_key]

    def role_of(self, u: m.StaffUser) -> str:
        if u.role == "officer":
            where = self._name_of(m.Territory, u.territory_id)
            what = f"chargé·e {domain_in_sentence(u.domain or '')}".strip()
            return f"{what}, {where}" if where else what
        if u.role == "coordinator":
            if u.national_queue:
                return "coordination nationale"
            where = self._name_of(m.Territory, u.territory_id)
            return f"coordination, {where}" if where else "coordination"
        if u.role == "cip":
            where = self._name_of(m.Chantier, u.chantier_id)
            return f"CIP / ESP, {where}" if where else "CIP / ESP"
        if u.role == "partner_contact":
            where = self._name_of(m.Partner, u.partner_id)
            return f"contact partenaire, {where}" if where else "contact partenaire"
        return "administration nationale"

    def describe(self, user_id: Any) -> str | None:
        u = self.users.get(user_id) if isinstance(user_id, int) else None
        return f"{u.display_name} ({self.role_of(u)})" if u is not None else None


def actor_in_words(people: _People, actor_user_id: int | None, label: str) -> str:
    """Who did it: the person and their role, a partner through its link, or a flow in words."""
    described = people.describe(actor_user_id)
    if described:
        return described
    label = label or ""
    if label.startswith("système : "):
        return SYSTEM_ACTOR_LABELS.get(label.removeprefix("système : "), SYSTEM_ACTOR_DEFAULT)
    if label.startswith("partenaire : "):  # Actor.partner_link: "partenaire : X (lien signé)"
        name = label.removeprefix("partenaire : ").removesuffix(" (lien signé)").strip()
        return f"{name} (partenaire, depuis son lien sécurisé)"
    if not label.strip() or "@" in label:
        return "Une personne de l'équipe"
    return label  # a display name kept on the event


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _offer_words(session: Session, offer_id: Any) -> str | None:
    offer = session.get(m.Offer, offer_id) if isinstance(offer_id, int) else None
    if offer is None:
        return None
    partner = session.get(m.Partner, offer.partner_id)
    return f"{partner.name} — {offer.name}" if partner else offer.name


def _pool_words(session: Session, pool_id: Any) -> str | None:
    pool = session.get(m.SlotPool, pool_id) if isinstance(pool_id, int) else None
    return pool.name if pool is not None else None


def _referral_link(
    session: Session, user: m.StaffUser, referral_id: Any, label: str
) -> Link | None:
    other = session.get(m.Referral, referral_id) if isinstance(referral_id, int) else None
    if other is None or not can(user, "read", other):
        return None
    return Link(label, f"/orientations/{other.id}")


_TRANSFERRED_PREFIX = re.compile(r"^Transférée depuis l'orientation n° \d+\. ")


def _load_story(session: Session, user: m.StaffUser, case: CaseFile) -> None:
    """The timeline, the routing reasons and the transfer, in words with names (no codes,
    no e-mail addresses, no internal ids)."""
    ref = case.referral
    successor = session.scalar(
        select(m.Referral).where(m.Referral.transferred_from_id == ref.id).order_by(m.Referral.id)
    )
    reasons = [r for r in ref.reasons or [] if isinstance(r, dict)]
    ids: set[int] = {e.actor_user_id for e in case.events if e.actor_user_id is not None}
    for r in reasons:
        ids |= {r.get(k) for k in ("officer", "previous", "coordinator", "national_user")}  # type: ignore[misc]
    if successor is not None and successor.owner_user_id is not None:
        ids.add(successor.owner_user_id)
    people = _People(session, ids)
    case.explanation = _TRANSFERRED_PREFIX.sub("", ref.explanation or "")
    case.routing_reasons = [_reason_line(session, user, people, r) for r in reasons]
    case.routing_reasons += [ReasonLine(r) for r in ref.reasons or [] if isinstance(r, str)]
    if ref.state == "transferred" and successor is not None:
        case.transferred_to = "Transférée " + _transfer_target(session, people, ref, successor)
        case.transferred_to_link = _referral_link(
            session, user, successor.id, "Voir la nouvelle orientation"
        )
    case.timeline = _timeline(session, user, people, case, successor, reasons)


def _reason_line(
    session: Session, user: m.StaffUser, people: _People, reason: dict[str, Any]
) -> ReasonLine:
    code = reason.get("code")
    template = ROUTING_REASON_LABELS.get(code) if isinstance(code, str) else None
    if template is None:
        return ReasonLine(ROUTING_REASON_DEFAULT)
    someone = "une personne chargée de partenariats"
    values = {
        "officer": people.describe(reason.get("officer")) or someone,
        "previous": people.describe(reason.get("previous")) or "La personne qui la suivait",
        "load": reason.get("load", "?"),
        "cap": reason.get("cap", "?"),
        "previous_load": reason.get("previous_load", "?"),
        "previous_cap": reason.get("previous_cap", "?"),
        "offer": _offer_words(session, reason.get("offer")) or "un partenaire",
        "target": "la coordination territoriale"
        if reason.get("coordinator") is not None
        else "la file nationale",
    }
    text = template.format(**values)
    text = text[:1].upper() + text[1:]
    link = None
    if code == "transferred":
        link = _referral_link(
            session, user, reason.get("from_referral"), "Voir l'orientation d'origine"
        )
    return ReasonLine(text, link)


def _transfer_target(
    session: Session, people: _People, ref: m.Referral, successor: m.Referral
) -> str:
    """ "à Marie Dupont (chargé·e logement, Paris)", "vers Partenaire — Offre", or both."""
    parts = []
    to_offer = successor.offer_id is not None and successor.offer_id != ref.offer_id
    if successor.owner_user_id != ref.owner_user_id or not to_offer:
        parts.append("à " + (people.describe(successor.owner_user_id) or "une autre personne"))
    if to_offer:
        parts.append("vers " + (_offer_words(session, successor.offer_id) or "un partenaire"))
    return ", ".join(parts)


def _timeline(
    session: Session,
    user: m.StaffUser,
    people: _People,
    case: CaseFile,
    successor: m.Referral | None,
    reasons: list[dict[str, Any]],
) -> list[TimelineEntry]:
    ref, events = case.referral, case.events
    actions = [e.action for e in events]
    # The offer of a "refer" and the pool of a "waitlist" are the referral's current ones
    # unless a later step changed them (a waitlist after the referral, a proposal).
    proposals = list(
        session.scalars(
            select(m.AllocationProposal)
            .where(m.AllocationProposal.referral_id == ref.id)
            .order_by(m.AllocationProposal.id)
        )
    )
    proposal_pools = iter([p.pool_id for p in proposals])
    validated_pool = next((p.pool_id for p in proposals if p.status == "validated"), None)
    out: list[TimelineEntry] = []
    for i, e in enumerate(events):
        later = actions[i + 1 :]
        title = EVENT_LABELS.get(e.action) or ACTION_LABELS.get(e.action)
        if title is None:
            t = BY_ACTION.get(e.action)
            title = t.label if t else "Action enregistrée"
        note, link = e.note, None
        if e.action == "route":
            first = reasons[0] if reasons else {}
            owner = people.describe(
                first.get("officer") or first.get("coordinator") or first.get("national_user")
            )
            if e.to_state == "referred":
                offer = _offer_words(session, first.get("offer") or ref.offer_id)
                title = "Orientation créée et envoyée directement " + (
                    f"à {offer}" if offer else "au partenaire"
                )
            elif owner:
                title = f"Orientation créée et confiée à {owner}"
        elif e.action == "refer" and not {"waitlist", "propose"} & set(later):
            offer = _offer_words(session, ref.offer_id)
            title = f"Orientée vers {offer}" if offer else title
        elif e.action == "waitlist" and "propose" not in later:
            pool = _pool_words(session, ref.pool_id)
            title = f"{title} : {pool}" if pool else title
        elif e.action == "propose":
            pool = _pool_words(session, next(proposal_pools, None))
            title = f"{title} : {pool}" if pool else title
        elif e.action == "validate":
            pool = _pool_words(session, validated_pool)
            title = f"{title} : {pool}" if pool else title
        elif e.action == "close" and e.reason in OUTCOME_LABELS:
            title = f"{title} : {_lower_first(OUTCOME_LABELS[e.reason])}"
        elif e.action == "refuse" and e.reason in REFUSAL_LABELS:
            words = "autre motif" if e.reason == "other" else _lower_first(REFUSAL_LABELS[e.reason])
            title = f"{title} : {words}"
        elif e.action == "transfer" and e.from_state is not None:
            if successor is not None:
                title = f"{title} {_transfer_target(session, people, ref, successor)}"
                link = _referral_link(session, user, successor.id, "Voir la nouvelle orientation")
        elif e.action == "transfer":  # the creation of this referral from a transferred one
            title = "Reprise d'une orientation transférée"
            note = None  # "depuis l'orientation n° …": the link says it without the id
            link = _referral_link(
                session, user, ref.transferred_from_id, "Voir l'orientation d'origine"
            )
        elif e.action == "assign" and (e.note or "").startswith("attribuée à "):
            title, note = "A" + (e.note or "")[1:], None
        out.append(
            TimelineEntry(
                at=e.at,
                action=e.action,
                title=title,
                actor=actor_in_words(people, e.actor_user_id, e.actor_label),
                automatic=e.actor_user_id is None and e.actor_label.startswith("système : "),
                note=note,
                link=link,
            )
        )
    return out


# --- notes and the CIP/ESP's actions ------------------------------------------------------


def _load_notes(session: Session, user: m.StaffUser, case: CaseFile) -> None:
    ref = case.referral
    case.notes = list_notes(session, user, ref)
    case.pending_requests = pending_reorientation_requests(case.notes, ref)
    people = _People(session, {n.author_user_id for n in case.notes})
    case.note_authors = {
        n.id: people.describe(n.author_user_id) or n.author_name for n in case.notes
    }
    case.can_add_note = can(user, "add_note", ref)
    case.can_request_reorientation = ref.state in OPEN_STATES and can(
        user, "request_reorientation", ref
    )
    case.can_add_frein = case.salarie.exit_date is None and can(user, "add_frein", case.salarie)
    if case.can_add_frein:
        known = {f.thematique for f in case.freins}
        groups: dict[str, list[Thematique]] = {}
        for t in THEMATIQUES.values():
            if t.slug not in known:
                groups.setdefault(THEMATIQUES[t.category].label, []).append(t)
        case.frein_choices = list(groups.items())


def confirmation(
    session: Session, case: CaseFile, action: str, form: dict[str, str]
) -> Confirmation:
    """What a destructive action will do, said before it is done (the confirmation step)."""
    heading, button = CONFIRM_LABELS[action]
    ref = case.referral
    lines: list[str] = []
    if action == "cancel":
        lines.append(
            "L'orientation sera annulée : elle quittera les files et ne pourra plus être reprise."
        )
    elif action == "refuse":
        reason = REFUSAL_LABELS.get(form.get("reason", ""), "")
        lines.append(
            f"L'orientation sera refusée avec le motif « {reason} » : elle quittera les files "
            "et ne pourra plus être reprise."
        )
    elif action == "close":
        outcome = OUTCOME_LABELS.get(form.get("outcome", ""), "")
        lines.append(
            f"L'orientation sera clôturée avec le résultat « {outcome} » : elle ne pourra plus "
            "être modifiée."
        )
    elif action == "transfer":
        owner_id = _form_id(form.get("new_owner_id"))
        offer_id = _form_id(form.get("offer_id"))
        people = _People(session, {owner_id} if owner_id else set())
        owner = people.describe(owner_id)
        offer = _offer_words(session, offer_id)
        target = " et ".join(
            w for w in (f"à {owner}" if owner else "", f"vers {offer}" if offer else "") if w
        )
        lines.append(
            f"Cette orientation sera close et une nouvelle orientation sera ouverte {target} "
            "(elle apparaîtra dans la file correspondante)."
        )
    if action in RELEASE_ON and ref.pool_id is not None and ref.state != "in_progress":
        lines.append("Une place réservée pour cette orientation sera libérée.")
    if ref.state == "proposed":
        lines.append("La place proposée par l'attribution sera déclinée.")
    lines.append("Rien n'a encore été enregistré : confirmez pour appliquer cette action.")
    return Confirmation(action, heading, lines, button)


def _form_id(value: str | None) -> int | None:
    try:
        number = int(str(value or "").strip())
    except ValueError:
        return None
    return number if 0 < number <= m.MAX_ID else None
