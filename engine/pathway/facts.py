"""Recording pathway facts: orienté par, housing changes, health-rights events, exit, follow-ups.

Why use cases of their own: the CIP/ESP (or the coordination) records what happened to the
person on their page; each fact is checked (dates within the pathway and not in the future,
codes from the vocabularies), written with an audit row in the caller's transaction, and an
exit ends the person's open orientations through the transition door ("personne sortie du
programme"), so no referral outlives the pathway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access.permissions import can_record_pathway
from engine.domain.clock import Clock
from engine.domain.errors import ANONYMISED, NotFound, Refused
from engine.domain.lifecycle import OPEN_STATES
from engine.domain.vocabulary import (
    EXIT_CATEGORIES,
    FOLLOWUP_MONTHS,
    HEALTH_EVENT_KINDS,
    HOUSING,
    REFERRED_BY,
)
from engine.referrals.transitions import Actor, apply_transition
from engine.store import models as m
from engine.store.settings import Settings

EXIT_NOTE = "personne sortie du programme"


@dataclass(frozen=True)
class Recorder:
    """Who records: a staff user, or a flow (the simulation, an import) with a label."""

    user: m.StaffUser | None
    label: str

    @classmethod
    def of(cls, user: m.StaffUser) -> Recorder:
        return cls(user, user.display_name[:80])

    @classmethod
    def system(cls, label: str) -> Recorder:
        return cls(None, f"système : {label}"[:80])


def _person(session: Session, recorder: Recorder, salarie_id: int) -> m.Salarie:
    person = session.get(m.Salarie, salarie_id)
    if person is None or (
        recorder.user is not None and not can_record_pathway(session, recorder.user, person)
    ):
        raise NotFound("salarié·e introuvable")
    if person.anonymised_at is not None:  # engine.retention: a skeleton for the statistics
        raise Refused(ANONYMISED)
    return person


def _within_pathway(person: m.Salarie, day: date, clock: Clock, what: str) -> None:
    if day > clock.today():
        raise Refused(f"{what} : la date ne peut pas être dans le futur")
    if day < person.entry_date:
        raise Refused(f"{what} : la date précède l'entrée dans le programme")
    if person.exit_date is not None and day > person.exit_date and what != "suivi":
        raise Refused(f"{what} : la date suit la sortie du programme")


def _audit(
    session: Session, recorder: Recorder, action: str, person: m.Salarie, clock: Clock, **details
) -> None:  # type: ignore[no-untyped-def]
    session.add(
        m.AuditLog(
            actor_user_id=recorder.user.id if recorder.user else None,
            actor_label=recorder.label,
            action=action,
            object_type="salarie",
            object_id=str(person.id),
            at=clock.now(),
            details=details,
        )
    )


def set_referred_by(
    session: Session, recorder: Recorder, salarie_id: int, referred_by: str, *, clock: Clock
) -> m.Salarie:
    """How the person came to the programme (SIAO/115, maraude, France Travail, CCAS, other)."""
    if referred_by not in REFERRED_BY:
        raise Refused("orienté par : valeur inconnue")
    person = _person(session, recorder, salarie_id)
    before = person.referred_by
    person.referred_by = referred_by
    _audit(session, recorder, "set_referred_by", person, clock, before=before, after=referred_by)
    return person


def record_housing_change(
    session: Session,
    recorder: Recorder,
    salarie_id: int,
    *,
    on: date,
    after: str,
    clock: Clock,
) -> m.HousingChange:
    """The person's housing situation changed on ``on``: a dated row, and the current value."""
    if after not in HOUSING:
        raise Refused("situation de logement : valeur inconnue")
    person = _person(session, recorder, salarie_id)
    _within_pathway(person, on, clock, "changement de logement")
    if person.housing == after:
        raise Refused("situation de logement : c'est déjà la situation actuelle")
    latest = session.scalar(
        select(m.HousingChange.on)
        .where(m.HousingChange.salarie_id == person.id)
        .order_by(m.HousingChange.on.desc())
        .limit(1)
    )
    if latest is not None and on < latest:
        raise Refused("changement de logement : un changement plus récent est déjà enregistré")
    change = m.HousingChange(
        salarie_id=person.id,
        on=on,
        before=person.housing,
        after=after,
        recorded_by=recorder.user.id if recorder.user else None,
        created_at=clock.now(),
    )
    session.add(change)
    person.housing = after
    _audit(session, recorder, "record_housing_change", person, clock, on=on.isoformat())
    return change


