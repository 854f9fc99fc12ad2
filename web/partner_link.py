"""The partner's answer page, reached from the signed link of an orientation email.

Why without an account: most partners answer a handful of orientations a year. The link is
signed and expires (``engine.access.tokens``); the page shows only the pseudonymous reference, the
need (thématique) and the territory, and two POST buttons — accept, or refuse with a coded
reason — applied through the transition door as the partner (``Actor.partner_link``). Every
view of the page is a read of the case file, so it is access-logged like any other.

The page also names the partner's contact person — the orientation's owner (else the
territory's coordination) — and the next step. It says the team is informed only when the
door really wrote the ``partner_answered`` message to them (the outbox row is read back).
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response

from engine.access.tokens import LinkError, read_partner_token
from engine.domain.errors import DomainError, NotFound, sentence
from engine.domain.labels import ROLE_LABELS
from engine.domain.lifecycle import REFUSAL_LABELS
from engine.outbox.messages import answer_recipients
from engine.referrals.actions import Actor, StaleEdit, transition
from engine.store import models as m
from engine.store.db import unit_of_work
from web.flash import set_flash
from web.render import render
from web.security import CsrfRejected, partner_form_token

router = APIRouter(include_in_schema=False)
INVALID = "Ce lien ne correspond à aucune orientation en cours."


def _secret(request: Request) -> str:
    return request.app.state.settings.secret_key.get_secret_value()


def _load(request: Request, token: str) -> tuple[int, int]:
    """(referral id, partner id) of a valid link, or a LinkError with a French message."""
    settings = request.app.state.settings
    return read_partner_token(
        _secret(request),
        token[:500],
        max_age_s=settings.partner_expiry_days * 86400,
        now=request.app.state.clock.now(),
    )


def _invalid(request: Request, message: str = INVALID) -> Response:
    return render(request, "error.html", {"title": "Lien invalide", "message": message}, status=404)


def _page(
    request: Request,
    token: str,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    try:
        referral_id, partner_id = _load(request, token)
    except LinkError as exc:
        return _invalid(request, sentence(str(exc)))
    now = request.app.state.clock.now()
    with unit_of_work(request.app.state.db, immediate=True) as session:
        ref = session.get(m.Referral, referral_id)
        offer = session.get(m.Offer, ref.offer_id) if ref and ref.offer_id else None
        if ref is None or offer is None or offer.partner_id != partner_id:
            return _invalid(request)
        partner = session.get(m.Partner, partner_id)
        salarie = session.get(m.Salarie, ref.salarie_id)
        territory = session.get(m.Territory, ref.territory_id) if ref.territory_id else None
        session.add(
            m.AccessLog(
                user_id=None,
                reader=Actor.partner_link(partner_id, partner.name if partner else "?").label,
                salarie_id=ref.salarie_id,
                at=now,
                purpose="réponse du partenaire (lien signé)",
                with_identity=False,
            )
        )
        ctx = {
            **_follow_up(session, ref),
            "token": token,
            "csrf_token": partner_form_token(_secret(request), token),
            "reference": salarie.reference if salarie else "",
            "thematique": ref.thematique,
            "territory": territory.name if territory else "Hors territoire",
            "partner_name": partner.name if partner else "",
            "offer_name": offer.name,
            "state": ref.state,
            "open": ref.state == "referred",
            "version": ref.version,
            "reasons": REFUSAL_LABELS,
            "error": error,
            "form": form or {},
        }
    return render(request, "partner_answer.html", ctx, status=status)


def _follow_up(session: Session, ref: m.Referral) -> dict[str, Any]:
    """Who the partner deals with, whether the partner answered, and whether that person
    really is informed (a ``partner_answered`` row of the outbox for this referral)."""
    people = answer_recipients(session, ref)
    contact = people[0] if people else None
    answer = session.scalar(
        select(m.ReferralEvent)
        .where(
            m.ReferralEvent.referral_id == ref.id,
            m.ReferralEvent.from_state == "referred",
            m.ReferralEvent.to_state == ref.state,
        )
        .order_by(m.ReferralEvent.id.desc())
        .limit(1)
    )
    by_partner = answer is not None and answer.actor_label.startswith("partenaire :")
    if answer is not None and not by_partner and answer.actor_user_id is not None:
        author = session.get(m.StaffUser, answer.actor_user_id)
        by_partner = author is not None and author.role == "partner_contact"
    told = session.execute(
        select(m.OutboxMessage.delivery, m.OutboxMessage.status)
        .where(
            m.OutboxMessage.kind == "partner_answered",
            m.OutboxMessage.referral_id == ref.id,
            m.OutboxMessage.status.in_(("pending", "sent", "digested")),
        )
        .limit(1)
    ).first()
    return {
        "contact_name": contact.display_name if contact else None,
        "contact_role": ROLE_LABELS.get(contact.role, "") if contact else "",
        "contact_email": contact.email if contact else None,
        "answer_due": ref.due_at if ref.state == "referred" else None,
        "answered_by_partner": by_partner,
        # "digest": in the contact's daily digest; "immediate": a mail of its own; None: no mail.
        "informed": told[0] if told else None,
    }


@router.get("/partenaire/reponse/{token}")
def partner_answer_page(request: Request, token: str) -> Response:
    return _page(request, token)


def _answer(
    request: Request, referral_id: int, partner_id: int, decision: str, form: dict[str, str]
) -> None:
    version = (
        int(form["version"])
        if form.get("version", "").isdigit() and int(form["version"]) <= m.MAX_ID
        else None
    )
    with unit_of_work(request.app.state.db, immediate=True) as session:
        ref = session.get(m.Referral, referral_id)
        offer = session.get(m.Offer, ref.offer_id) if ref and ref.offer_id else None
        if ref is None or offer is None or offer.partner_id != partner_id:
            raise NotFound("orientation introuvable")
        partner = session.get(m.Partner, partner_id)
        actor = Actor.partner_link(partner_id, partner.name if partner else str(partner_id))
        if ref.state != "referred":
            raise (
                StaleEdit(ref.version)
                if version is not None and version != ref.version
                else NotFound("orientation introuvable")
            )
        settings, clock = request.app.state.settings, request.app.state.clock
        if decision == "accepter":
            transition(
                session,
                settings,
                referral_id,
                "partner_accept",
                actor=actor,
                clock=clock,
                expected_version=version,
            )
        else:
            transition(
                session,
                settings,
                referral_id,
                "refuse",
                actor=actor,
                clock=clock,
                expected_version=version,
                reason=form.get("reason") or None,
                note=form.get("note") or None,
            )


@router.post("/partenaire/reponse/{token}")
async def partner_answer_submit(request: Request, token: str) -> Response:
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "csrf_token"}
    sent = str(raw.get("csrf_token", ""))
    if not hmac.compare_digest(sent.encode(), partner_form_token(_secret(request), token).encode()):
        raise CsrfRejected()
    try:
        referral_id, partner_id = _load(request, token)
    except LinkError:
        return _page(request, token)
    decision = form.get("decision")
    if decision not in ("accepter", "refuser"):
        return _page(request, token, status=422, error="Choisissez d'accepter ou de refuser.")
    try:
        await run_in_threadpool(_answer, request, referral_id, partner_id, decision, form)
    except NotFound:
        return _page(request, token)
    except DomainError as exc:
        return _page(request, token, status=exc.status, error=sentence(str(exc)), form=form)
    message = {
        "accepter": "Merci : l'orientation est acceptée.",
        "refuser": "Merci : votre refus est enregistré avec son motif.",
    }[decision]
    return set_flash(
        request, RedirectResponse(f"/partenaire/reponse/{token}", status_code=303), message
    )
