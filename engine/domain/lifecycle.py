"""The referral lifecycle as a declarative transition table (les-emplois' model).

Why a table: every allowed move is one line that the UI, the API, the tests and the docs
read from the same place; guards (an outcome to close, a coded reason to refuse, a note for
``other``) are checked here, before anything is written, and the database repeats the
important ones as CHECK constraints.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.domain.errors import Refused

STATE_LABELS: dict[str, str] = {
    "new": "Nouvelle",
    "triaging": "En qualification",
    "referred": "Orientée",
    "waitlisted": "En attente de place",
    "proposed": "Place proposée",
    "accepted": "Acceptée",
    "in_progress": "En cours",
    "closed": "Clôturée",
    "refused": "Refusée",
    "expired": "Expirée",
    "cancelled": "Annulée",
    "transferred": "Transférée",
}
STATES: tuple[str, ...] = tuple(STATE_LABELS)
OPEN_STATES: tuple[str, ...] = (
    "new",
    "triaging",
    "referred",
    "waitlisted",
    "proposed",
    "accepted",
    "in_progress",
)
TERMINAL_STATES: tuple[str, ...] = tuple(s for s in STATES if s not in OPEN_STATES)

OUTCOME_LABELS: dict[str, str] = {
    "resolved": "Frein levé",
    "partially_resolved": "Frein partiellement levé",
    "not_resolved": "Frein non levé",
}
OUTCOMES: tuple[str, ...] = tuple(OUTCOME_LABELS)

REFUSAL_LABELS: dict[str, str] = {
    "unreachable": "Personne injoignable",
    "no_show": "Absence au rendez-vous",
    "not_eligible": "Critères d'éligibilité non remplis",
    "no_capacity": "Pas de place disponible",
    "declined_by_person": "Refus de la personne",
    "met_elsewhere": "Besoin pris en charge ailleurs",
    "incompatible_freins": "Freins incompatibles avec l'offre",
    "not_mobile": "Mobilité insuffisante",
    "duplicate": "Doublon",
    "other": "Autre (préciser)",
}
REFUSAL_REASONS: tuple[str, ...] = tuple(REFUSAL_LABELS)


@dataclass(frozen=True, slots=True)
class Transition:
    action: str
    sources: tuple[str, ...]
    target: str
    label: str  # French verb shown on buttons
    needs_outcome: bool = False
    needs_reason: bool = False
    needs_offer: bool = False
    needs_pool: bool = False
    system_only: bool = False  # performed by flows, not by a person
    # Reached only through its own use case (allocation review, flows), never through the
    # generic case action or API route: those use cases carry the proposal it decides.
    dedicated: bool = False
    # The payload fields the action takes (a note is always accepted); any other is refused.
    takes: tuple[str, ...] = ()


TRANSITIONS: tuple[Transition, ...] = (
    Transition("take", ("new",), "triaging", "Prendre en charge"),
    Transition(
        "refer",
        ("triaging",),
        "referred",
        "Orienter vers un partenaire",
        needs_offer=True,
        takes=("offer_id",),
    ),
    Transition(
        "waitlist",
        ("triaging", "referred"),
        "waitlisted",
        "Mettre en attente de place",
        needs_pool=True,
        takes=("pool_id",),
    ),
    Transition(
        "propose",
        ("waitlisted",),
        "proposed",
        "Proposer une place",
        system_only=True,
        dedicated=True,
        takes=("proposal",),
    ),
    Transition(
        "validate",
        ("proposed",),
        "accepted",
        "Valider la place proposée",
        dedicated=True,
        takes=("proposal",),
    ),
    Transition(
        "decline_proposal",
        ("proposed",),
        "waitlisted",
        "Décliner la proposition",
        dedicated=True,
        takes=("proposal",),
    ),
    Transition(
        "expire_proposal",
        ("proposed",),
        "waitlisted",
        "Proposition expirée",
        system_only=True,
        dedicated=True,
        takes=("proposal",),
    ),
    Transition("partner_accept", ("referred",), "accepted", "Accepter l'orientation"),
    Transition("start", ("accepted",), "in_progress", "Démarrer l'accompagnement"),
    Transition(
        "close",
        ("triaging", "referred", "accepted", "in_progress"),
        "closed",
        "Clôturer",
        needs_outcome=True,
        takes=("outcome",),
    ),
    Transition(
        "refuse",
        ("new", "triaging", "referred", "waitlisted", "proposed"),
        "refused",
        "Refuser",
        needs_reason=True,
        takes=("reason",),
    ),
    Transition("expire", ("referred",), "expired", "Expirer", system_only=True, dedicated=True),
    Transition("cancel", OPEN_STATES, "cancelled", "Annuler"),
    Transition(
        "transfer",
        ("new", "triaging", "referred", "waitlisted"),
        "transferred",
        "Transférer",
        takes=("new_owner_id", "offer_id"),
    ),
)
BY_ACTION: dict[str, Transition] = {t.action: t for t in TRANSITIONS}

# Events that are not state changes: the referral's creation (intake, the new referral of a
# transfer) and an owner change; every other event is a row of the table above.
CREATION_ACTIONS = frozenset({"route", "transfer"})
# Events that change no state: an owner change, a health urgency signalled on the person.
SAME_STATE_ACTIONS = frozenset({"assign", "flag_health_urgency"})
# A held slot unit is released when the referral ends before the help was delivered; once
# the help started (in_progress) or the referral is closed with an outcome, it stays consumed.
RELEASE_ON = frozenset({"cancel", "refuse", "expire", "transfer"})
HELP_DELIVERED_STATES = frozenset({"in_progress"})


def is_table_event(from_state: str | None, to_state: str, action: str) -> bool:
    """Is a stored event a row of the lifecycle (or a creation / owner change)?"""
    t = BY_ACTION.get(action)
    if from_state is None:
        return action in CREATION_ACTIONS and to_state in ("new", "referred")
    if action in SAME_STATE_ACTIONS:
        return from_state == to_state
    return t is not None and from_state in t.sources and to_state == t.target


class TransitionError(Refused):
    """A refused transition; the message is French and shown to the user as is."""


def allowed_actions(state: str, *, include_system: bool = False) -> list[Transition]:
    """Transitions available from ``state``, in table order (the UI's buttons)."""
    return [t for t in TRANSITIONS if state in t.sources and (include_system or not t.system_only)]


def check_transition(
    state: str,
    action: str,
    *,
    outcome: str | None = None,
    reason: str | None = None,
    note: str | None = None,
    offer_id: int | None = None,
    pool_id: int | None = None,
) -> Transition:
    """Return the transition for ``action`` from ``state`` or raise TransitionError (French)."""
    t = BY_ACTION.get(action)
    if t is None:
        raise TransitionError(f"action inconnue : « {action} »")
    if state not in t.sources:
        raise TransitionError(
            f"impossible de « {t.label.lower()} » une orientation à l'état "
            f"« {STATE_LABELS.get(state, state)} »"
        )
    if t.needs_outcome:
        if outcome is None:
            raise TransitionError("une orientation ne peut être clôturée sans résultat")
        if outcome not in OUTCOMES:
            raise TransitionError(f"résultat inconnu : « {outcome} »")
    if t.needs_reason:
        if reason is None:
            raise TransitionError("un refus doit indiquer un motif")
        if reason not in REFUSAL_REASONS:
            raise TransitionError(f"motif de refus inconnu : « {reason} »")
        if reason == "other" and not (note and note.strip()):
            raise TransitionError("le motif « Autre » demande une précision")
    if t.needs_offer and offer_id is None:
        raise TransitionError("choisissez l'offre du partenaire vers laquelle orienter")
    if t.needs_pool and pool_id is None:
        raise TransitionError("choisissez le dispositif dont la place est attendue")
    return t