def record_health_event(
    session: Session,
    recorder: Recorder,
    salarie_id: int,
    *,
    on: date,
    kind: str,
    clock: Clock,
) -> m.HealthEvent:
    """Rights opened, coverage improved or a care pathway entered, on ``on``."""
    if kind not in HEALTH_EVENT_KINDS:
        raise Refused("événement santé : valeur inconnue")
    person = _person(session, recorder, salarie_id)
    _within_pathway(person, on, clock, "événement santé")
    dup = session.scalar(
        select(m.HealthEvent.id).where(
            m.HealthEvent.salarie_id == person.id,
            m.HealthEvent.kind == kind,
            m.HealthEvent.on == on,
        )
    )
    if dup is not None:
        raise Refused("événement santé : déjà enregistré à cette date")
    event = m.HealthEvent(
        salarie_id=person.id,
        on=on,
        kind=kind,
        recorded_by=recorder.user.id if recorder.user else None,
        created_at=clock.now(),
    )
    session.add(event)
    _audit(session, recorder, "record_health_event", person, clock, kind=kind)
    return event


def record_exit(
    session: Session,
    settings: Settings,
    recorder: Recorder,
    salarie_id: int,
    *,
    on: date,
    category: str,
    clock: Clock,
) -> int:
    """The person left the programme on ``on`` with an IAE exit category. Their open
    orientations are cancelled through the door and their open freins dropped; returns the
    number of orientations cancelled."""
    if category not in EXIT_CATEGORIES:
        raise Refused("catégorie de sortie : valeur inconnue")
    person = _person(session, recorder, salarie_id)
    if person.exit_date is not None:
        raise Refused("la sortie de cette personne est déjà enregistrée")
    _within_pathway(person, on, clock, "sortie")
    person.exit_date = on
    person.exit_category = category
    open_refs = session.scalars(
        select(m.Referral)
        .where(m.Referral.salarie_id == person.id, m.Referral.state.in_(OPEN_STATES))
        .order_by(m.Referral.id)
    ).all()
    actor = Actor.system(EXIT_NOTE)
    for ref in open_refs:
        apply_transition(session, settings, ref, "cancel", actor=actor, clock=clock, note=EXIT_NOTE)
    for frein in session.scalars(
        select(m.Frein).where(m.Frein.salarie_id == person.id, m.Frein.status == "open")
    ).all():
        frein.status = "dropped"
    _audit(
        session, recorder, "record_exit", person, clock, category=category, cancelled=len(open_refs)
    )
    return len(open_refs)


def record_follow_up(
    session: Session,
    recorder: Recorder,
    salarie_id: int,
    *,
    months: int,
    situation: str,
    housed: bool | None,
    clock: Clock,
) -> m.FollowUp:
    """The CVG follow-up ``months`` after exit: the person's situation then (once each)."""
    if months not in FOLLOWUP_MONTHS:
        raise Refused("suivi : 3, 6 ou 12 mois après la sortie")
    if situation not in EXIT_CATEGORIES:
        raise Refused("situation au suivi : valeur inconnue")
    person = _person(session, recorder, salarie_id)
    if person.programme != "cvg" or person.exit_date is None:
        raise Refused("suivi : réservé aux salarié·es CVG sorti·es du programme")
    done = session.scalar(
        select(m.FollowUp.id).where(m.FollowUp.salarie_id == person.id, m.FollowUp.months == months)
    )
    if done is not None:
        raise Refused(f"le suivi à {months} mois est déjà enregistré")
    row = m.FollowUp(
        salarie_id=person.id,
        months=months,
        situation=situation,
        housed=housed,
        answered_on=clock.today(),
        recorded_by=recorder.user.id if recorder.user else None,
        created_at=clock.now(),
    )
    session.add(row)
    _audit(session, recorder, "record_follow_up", person, clock, months=months)
    return row
