"""The person's pathway file, narrowed to the reader: what the "Parcours" page shows.

Why here: reading it is reading a case file, so it always writes its access-log row (who,
which person, when, why); and who may record a fact on it is decided by the same rule as the
use cases that record them (``can_record_pathway``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access.log import record_read
from engine.access.permissions import can, can_record_pathway, referral_scope, salarie_scope
from engine.domain.vocabulary import FOLLOWUP_MONTHS
from engine.store import models as m
from matching.grid import add_months


@dataclass
class PathwayFile:
    person: m.Salarie
    chantier: m.Chantier
    territory: m.Territory | None
    identity: m.SalarieIdentity | None
    housing_changes: list[m.HousingChange] = field(default_factory=list)
    health_events: list[m.HealthEvent] = field(default_factory=list)
    follow_ups: list[m.FollowUp] = field(default_factory=list)
    referrals: list[m.Referral] = field(default_factory=list)
    can_record: bool = False
    housing_at_entry: str = ""
    follow_ups_due: list[tuple[int, date]] = field(default_factory=list)  # (months, due on)


def read_pathway(
    session: Session, user: m.StaffUser, salarie_id: int, *, now: datetime
) -> PathwayFile | None:
    """The pathway of one person, or None when missing or out of the reader's scope (→ 404)."""
    person = session.scalar(
        select(m.Salarie).where(m.Salarie.id == salarie_id, salarie_scope(user))
    )
    if person is None or user.role == "partner_contact":
        return None
    chantier = session.get(m.Chantier, person.chantier_id)
    assert chantier is not None
    territory = session.get(m.Territory, chantier.territory_id) if chantier.territory_id else None
    with_identity = can(user, "read_identity", person)
    identity = session.get(m.SalarieIdentity, person.id) if with_identity else None
    record_read(session, user, person.id, at=now, purpose="parcours", with_identity=bool(identity))
    out = PathwayFile(person, chantier, territory, identity)
    out.housing_changes = list(
        session.scalars(
            select(m.HousingChange)
            .where(m.HousingChange.salarie_id == person.id)
            .order_by(m.HousingChange.on, m.HousingChange.id)
        )
    )
    out.health_events = list(
        session.scalars(
            select(m.HealthEvent)
            .where(m.HealthEvent.salarie_id == person.id)
            .order_by(m.HealthEvent.on, m.HealthEvent.id)
        )
    )
    out.follow_ups = list(
        session.scalars(
            select(m.FollowUp).where(m.FollowUp.salarie_id == person.id).order_by(m.FollowUp.months)
        )
    )
    out.referrals = list(
        session.scalars(
            select(m.Referral)
            .where(m.Referral.salarie_id == person.id, referral_scope(user))
            .order_by(m.Referral.id)
        )
    )
    out.housing_at_entry = out.housing_changes[0].before if out.housing_changes else person.housing
    out.can_record = can_record_pathway(session, user, person)
    if person.programme == "cvg" and person.exit_date is not None:
        done = {f.months for f in out.follow_ups}
        out.follow_ups_due = [
            (k, add_months(person.exit_date, k)) for k in FOLLOWUP_MONTHS if k not in done
        ]
    return out
