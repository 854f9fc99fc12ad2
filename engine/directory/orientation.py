"""Orienting someone towards a service: by mail when it has a public address, otherwise the
way the service says it is reached — and the chargé·e records that it was done.

Why: the partner orientation mail (``engine.outbox.messages.partner_recipients``) goes only to
an address the service published; data·inclusion leaves ``courriel`` empty when it is not
public. Such a service is reached by phone, through its mobilisation link or by going there
(``modes_mobilisation``): the page shows those, and the chargé·e records the orientation
(the ``refer`` transition, with a note saying how it was made) — no mail is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access.permissions import can
from engine.domain.clock import Clock
from engine.domain.errors import NotFound, Refused
from engine.domain.lifecycle import BY_ACTION
from engine.outbox.messages import partner_recipients
from engine.referrals.actions import Actor, transition
from engine.store import models as m
from engine.store.settings import Settings
from partners.data_inclusion import (
    MOBILISABLE_PAR_LABELS,
    MODE_ACCUEIL_LABELS,
    MODE_MOBILISATION_LABELS,
    PUBLIC_LABELS,
)

# How an orientation was made without a mail: code -> the words of the event's note.
MODES: dict[str, str] = {
    "telephone": "par téléphone",
    "lien": "par le lien de mobilisation du service",
    "presentiel": "sur place, à l'adresse du service",
    "courriel": "par courriel, hors d'Aiguillage",
    "autre": "par un autre moyen",
}


@dataclass
class ServiceContact:
    """How one service is reached: what its data says, in French."""

    mail: bool  # the orientation mail goes to its public address
    modes: list[str] = field(default_factory=list)  # labels of modes_mobilisation
    telephone: str | None = None
    lien: str | None = None
    adresse: str | None = None
    courriel: str | None = None
    precisions: str | None = None
    publics: list[str] = field(default_factory=list)
    conditions: str | None = None
    accueil: list[str] = field(default_factory=list)
    mobilisable_par: list[str] = field(default_factory=list)
    choices: dict[str, str] = field(default_factory=dict)  # MODES this service offers


def service_contact(
    session: Session, partner: m.Partner, service: m.ImportedService | None
) -> ServiceContact:
    """The service's modes of mobilisation and whether the orientation mail can go to it."""
    mail = bool(partner_recipients(session, partner))
    d = dict(service.details or {}) if service is not None else {}
    modes = [str(x) for x in d.get("modes_mobilisation") or []]
    address = ", ".join(
        str(x) for x in (d.get("adresse"), d.get("code_postal"), d.get("commune")) if x
    )
    contact = ServiceContact(
        mail=mail,
        modes=[MODE_MOBILISATION_LABELS.get(x, x) for x in modes],
        telephone=d.get("telephone"),
        lien=d.get("lien_mobilisation"),
        adresse=address or None,
        courriel=partner.contact_email,
        precisions=d.get("mobilisation_precisions"),
        publics=[PUBLIC_LABELS.get(str(x), str(x)) for x in d.get("publics") or []],
        conditions=d.get("conditions_acces"),
        accueil=[MODE_ACCUEIL_LABELS.get(str(x), str(x)) for x in d.get("modes_accueil") or []],
        mobilisable_par=[
            MOBILISABLE_PAR_LABELS.get(str(x), str(x)) for x in d.get("mobilisable_par") or []
        ],
    )
    offered = {
        "telephone": bool(contact.telephone) or "telephoner" in modes,
        "lien": bool(contact.lien) or "utiliser-lien-mobilisation" in modes,
        "presentiel": bool(contact.adresse) or "se-presenter" in modes,
        "courriel": "envoyer-un-courriel" in modes,
    }
    contact.choices = {k: v for k, v in MODES.items() if offered.get(k, k == "autre")}
    return contact


@dataclass
class OrientationView:
    referral: m.Referral
    reference: str
    offer: m.Offer
    partner: m.Partner
    service: m.ImportedService | None
    contact: ServiceContact
    can_refer: bool  # the referral can be referred now, by this user


def orientation_view(
    session: Session, user: m.StaffUser, referral_id: int, offer_id: int
) -> OrientationView:
    """What the "orient towards this service" page shows (NotFound out of scope)."""
    ref = session.get(m.Referral, referral_id)
    if ref is None or not can(user, "read", ref):
        raise NotFound("orientation introuvable")
    offer = session.get(m.Offer, offer_id)
    if offer is None:
        raise NotFound("offre introuvable")
    partner = session.get(m.Partner, offer.partner_id)
    assert partner is not None
    service = session.scalar(
        select(m.ImportedService).where(m.ImportedService.offer_id == offer.id)
    )
    salarie = session.get(m.Salarie, ref.salarie_id)
    return OrientationView(
        referral=ref,
        reference=salarie.reference if salarie else "",
        offer=offer,
        partner=partner,
        service=service,
        contact=service_contact(session, partner, service),
        can_refer=ref.state in BY_ACTION["refer"].sources and can(user, "refer", ref),
    )


def record_orientation(
    session: Session,
    settings: Settings,
    referral_id: int,
    offer_id: int,
    *,
    actor: Actor,
    clock: Clock,
    mode: str | None = None,
    note: str | None = None,
    expected_version: int | None = None,
) -> m.Referral:
    """Orient the referral towards the offer. With a public address the partner is mailed (the
    ``refer`` effect); without one, ``mode`` says how the chargé·e made the orientation, and
    the event's note records it (no mail)."""
    offer = session.get(m.Offer, offer_id)
    if offer is None:
        raise Refused("offre de partenaire inconnue")
    partner = session.get(m.Partner, offer.partner_id)
    assert partner is not None
    text = (note or "").strip()[:1000]
    if not partner_recipients(session, partner):
        if mode not in MODES:
            raise Refused(
                "ce service n'a pas d'adresse électronique publique : indiquez comment "
                "l'orientation a été faite"
            )
        head = (
            f"Orientation faite {MODES[mode]} (service sans adresse électronique publique : "
            "aucun courriel envoyé)."
        )
        text = f"{head} {text}".strip()
    return transition(
        session,
        settings,
        referral_id,
        "refer",
        actor=actor,
        clock=clock,
        expected_version=expected_version,
        offer_id=offer_id,
        note=text or None,
    )
