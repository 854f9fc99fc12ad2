"""Every message Aiguillage writes: who is told, under which key, with which words and links.

Why one module: the use cases decide *that* someone is told (an orientation was routed, a
place validated, a deadline fell due); this module owns, per message kind, the recipients,
the idempotency key and the context, and ``Links`` owns every path a mail links to. The
French words themselves are the templates of ``notifications/templates/<kind>/``; what a
context may carry is declared in ``notifications.kinds``. Contexts carry the pseudonymous
reference and links only — never the measure, the health or housing detail.

A key names the occasion, so writing the same message twice is a no-op and the next
occasion gets a new key: ``partner_orientation`` is keyed by the referral's version and its
reminder count, the same in the bulk intake and in the transition door.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access.tokens import make_partner_token
from engine.outbox.enqueue import enqueue_many
from engine.store import models as m
from engine.store.settings import Settings
from notifications.kinds import DIGEST_ITEM_LABELS

OUTSIDE_TERRITORY = "Hors territoire"


@dataclass(frozen=True)
class Links:
    """Every page a mail links to, under the deployment's base URL (one method per page)."""

    base_url: str

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/")

    def queue(self) -> str:
        """The chargé·e's triage queue."""
        return f"{self.root}/file"

    def case(self, referral_id: int) -> str:
        """The case page of one referral."""
        return f"{self.root}/orientations/{referral_id}"

    def allocations(self) -> str:
        """The allocation review of the coordination."""
        return f"{self.root}/attributions"

    def commission(self, run_id: int, pool_id: int) -> str:
        """The page of one commission: a run's ranked lists for one pool."""
        return f"{self.root}/attributions/commissions/{run_id}/{pool_id}"

    def preferences(self) -> str:
        """Where a user chooses immediate, daily digest or no mail, per kind."""
        return f"{self.root}/preferences"

    def follow_up(self, salarie_id: int, months: int) -> str:
        """The short form of a CVG follow-up ``months`` after the person's exit."""
        return f"{self.root}/salaries/{salarie_id}/suivi/{months}"

    def partner_answer(self, token: str) -> str:
        """The signed page where a partner contact answers an orientation, without an account."""
        return f"{self.root}/partenaire/reponse/{token}"


class Recipient(NamedTuple):
    """Who receives a message: a staff account and where to write to it — or, for a partner
    reached only through its directory address (``Partner.contact_email``), no account
    (``id`` None, no name: the mail greets no one by name)."""

    id: int | None
    name: str
    email: str

    @classmethod
    def of(cls, user: m.StaffUser) -> Recipient:
        return cls(user.id, user.display_name, user.email)

    @classmethod
    def address(cls, email: str) -> Recipient:
        return cls(None, "", email)

    @property
    def tag(self) -> str:
        """How keys name the recipient: the account id, or a hash of the address (an
        address never enters a key, which is hashed again into the Message-ID)."""
        if self.id is not None:
            return str(self.id)
        return "a" + hashlib.sha256(self.email.strip().lower().encode()).hexdigest()[:16]


def _message(
    links: Links,
    kind: str,
    key: str,
    to: Recipient,
    *,
    referral_id: int | None = None,
    **context: Any,
) -> dict[str, Any]:
    """The outbox row of one message (the shape ``enqueue_many`` takes)."""
    return {
        "kind": kind,
        "key": key,
        "to_address": to.email,
        "recipient_user_id": to.id,
        "referral_id": referral_id,
        "context": {"recipient_name": to.name, "preferences_url": links.preferences(), **context},
    }


def partner_token(settings: Settings, *, referral_id: int, partner_id: int, now: datetime) -> str:
    """The signed token of a partner's answer link (see ``engine.access.tokens``)."""
    secret = settings.secret_key.get_secret_value()
    return make_partner_token(secret, referral_id=referral_id, partner_id=partner_id, now=now)


# --- one function per kind ------------------------------------------------------------


def new_referrals(links: Links, to: Recipient, *, count: int, first_id: int) -> dict[str, Any]:
    """A chargé·e has ``count`` new referrals from one intake run (key: first referral id)."""
    key = f"new_referrals:{to.id}:{first_id}"
    return _message(links, "new_referrals", key, to, count=count, url=links.queue())


