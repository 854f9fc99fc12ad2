"""The partner's answer page, reached from the signed link of an orientation email.

Why without an account: most partners answer a handful of orientations a year. The link is
signed and expires (``engine.links``); the page shows only the pseudonymous reference, the
need (thématique) and the territory, and two POST buttons — accept, or refuse with a coded
reason — applied with ``engine.referrals.transition`` as "partenaire : <nom> (lien signé)".
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from engine import models as m
from engine.db import unit_of_work
from engine.lifecycle import REFUSAL_LABELS, TransitionError
from engine.links import LinkError, read_partner_token
from engine.referrals import Actor, NotFound, StaleEdit, transition
from web.render import render
from web.security import CsrfRejected, partner_form_token

router = APIRouter(include_in_schema=False)


def _secret(request: Request) -> str:
    return request.app.state.settings.secret_key.get_secret_value()


def _load(request: Request, token: str):  # type: ignore[no-untyped-def]
    """(referral id, partner id) of a valid link, or a LinkError with a French message."""
    settings = request.app.state.settings
    return read_partner_token(
        _secret(request), token, max_age_s=settings.partner_expiry_days * 86400
    )


def _page(request: Request, token: str, *, status: int = 200, error: str | None = None,
          flash: str | None = None, form: dict[str, str] | None = None) -> Response:  # fmt: skip
    try:
        referral_id, partner_id = _load(request, token)
    except LinkError as exc:
        return render(request, "error.html", {"title": "Lien invalide", "message": str(exc)[:1].upper() + str(exc)[1:] + "."}, status=404)  # fmt: skip
    with unit_of_work(request.app.state.db) as session:
        ref = session.get(m.Referral, referral_id)
        offer = session.get(m.Offer, ref.offer_id) if ref and ref.offer_id else None
        if ref is None or offer is None or offer.partner_id != partner_id:
            return render(request, "error.html", {"title": "Lien invalide",
                          "message": "Ce lien ne correspond à aucune orientation en cours."},
                          status=404)  # fmt: skip
        partner = session.get(m.Partner, partner_id)
        salarie = session.get(m.Salarie, ref.salarie_id)
        territory = session.get(m.Territory, ref.territory_id) if ref.territory_id else None
        ctx = {
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
            "flash": flash,
            "form": form or {},
        }
    return render(request, "partner_answer.html", ctx, status=status)


@router.get("/partenaire/reponse/{token}")
def partner_answer_page(request: Request, token: str, fait: str = "") -> Response:
    flash = {"accepter": "Merci : l'orientation est acceptée. L'équipe est prévenue.",
             "refuser": "Merci : votre refus est enregistré avec son motif."}.get(fait)  # fmt: skip
    return _page(request, token, flash=flash)


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
    version = int(form["version"]) if form.get("version", "").isdigit() else None
    try:
        with unit_of_work(request.app.state.db) as session:
            ref = session.get(m.Referral, referral_id)
            offer = session.get(m.Offer, ref.offer_id) if ref and ref.offer_id else None
            if ref is None or offer is None or offer.partner_id != partner_id:
                raise NotFound("orientation introuvable")
            partner = session.get(m.Partner, partner_id)
            label = f"partenaire : {partner.name if partner else partner_id}"[:66] + " (lien signé)"
            actor = Actor(None, label)
            if ref.state != "referred":
                raise TransitionError("cette orientation a déjà reçu une réponse")
            if decision == "accepter":
                transition(session, request.app.state.settings, referral_id, "partner_accept",
                           actor=actor, expected_version=version)  # fmt: skip
            else:
                note = form.get("note", "").strip() or None
                transition(session, request.app.state.settings, referral_id, "refuse",
                           actor=actor, expected_version=version,
                           reason=form.get("reason") or None, note=note)  # fmt: skip
    except NotFound:
        return _page(request, token)
    except StaleEdit as exc:
        return _page(request, token, status=409, error=str(exc), form=form)
    except TransitionError as exc:
        msg = str(exc)
        return _page(request, token, status=422, error=msg[:1].upper() + msg[1:] + ".", form=form)
    return RedirectResponse(f"/partenaire/reponse/{token}?fait={decision}", status_code=303)
