"""Messages written by a referral's transitions: who is told, under which key, with what.

Why here: the transition door (``engine.referrals.transitions``) decides *that* a message follows an
action; this module owns each message's recipients, idempotency key and context, so the same
mail is never assembled twice in two shapes. Contexts carry the pseudonymous reference and
links only — never the measure, the health or housing detail.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access.tokens import make_partner_token
from engine.outbox.enqueue import enqueue_many
from engine.store import models as m
from engine.store.settings import Settings


def partner_orientation(session: Session, settings: Settings, ref: m.Referral, *,
                        now: datetime) -> int:  # fmt: skip
    """The orientation mail to every active contact of the offer's partner."""
    offer = session.get(m.Offer, ref.offer_id)
    assert offer is not None
    partner = session.get(m.Partner, offer.partner_id)
    assert partner is not None
    salarie = session.get(m.Salarie, ref.salarie_id)
    territory = session.get(m.Territory, ref.territory_id) if ref.territory_id else None
    contacts = session.scalars(
        select(m.StaffUser).where(m.StaffUser.partner_id == partner.id, m.StaffUser.active)
    ).all()
    token = make_partner_token(
        settings.secret_key.get_secret_value(), referral_id=ref.id, partner_id=partner.id, now=now
    )
    expires = (now + timedelta(days=settings.partner_expiry_days)).date()
    base = settings.base_url
    return enqueue_many(session, [
        {"kind": "partner_orientation",
         "key": f"partner_orientation:{ref.id}:{ref.version}:{ref.reminders_sent}:{c.id}",
         "to_address": c.email, "recipient_user_id": c.id,
         "context": {"recipient_name": c.display_name, "preferences_url": f"{base}/preferences",
                     "partner_name": partner.name, "reference": salarie.reference if salarie else "",
                     "territory": territory.name if territory else "Hors territoire",
                     "action_url": f"{base}/partenaire/reponse/{token}", "expires_on": expires}}
        for c in contacts], base_url=base, now=now)  # fmt: skip


def slot_validated(session: Session, settings: Settings, ref: m.Referral, pool: m.SlotPool, *,
                   now: datetime) -> int:  # fmt: skip
    """The owner and the chantier's CIP/ESP learn that a place was validated."""
    salarie = session.get(m.Salarie, ref.salarie_id)
    assert salarie is not None
    terr = session.get(m.Territory, ref.territory_id) if ref.territory_id else None
    recipients: list[m.StaffUser] = []
    if ref.owner_user_id:
        owner = session.get(m.StaffUser, ref.owner_user_id)
        if owner is not None and owner.active:
            recipients.append(owner)
    recipients += session.scalars(select(m.StaffUser).where(
        m.StaffUser.role == "cip", m.StaffUser.chantier_id == ref.chantier_id, m.StaffUser.active)).all()  # fmt: skip
    base = settings.base_url
    return enqueue_many(session, [
        {"kind": "slot_validated", "key": f"slot_validated:{ref.id}:{pool.id}:{u.id}",
         "to_address": u.email, "recipient_user_id": u.id,
         "context": {"recipient_name": u.display_name, "preferences_url": f"{base}/preferences",
                     "reference": salarie.reference,
                     "territory": terr.name if terr else "Hors territoire",
                     "url": f"{base}/orientations/{ref.id}"}}
        for u in recipients], base_url=base, now=now)  # fmt: skip