def partner_orientation_key(
    referral_id: int, version: int, reminders_sent: int, contact: int | str
) -> str:
    """``contact`` is the recipient's ``tag`` (its account id for a partner contact)."""
    return f"partner_orientation:{referral_id}:{version}:{reminders_sent}:{contact}"


def referral_of_key(kind: str, key: str) -> int | None:
    """The referral a partner mail's key names (rows written before the column existed)."""
    parts = key.split(":")
    if kind not in ("partner_orientation", "partner_reminder") or parts[0] != kind:
        return None
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def partner_orientation(
    links: Links,
    to: Recipient,
    *,
    referral_id: int,
    version: int,
    reminders_sent: int,
    partner_name: str,
    reference: str,
    territory: str,
    token: str,
    expires_on: date,
) -> dict[str, Any]:
    """A partner contact is asked to answer an orientation through its signed link."""
    key = partner_orientation_key(referral_id, version, reminders_sent, to.tag)
    return _message(
        links,
        "partner_orientation",
        key,
        to,
        referral_id=referral_id,
        partner_name=partner_name,
        reference=reference,
        territory=territory,
        action_url=links.partner_answer(token),
        expires_on=expires_on,
    )


def partner_reminder(
    links: Links,
    to: Recipient,
    *,
    referral_id: int,
    number: int,
    partner_name: str,
    reference: str,
    sent_on: date,
    token: str,
    expires_on: date,
) -> dict[str, Any]:
    """The ``number``-th reminder of an orientation the partner has not answered."""
    key = f"partner_reminder:{referral_id}:{number}:{to.tag}"
    return _message(
        links,
        "partner_reminder",
        key,
        to,
        referral_id=referral_id,
        partner_name=partner_name,
        reference=reference,
        sent_on=sent_on,
        action_url=links.partner_answer(token),
        expires_on=expires_on,
    )


def partner_answered(
    links: Links,
    to: Recipient,
    *,
    referral_id: int,
    reference: str,
    partner_name: str,
    accepted: bool,
) -> dict[str, Any]:
    """The orientation's owner learns that the partner accepted or declined it (an
    orientation is answered once: the key names the referral and the recipient)."""
    key = f"partner_answered:{referral_id}:{to.tag}"
    return _message(
        links,
        "partner_answered",
        key,
        to,
        referral_id=referral_id,
        reference=reference,
        partner_name=partner_name,
        answer="acceptée" if accepted else "refusée",
        url=links.case(referral_id),
    )


def slot_validated(
    links: Links, to: Recipient, *, referral_id: int, pool_id: int, reference: str, territory: str
) -> dict[str, Any]:
    """The owner or the chantier's CIP/ESP learns that a counted place was validated."""
    key = f"slot_validated:{referral_id}:{pool_id}:{to.id}"
    return _message(
        links,
        "slot_validated",
        key,
        to,
        reference=reference,
        territory=territory,
        url=links.case(referral_id),
    )


def allocation_ready(
    links: Links, to: Recipient, *, run_id: int, count: int, territory: str
) -> dict[str, Any]:
    """A coordinator has ``count`` proposals of one allocation run to validate."""
    key = f"allocation_ready:{run_id}:{to.id}"
    return _message(
        links,
        "allocation_ready",
        key,
        to,
        count=count,
        territory=territory,
        url=links.allocations(),
    )


def commission_rank_reached(
    links: Links, to: Recipient, *, run_id: int, pool_id: int, proposal_id: int, territory: str
) -> dict[str, Any]:
    """The commission passed a unit on to a candidate of the coordinator's territory: one
    more proposal awaits its decision (the ``allocation_ready`` message, one proposal,
    keyed by it, linking to the commission's page). Nothing names the person or the unit."""
    key = f"allocation_ready:{run_id}:{to.id}:rang:{proposal_id}"
    return _message(
        links,
        "allocation_ready",
        key,
        to,
        count=1,
        territory=territory,
        url=links.commission(run_id, pool_id),
    )


def triage_due(
    links: Links, to: Recipient, *, overdue: bool, referral_id: int, reference: str, due_on: date
) -> dict[str, Any]:
    """The owner's triage deadline is within a day (``triage_due_soon``) or past."""
    kind = "triage_overdue" if overdue else "triage_due_soon"
    return _message(
        links,
        kind,
        f"{kind}:{referral_id}:{due_on}",
        to,
        reference=reference,
        due_on=due_on,
        url=links.case(referral_id),
    )


