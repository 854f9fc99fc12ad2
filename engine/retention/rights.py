"""The person's rights, exercised through the national team: find a person, export all that
is held on them, rectify their identity, erase their file on request.

Why the national admin only: a person writes to the network (not to a chantier) to ask what
is held on them; the national team answers for all chantiers. It is the one role that reads
identities *for this purpose*: every search, export, rectification and erasure writes an
access-log row (who, which person, why) and an audit row (what was done, never the values).
An erasure is the retention's own anonymisation, run now after a typed confirmation; the
legal hold applies (a counted place awaited or held, a proposal pending).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Text, cast, func, or_, select
from sqlalchemy.orm import Session

from engine.access.log import record_read
from engine.domain.clock import PARIS, Clock, as_utc
from engine.domain.errors import Forbidden, NotFound, Refused
from engine.domain.labels import (
    EVENT_LABELS,
    EXIT_LABELS,
    FOLLOWUP_LABELS,
    FREIN_STATUS_LABELS,
    HEALTH_EVENT_LABELS,
    HOUSING_LABELS,
    OUTCOME_LABELS,
    PROGRAMME_LABELS,
    PROPOSAL_LABELS,
    REFERRED_BY_LABELS,
    REFUSAL_LABELS,
    ROLE_LABELS,
    STATE_LABELS,
)
from engine.reporting.report import ensure_final_snapshots
from engine.retention.anonymise import anonymise
from engine.retention.files import FileDue, files, held_people, touched_years
from engine.retention.policy import load_policy
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings
from notifications.kinds import KINDS
from partners.taxonomy import DOMAIN_LABELS, label_of

MAX_MATCHES = 50
IDENTITY_FIELDS = ("last_name", "first_name", "birth_date", "phone", "email")
FIELD_LABELS = {
    "last_name": "nom",
    "first_name": "prénom",
    "birth_date": "date de naissance",
    "phone": "téléphone",
    "email": "courriel",
}
_PHONE = re.compile(r"^[0-9+ .()\-]{3,40}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
HELD_MESSAGE = (
    "ce dossier est conservé : une orientation attend une place comptée, en occupe une, ou "
    "une proposition d'attribution attend sa validation. Clôturez ou annulez d'abord cette "
    "orientation depuis sa page, puis recommencez"
)


def _check(user: m.StaffUser) -> None:
    if not user.active or user.role != "national_admin":
        raise Forbidden("réservé à l'administration nationale")


def _person(session: Session, salarie_id: int) -> m.Salarie:
    person = session.get(m.Salarie, salarie_id) if 0 < salarie_id <= m.MAX_ID else None
    if person is None:
        raise NotFound("personne introuvable")
    return person


def _clean_text(value: str | None, field: str, *, limit: int, required: bool) -> str | None:
    """A typed text: trimmed, without control characters (NUL included), within ``limit``."""
    text = (value or "").strip()
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise Refused(f"{field} : caractères non imprimables refusés")
    if not text:
        if required:
            raise Refused(f"{field} : champ obligatoire")
        return None
    if len(text) > limit:
        raise Refused(f"{field} : {limit} caractères au plus")
    return text


def _birth_date(value: str | None, today: date) -> date | None:
    text = _clean_text(value, "date de naissance", limit=10, required=False)
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise Refused("date de naissance : date attendue au format AAAA-MM-JJ") from None
    if not date(1900, 1, 1) <= day <= today:
        raise Refused("date de naissance : hors de la plage plausible (1900 à aujourd'hui)")
    return day


# --- search -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonMatch:
    id: int
    reference: str
    chantier: str
    programme: str
    entry_date: date
    anonymised: bool
    last_name: str | None
    first_name: str | None
    birth_date: date | None


def search_people(
    session: Session,
    user: m.StaffUser,
    *,
    reference: str | None = None,
    last_name: str | None = None,
    first_name: str | None = None,
    birth_date: str | None = None,
    now: datetime,
) -> list[PersonMatch]:
    """People matching a reference (exact) or a name (exact, case-insensitive, with the first
    name and the birth date when given); each one shown is logged as a read with identity."""
    _check(user)
    today = now.astimezone(PARIS).date()
    S, I, C = m.Salarie, m.SalarieIdentity, m.Chantier
    q = (
        select(S, I, C.name)
        .join(C, C.id == S.chantier_id)
        .outerjoin(I, I.salarie_id == S.id)
        .order_by(S.id)
        .limit(MAX_MATCHES)
    )
    ref = _clean_text(reference, "référence", limit=20, required=False)
    if ref:
        q = q.where(S.reference == ref.upper())
    else:
        name = _clean_text(last_name, "nom", limit=200, required=True)
        assert name is not None
        if len(name) < 2:
            raise Refused("nom : au moins 2 caractères")
        q = q.where(func.lower(I.last_name) == name.lower())
        first = _clean_text(first_name, "prénom", limit=200, required=False)
        if first:
            q = q.where(func.lower(I.first_name) == first.lower())
        born = _birth_date(birth_date, today)
        if born is not None:
            q = q.where(I.birth_date == born)
    out = []
    for person, identity, chantier in session.execute(q).all():
        record_read(
            session, user, person.id, at=now, purpose="droits : recherche",
            with_identity=identity is not None,
        )  # fmt: skip
        out.append(
            PersonMatch(
                id=person.id,
                reference=person.reference,
                chantier=chantier,
                programme=person.programme,
                entry_date=person.entry_date,
                anonymised=person.anonymised_at is not None,
                last_name=identity.last_name if identity else None,
                first_name=identity.first_name if identity else None,
                birth_date=identity.birth_date if identity else None,
            )
        )
    return out


# --- export -----------------------------------------------------------------------------


def _iso(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value).astimezone(PARIS).isoformat(timespec="seconds")
    return value.isoformat()


def _mails(session: Session, person: m.Salarie, referral_ids: list[int]) -> list[m.OutboxMessage]:
    """Messages whose context names the person's reference, or about one of their
    orientations (partner mails name their orientation)."""
    O = m.OutboxMessage
    about = [cast(O.context, Text).like(f"%{person.reference}%")]
    column = m.table_of(O).c.get("referral_id")
    if column is not None and referral_ids:
        about.append(column.in_(referral_ids))
    rows = session.scalars(select(O).where(or_(*about)).order_by(O.id)).all()
    return list(rows)


def _audit_rows(session: Session, person: m.Salarie) -> list[m.AuditLog]:
    A = m.AuditLog
    rows = session.scalars(
        select(A)
        .where(
            or_(
                (A.object_type == "salarie") & (A.object_id == str(person.id)),
                cast(A.details, Text).like(f'%"salarie_id": {person.id}%'),
            )
        )
        .order_by(A.id)
    ).all()
    return [
        r
        for r in rows
        if (r.object_type == "salarie" and r.object_id == str(person.id))
        or (r.details or {}).get("salarie_id") == person.id
    ]


def export_person(
    session: Session, user: m.StaffUser, salarie_id: int, *, now: datetime
) -> dict[str, Any]:
    """Everything held on one person, in French keys and labels (the JSON file and the HTML
    page show the same). Logged: an access-log row with identity and an audit row."""
    _check(user)
    person = _person(session, salarie_id)
    chantier = session.get(m.Chantier, person.chantier_id)
    assert chantier is not None
    territory = session.get(m.Territory, chantier.territory_id) if chantier.territory_id else None
    identity = session.get(m.SalarieIdentity, person.id)
    staff = dict(session.execute(select(m.StaffUser.id, m.StaffUser.display_name)).all())
    roles = dict(session.execute(select(m.StaffUser.id, m.StaffUser.role)).all())
    offers = {o.id: o for o in session.scalars(select(m.Offer)).all()}
    partners = dict(session.execute(select(m.Partner.id, m.Partner.name)).all())
    pools = dict(session.execute(select(m.SlotPool.id, m.SlotPool.name)).all())

    referrals = session.scalars(
        select(m.Referral).where(m.Referral.salarie_id == person.id).order_by(m.Referral.id)
    ).all()
    rids = [r.id for r in referrals]
    events: dict[int, list[m.ReferralEvent]] = {}
    if rids:
        for e in session.scalars(
            select(m.ReferralEvent)
            .where(m.ReferralEvent.referral_id.in_(rids))
            .order_by(m.ReferralEvent.at, m.ReferralEvent.id)
        ):
            events.setdefault(e.referral_id, []).append(e)
    proposals = (
        session.scalars(
            select(m.AllocationProposal)
            .where(m.AllocationProposal.referral_id.in_(rids))
            .order_by(m.AllocationProposal.id)
        ).all()
        if rids
        else []
    )

    def who(user_id: int | None, label: str = "") -> str:
        if user_id is not None and user_id in staff:
            return f"{staff[user_id]} ({ROLE_LABELS.get(roles[user_id], roles[user_id])})"
        return label or "—"

    def offer_name(offer_id: int | None) -> str | None:
        if offer_id is None or offer_id not in offers:
            return None
        o = offers[offer_id]
        return f"{o.name} — {partners.get(o.partner_id, '')}"

    out: dict[str, Any] = {
        "export": {
            "genere_le": _iso(now),
            "par": who(user.id, user.display_name),
            "objet": (
                "Données détenues par Aiguillage sur une personne (droit d'accès, RGPD art. 15)"
            ),
        },
        "personne": {
            "reference": person.reference,
            "programme": PROGRAMME_LABELS.get(person.programme, person.programme),
            "chantier": chantier.name,
            "territoire": territory.name if territory else "Hors territoire",
            "entree_le": _iso(person.entry_date),
            "sortie_le": _iso(person.exit_date),
            "categorie_de_sortie": EXIT_LABELS.get(person.exit_category or "", None),
            "oriente_par": REFERRED_BY_LABELS.get(person.referred_by or "", None),
            "fin_de_programme_prevue_le": _iso(person.programme_end),
            "situation_de_logement": HOUSING_LABELS.get(person.housing, person.housing),
            "mois_a_la_rue": person.street_months,
            "ressources": person.has_resources,
            "taille_du_menage": person.household_size,
            "enfants_mineurs": person.minor_children,
            "rqth": person.rqth,
            "vulnerabilites_signalees": person.vulnerability_flags or None,
            "urgence_sante": person.health_urgency,
            "reference_du_chantier": person.external_ref,
            "dossier_cree_le": _iso(person.created_at),
            "avis_de_conservation_le": _iso(person.retention_notice_on),
            "anonymisation_annoncee_pour_le": _iso(person.retention_due_on),
            "anonymise_le": _iso(person.anonymised_at),
        },
        "identite": None
        if identity is None
        else {
            "nom": identity.last_name,
            "prenom": identity.first_name,
            "date_de_naissance": _iso(identity.birth_date),
            "telephone": identity.phone,
            "courriel": identity.email,
        },
        "freins": [
            {
                "thematique": label_of(f.thematique),
                "domaine": DOMAIN_LABELS.get(f.domain, f.domain),
                "statut": FREIN_STATUS_LABELS.get(f.status, f.status),
                "identifie_le": _iso(f.identified_at),
            }
            for f in session.scalars(
                select(m.Frein).where(m.Frein.salarie_id == person.id).order_by(m.Frein.id)
            )
        ],
        "orientations": [
            {
                "numero": r.id,
                "domaine": DOMAIN_LABELS.get(r.domain, r.domain),
                "thematique": label_of(r.thematique),
                "etat": STATE_LABELS.get(r.state, r.state),
                "resultat": OUTCOME_LABELS.get(r.outcome or "", None),
                "motif_de_refus": REFUSAL_LABELS.get(r.refusal_reason or "", None),
                "precision_du_refus": r.refusal_note,
                "offre": offer_name(r.offer_id),
                "dispositif": pools.get(r.pool_id) if r.pool_id else None,
                "suivie_par": who(r.owner_user_id) if r.owner_user_id else None,
                "priorite": r.priority,
                "detail_de_la_priorite": [
                    line[1] if isinstance(line, list) and len(line) > 1 else str(line)
                    for line in r.priority_breakdown or []
                ],
                "explication": r.explanation or None,
                "creee_le": _iso(r.created_at),
                "historique": [
                    {
                        "le": _iso(e.at),
                        "evenement": EVENT_LABELS.get(e.action, e.action),
                        "de": STATE_LABELS.get(e.from_state or "", None),
                        "vers": STATE_LABELS.get(e.to_state, e.to_state),
                        "par": who(e.actor_user_id, e.actor_label),
                        "motif": REFUSAL_LABELS.get(e.reason or "", e.reason),
                        "note": e.note,
                    }
                    for e in events.get(r.id, [])
                ],
            }
            for r in referrals
        ],
        "propositions_de_place": [
            {
                "orientation": p.referral_id,
                "dispositif": pools.get(p.pool_id),
                "statut": PROPOSAL_LABELS.get(p.status, p.status),
                "explication": p.explanation or None,
                "motif_du_refus": p.decline_reason,
                "decidee_le": _iso(p.decided_at),
            }
            for p in proposals
        ],
        "notes": [
            {
                "le": _iso(n.at),
                "auteur": n.author_name,
                "demande_de_reorientation": n.reorientation_request,
                "texte": n.body,
            }
            for n in session.scalars(
                select(m.CaseNote).where(m.CaseNote.salarie_id == person.id).order_by(m.CaseNote.at)
            )
        ],
        "parcours": {
            "changements_de_logement": [
                {
                    "le": _iso(h.on),
                    "avant": HOUSING_LABELS.get(h.before, h.before),
                    "apres": HOUSING_LABELS.get(h.after, h.after),
                }
                for h in session.scalars(
                    select(m.HousingChange)
                    .where(m.HousingChange.salarie_id == person.id)
                    .order_by(m.HousingChange.on, m.HousingChange.id)
                )
            ],
            "sante": [
                {"le": _iso(h.on), "evenement": HEALTH_EVENT_LABELS.get(h.kind, h.kind)}
                for h in session.scalars(
                    select(m.HealthEvent)
                    .where(m.HealthEvent.salarie_id == person.id)
                    .order_by(m.HealthEvent.on, m.HealthEvent.id)
                )
            ],
            "suivis_apres_sortie": [
                {
                    "suivi": FOLLOWUP_LABELS.get(f.months, str(f.months)),
                    "situation": EXIT_LABELS.get(f.situation, f.situation),
                    "loge": f.housed,
                    "repondu_le": _iso(f.answered_on),
                }
                for f in session.scalars(
                    select(m.FollowUp)
                    .where(m.FollowUp.salarie_id == person.id)
                    .order_by(m.FollowUp.months)
                )
            ],
        },
        "courriels_a_son_sujet": [
            {
                "objet": KINDS[o.kind].label if o.kind in KINDS else o.kind,
                "destinataire": who(o.recipient_user_id, "Partenaire (adresse de l'annuaire)"),
                "statut": o.status,
                "ecrit_le": _iso(o.created_at),
                "envoye_le": _iso(o.sent_at),
            }
            for o in _mails(session, person, rids)
        ],
        "journal_des_acces": [
            {
                "le": _iso(a.at),
                "lecteur": who(a.user_id, a.reader),
                "motif": a.purpose,
                "identite_affichee": a.with_identity,
            }
            for a in session.scalars(
                select(m.AccessLog)
                .where(m.AccessLog.salarie_id == person.id)
                .order_by(m.AccessLog.id)
            )
        ],
        "journal_des_modifications": [
            {"le": _iso(a.at), "par": who(a.actor_user_id, a.actor_label), "action": a.action}
            for a in _audit_rows(session, person)
        ],
    }
    record_read(
        session, user, person.id, at=now, purpose="droits : export",
        with_identity=identity is not None,
    )  # fmt: skip
    session.add(
        m.AuditLog(
            actor_user_id=user.id,
            actor_label=user.display_name[:80],
            action="rights_export",
            object_type="salarie",
            object_id=str(person.id),
            at=now,
            details={"salarie_id": person.id},
        )
    )
    return out


# --- rectification ----------------------------------------------------------------------


@dataclass
class IdentityView:
    salarie_id: int
    reference: str
    anonymised: bool
    identity: m.SalarieIdentity | None


def read_identity(
    session: Session, user: m.StaffUser, salarie_id: int, *, now: datetime
) -> IdentityView:
    """The identity shown in the rectification form (a logged read)."""
    _check(user)
    person = _person(session, salarie_id)
    identity = session.get(m.SalarieIdentity, person.id)
    record_read(
        session, user, person.id, at=now, purpose="droits : rectification",
        with_identity=identity is not None,
    )  # fmt: skip
    return IdentityView(person.id, person.reference, person.anonymised_at is not None, identity)


def rectify_identity(
    session: Session, user: m.StaffUser, salarie_id: int, form: dict[str, str], *, clock: Clock
) -> list[str]:
    """Replace the person's identity with the form's values (all checked first: nothing is
    written on a bad field); returns the French names of the fields changed. The audit row
    names the fields, never their old or new values."""
    _check(user)
    person = _person(session, salarie_id)
    if person.anonymised_at is not None:
        raise Refused("ce dossier est anonymisé : il n'y a plus d'identité à rectifier")
    values: dict[str, Any] = {
        "last_name": _clean_text(form.get("last_name"), "nom", limit=200, required=True),
        "first_name": _clean_text(form.get("first_name"), "prénom", limit=200, required=True),
        "birth_date": _birth_date(form.get("birth_date"), clock.today()),
        "phone": _clean_text(form.get("phone"), "téléphone", limit=40, required=False),
        "email": _clean_text(form.get("email"), "courriel", limit=200, required=False),
    }
    if values["phone"] is not None and not _PHONE.match(values["phone"]):
        raise Refused("téléphone : chiffres, espaces et + . - ( ) seulement")
    if values["email"] is not None and not _EMAIL.match(values["email"]):
        raise Refused("courriel : adresse invalide (attendu nom@domaine.fr)")
    identity = session.get(m.SalarieIdentity, person.id)
    if identity is None:
        identity = m.SalarieIdentity(salarie_id=person.id, **values)
        session.add(identity)
        changed = [f for f in IDENTITY_FIELDS if values[f] is not None]
    else:
        changed = [f for f in IDENTITY_FIELDS if getattr(identity, f) != values[f]]
        for f in changed:
            setattr(identity, f, values[f])
    now = clock.now()
    record_read(
        session, user, person.id, at=now, purpose="droits : rectification", with_identity=True
    )
    session.add(
        m.AuditLog(
            actor_user_id=user.id,
            actor_label=user.display_name[:80],
            action="rights_rectify",
            object_type="salarie",
            object_id=str(person.id),
            at=now,
            details={"salarie_id": person.id, "fields": changed},
        )
    )
    return [FIELD_LABELS[f] for f in changed]


# --- erasure ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureCheck:
    salarie_id: int
    reference: str
    anonymised: bool
    held: bool
    referrals: int
    notes: int


def erasure_check(session: Session, user: m.StaffUser, salarie_id: int) -> ErasureCheck:
    """What an erasure would do to this person, for the confirmation page."""
    _check(user)
    person = _person(session, salarie_id)
    referrals = session.scalar(
        select(func.count()).select_from(m.Referral).where(m.Referral.salarie_id == person.id)
    )
    notes = session.scalar(
        select(func.count()).select_from(m.CaseNote).where(m.CaseNote.salarie_id == person.id)
    )
    return ErasureCheck(
        person.id,
        person.reference,
        person.anonymised_at is not None,
        bool(held_people(session, [person.id])),
        int(referrals or 0),
        int(notes or 0),
    )


def _erasable(session: Session, user: m.StaffUser, salarie_id: int, confirmation: str) -> m.Salarie:
    _check(user)
    person = _person(session, salarie_id)
    if person.anonymised_at is not None:
        raise Refused("ce dossier est déjà anonymisé")
    typed = (confirmation or "").strip().upper()
    if typed != person.reference:
        raise Refused(
            f"confirmation : saisissez exactement la référence {person.reference} pour confirmer "
            "l'effacement"
        )
    if held_people(session, [person.id]):
        raise Refused(HELD_MESSAGE)
    return person


def erase_person(
    db: Database, user: m.StaffUser, salarie_id: int, confirmation: str, *, clock: Clock
) -> Counter[str]:
    """Anonymise one person's file now, on their request (the retention's anonymisation).

    The final snapshots of the years their file touches are written first, so the network's
    past figures do not move; then one transaction anonymises the file, logs the erasure in
    the access log and the audit log (counts only)."""
    with unit_of_work(db) as session:
        _erasable(session, user, salarie_id, confirmation)
        years = sorted(touched_years(session, [salarie_id], clock.today()))
    ensure_final_snapshots(db, years, clock=clock)
    with unit_of_work(db, immediate=True) as session:
        person = _erasable(session, user, salarie_id, confirmation)
        now = clock.now()
        counts = anonymise(session, [person.id], now=now)
        record_read(
            session, user, salarie_id, at=now, purpose="droits : effacement", with_identity=False
        )
        session.add(
            m.AuditLog(
                actor_user_id=user.id,
                actor_label=user.display_name[:80],
                action="rights_erase",
                object_type="salarie",
                object_id=str(salarie_id),
                at=now,
                details=dict(counts),
            )
        )
    return counts


# --- the files announced, for the chantier's CIP/ESP -------------------------------------


@dataclass(frozen=True)
class AnnouncedFile:
    salarie_id: int
    reference: str
    chantier: str
    due_on: date  # the day announced, or the due day when not announced yet
    status: str  # "annonce" | "conserve" | "a_annoncer"


def announced_files(
    session: Session, settings: Settings, user: m.StaffUser, *, today: date, limit: int = 500
) -> list[AnnouncedFile]:
    """The files of the reader's chantier (every chantier for the national admin) that are
    announced for anonymisation, kept under legal hold, or due within the notice period."""
    if not user.active or user.role not in ("cip", "national_admin"):
        raise Forbidden("réservé aux CIP / ESP et à l'administration nationale")
    policy = load_policy(session, settings)
    S = m.Salarie
    ids: list[int] | None = None
    if user.role == "cip":
        ids = list(
            session.scalars(
                select(S.id).where(S.chantier_id == user.chantier_id, S.anonymised_at.is_(None))
            )
        )
    horizon = date.fromordinal(today.toordinal() + policy.notice_days)
    found: list[FileDue] = files(session, policy, until=horizon, ids=ids)
    names = dict(session.execute(select(m.Chantier.id, m.Chantier.name)).all())
    refs = dict(
        session.execute(
            select(S.id, S.reference).where(S.id.in_([f.salarie_id for f in found[:limit]]))
        ).all()
    )
    out = []
    for f in found[:limit]:
        if f.held:
            status, day = "conserve", f.due_on
        elif f.noticed_for_current_due() and f.announced is not None:
            status, day = "annonce", f.announced
        else:
            status, day = "a_annoncer", max(f.due_on, horizon)
        out.append(
            AnnouncedFile(f.salarie_id, refs[f.salarie_id], names[f.chantier_id], day, status)
        )
    out.sort(key=lambda a: (a.due_on, a.reference))
    return out