def triage_escalation(
    links: Links,
    to: Recipient,
    *,
    referral_id: int,
    reference: str,
    officer_name: str,
    territory: str,
    due_on: date,
) -> dict[str, Any]:
    """The territory's coordinator learns a referral waits past the escalation delay."""
    key = f"triage_escalation:{referral_id}:{due_on}:{to.id}"
    return _message(
        links,
        "triage_escalation",
        key,
        to,
        reference=reference,
        officer_name=officer_name,
        territory=territory,
        due_on=due_on,
        url=links.case(referral_id),
    )


def outcome_due(
    links: Links, to: Recipient, *, referral_id: int, reference: str, due_on: date
) -> dict[str, Any]:
    """The chantier's CIP/ESP is asked to record the outcome of a help started long ago."""
    key = f"outcome_due:{referral_id}:{to.id}"
    return _message(
        links,
        "outcome_due",
        key,
        to,
        reference=reference,
        due_on=due_on,
        url=links.case(referral_id),
    )


def followup_due(
    links: Links,
    to: Recipient,
    *,
    salarie_id: int,
    reference: str,
    months: int,
    due_on: date,
) -> dict[str, Any]:
    """A CVG post-exit follow-up (3, 6 or 12 months) is due; the link opens its short form."""
    url = links.follow_up(salarie_id, months)
    key = f"followup_due:{salarie_id}:{months}:{to.id}"
    return _message(
        links, "followup_due", key, to, reference=reference, months=months, due_on=due_on, url=url
    )


def digest_item(links: Links, row: m.OutboxMessage) -> dict[str, Any]:
    """One line of a daily digest, from a queued message of a digestible kind."""
    ctx = row.context or {}
    return {
        "kind": row.kind,
        "label": DIGEST_ITEM_LABELS[row.kind],
        "url": ctx.get("url") or ctx.get("action_url") or links.queue(),
        "reference": ctx.get("reference", ""),
        "count": int(ctx.get("count", 1)),
    }


def daily_digest_key(user_id: int, day: date, part: int = 1) -> str:
    """One digest per user and day; a day too long for one mail adds parts 2, 3…"""
    return f"daily_digest:{user_id}:{day}" + (f":{part}" if part > 1 else "")


def partner_digest_item(row: m.OutboxMessage, *, reference: str, territory: str) -> dict[str, Any]:
    """One line of a partner digest, from a queued orientation or reminder. The referral's
    reference and territory come from the orientation itself (a reminder does not carry
    the territory); the rest from the queued context: never a need, never a note."""
    ctx = row.context or {}
    return {
        "kind": row.kind,
        "label": DIGEST_ITEM_LABELS[row.kind],
        "partner_name": ctx["partner_name"],
        "reference": reference,
        "territory": territory,
        "action_url": ctx["action_url"],
        "expires_on": date.fromisoformat(ctx["expires_on"])
        if isinstance(ctx["expires_on"], str)
        else ctx["expires_on"],
    }


def partner_digest_key(to: Recipient, day: date, part: int = 1) -> str:
    return f"partner_digest:{to.tag}:{day}" + (f":{part}" if part > 1 else "")


def partner_digest(
    links: Links, to: Recipient, *, day: date, items: list[dict[str, Any]], part: int = 1
) -> dict[str, Any]:
    """The one mail a day that gathers a partner contact's orientations and reminders
    (always sent immediately, keyed per recipient and day)."""
    msg = _message(
        links, "partner_digest", partner_digest_key(to, day, part), to, day=day, items=items
    )
    msg["mode"] = "immediate"
    return msg


def daily_digest(
    links: Links, to: Recipient, *, day: date, items: list[dict[str, Any]], part: int = 1
) -> dict[str, Any]:
    """The one mail a day that gathers a user's digest items (always sent immediately)."""
    assert to.id is not None, "a daily digest goes to an account"
    msg = _message(
        links,
        "daily_digest",
        daily_digest_key(to.id, day, part),
        to,
        day=day,
        url=links.queue(),
        items=items,
    )
    msg["mode"] = "immediate"
    return msg


# --- messages of the transition door, read from the session ---------------------------


def queue_partner_orientation(
    session: Session, settings: Settings, ref: m.Referral, *, now: datetime
) -> int:
    """The orientation mail to every active contact of the offer's partner."""
    offer = session.get(m.Offer, ref.offer_id)
    assert offer is not None
    partner = session.get(m.Partner, offer.partner_id)
    assert partner is not None
    salarie = session.get(m.Salarie, ref.salarie_id)
    territory = session.get(m.Territory, ref.territory_id) if ref.territory_id else None
    contacts = partner_recipients(session, partner)
    token = partner_token(settings, referral_id=ref.id, partner_id=partner.id, now=now)
    links = Links(settings.base_url)
    expires = (now + timedelta(days=settings.partner_expiry_days)).date()
    return enqueue_many(
        session,
        [
            partner_orientation(
                links,
                c,
                referral_id=ref.id,
                version=ref.version,
                reminders_sent=ref.reminders_sent,
                partner_name=partner.name,
                reference=salarie.reference if salarie else "",
                territory=territory.name if territory else OUTSIDE_TERRITORY,
                token=token,
                expires_on=expires,
            )
            for c in contacts
        ],
        base_url=settings.base_url,
        now=now,
    )


def partner_recipients(session: Session, partner: m.Partner) -> list[Recipient]:
    """Who is told of an orientation to ``partner``: its active contacts, else the
    directory's address of the partner (``Partner.contact_email``), without an account.

    A service imported from data·inclusion has no account; its address is the service's
    public ``courriel``, which the export leaves empty when it is not public: then nobody
    is mailed, and the chargé·e reaches the service by its ``modes_mobilisation``
    (``engine.directory.orientation``)."""
    contacts = session.scalars(
        select(m.StaffUser)
        .where(m.StaffUser.partner_id == partner.id, m.StaffUser.active)
        .order_by(m.StaffUser.id)
    ).all()
    if contacts:
        return [Recipient.of(c) for c in contacts]
    return [Recipient.address(partner.contact_email)] if partner.contact_email else []


def answer_recipients(session: Session, ref: m.Referral) -> list[m.StaffUser]:
    """Who hears a partner's answer: the orientation's owner, else (no active owner) the
    coordination of its territory — the national queue's outside the territories."""
    owner = session.get(m.StaffUser, ref.owner_user_id) if ref.owner_user_id else None
    if owner is not None and owner.active and owner.role != "partner_contact":
        return [owner]
    U = m.StaffUser
    where = (
        U.territory_id == ref.territory_id
        if ref.territory_id is not None
        else U.national_queue.is_(True)
    )
    return list(
        session.scalars(
            select(U).where(U.role == "coordinator", U.active, where).order_by(U.id)
        ).all()
    )


def queue_partner_answered(
    session: Session,
    settings: Settings,
    ref: m.Referral,
    *,
    partner_name: str,
    accepted: bool,
    now: datetime,
) -> int:
    """The team learns that the partner answered (the owner's preference decides when)."""
    salarie = session.get(m.Salarie, ref.salarie_id)
    assert salarie is not None
    links = Links(settings.base_url)
    return enqueue_many(
        session,
        [
            partner_answered(
                links,
                Recipient.of(u),
                referral_id=ref.id,
                reference=salarie.reference,
                partner_name=partner_name,
                accepted=accepted,
            )
            for u in answer_recipients(session, ref)
        ],
        base_url=settings.base_url,
        now=now,
    )


def queue_slot_validated(
    session: Session, settings: Settings, ref: m.Referral, pool: m.SlotPool, *, now: datetime
) -> int:
    """The owner and the chantier's CIP/ESP learn that a place was validated."""
    salarie = session.get(m.Salarie, ref.salarie_id)
    assert salarie is not None
    terr = session.get(m.Territory, ref.territory_id) if ref.territory_id else None
    recipients: list[m.StaffUser] = []
    if ref.owner_user_id:
        owner = session.get(m.StaffUser, ref.owner_user_id)
        if owner is not None and owner.active:
            recipients.append(owner)
    recipients += session.scalars(
        select(m.StaffUser).where(
            m.StaffUser.role == "cip",
            m.StaffUser.chantier_id == ref.chantier_id,
            m.StaffUser.active,
        )
    ).all()
    links = Links(settings.base_url)
    territory = terr.name if terr else OUTSIDE_TERRITORY
    return enqueue_many(
        session,
        [
            slot_validated(
                links,
                Recipient.of(u),
                referral_id=ref.id,
                pool_id=pool.id,
                reference=salarie.reference,
                territory=territory,
            )
            for u in recipients
        ],
        base_url=settings.base_url,
        now=now,
    )
