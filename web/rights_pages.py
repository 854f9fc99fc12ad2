"""The person's rights and the data lifetime, in the browser: find a person, show and export
all that is held on them, rectify their identity, erase their file after a confirmation;
the territories' retention; the CIP/ESP's list of files announced for anonymisation.

Why thin handlers over ``engine.retention.rights``: the engine checks the role (national
admin), logs every read (access log) and write (audit), validates every field in French;
here anyone else gets the same 404 as a missing page, and nothing changes on GET but the
access log.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from engine.domain.errors import DomainError, NotFound
from engine.domain.labels import plural
from engine.retention.policy import set_territory_retention, territory_retentions
from engine.retention.rights import (
    announced_files,
    erase_person,
    erasure_check,
    export_person,
    read_identity,
    rectify_identity,
    search_people,
)
from engine.store.db import unit_of_work
from web.flash import set_flash
from web.pages import CallerDep, PathId
from web.render import render
from web.security import Caller, OutOfScope, check_form_csrf

router = APIRouter(include_in_schema=False)
SearchText = Annotated[str | None, Query(max_length=200)]
STATUS_LABELS = {
    "annonce": "Anonymisation annoncée",
    "conserve": "Conservé : place comptée ou proposition en cours",
    "a_annoncer": "Avis à venir",
}


def _admin(caller: Caller) -> None:
    if not caller.user.active or caller.user.role != "national_admin":
        raise OutOfScope()


async def _form(request: Request, caller: Caller) -> dict[str, str]:
    await check_form_csrf(request, caller)
    raw = await request.form()
    return {k: str(v) for k, v in raw.items() if k != "csrf_token"}


# --- search -----------------------------------------------------------------------------


@router.get("/droits")
def rights_home(
    request: Request,
    caller: CallerDep,
    reference: SearchText = None,
    nom: SearchText = None,
    prenom: SearchText = None,
    naissance: SearchText = None,
) -> Response:
    _admin(caller)
    app = request.app.state
    asked = any((reference, nom, prenom, naissance))
    matches, error, status = [], None, 200
    if asked:
        try:
            with unit_of_work(app.db, immediate=True) as session:
                matches = search_people(
                    session, caller.user, reference=reference, last_name=nom,
                    first_name=prenom, birth_date=naissance, now=app.clock.now(),
                )  # fmt: skip
        except DomainError as exc:
            error, status = f"Recherche impossible : {exc}.", exc.status
    return render(
        request,
        "droits.html",
        {
            "caller": caller,
            "asked": asked,
            "matches": matches,
            "count": plural(len(matches), "personne trouvée", "personnes trouvées"),
            "query": {
                "reference": reference or "",
                "nom": nom or "",
                "prenom": prenom or "",
                "naissance": naissance or "",
            },
            "error": error,
        },  # fmt: skip
        status=status,
    )


# --- the territories' retention (before /droits/{id}: routes match in order) ---------------


def _policy_page(
    request: Request, caller: Caller, *, error: str | None = None, status: int = 200
) -> Response:
    app = request.app.state
    with unit_of_work(app.db) as session:
        territories = territory_retentions(session)
    return render(
        request,
        "droits_conservation.html",
        {"caller": caller, "territories": territories, "settings": app.settings, "error": error},
        status=status,
    )


@router.get("/droits/conservation")
def policy_page(request: Request, caller: CallerDep) -> Response:
    _admin(caller)
    return _policy_page(request, caller)


def _set_policy(request: Request, caller: Caller, form: dict[str, str]) -> str:
    app = request.app.state
    with unit_of_work(app.db, immediate=True) as session:
        done = set_territory_retention(
            session, caller.user, form.get("territoire", "")[:80], form.get("mois", "")[:20],
            clock=app.clock,
        )  # fmt: skip
    value = f"{done.months} mois" if done.months is not None else "la durée nationale"
    return f"Conservation des dossiers de {done.name} : {value}."


@router.post("/droits/conservation")
async def policy_submit(request: Request, caller: CallerDep) -> Response:
    _admin(caller)
    form = await _form(request, caller)
    try:
        message = await run_in_threadpool(_set_policy, request, caller, form)
    except DomainError as exc:
        return _policy_page(
            request, caller, error=f"Modification refusée : {exc}.",
            status=422 if exc.status == 404 else exc.status,
        )  # fmt: skip
    return set_flash(request, RedirectResponse("/droits/conservation", status_code=303), message)


# --- what is held: page and JSON -------------------------------------------------------


def _export(request: Request, caller: Caller, salarie_id: int) -> dict:  # type: ignore[type-arg]
    app = request.app.state
    try:
        with unit_of_work(app.db, immediate=True) as session:
            return export_person(session, caller.user, salarie_id, now=app.clock.now())
    except NotFound:
        raise OutOfScope() from None


@router.get("/droits/{salarie_id}")
def rights_person(request: Request, caller: CallerDep, salarie_id: PathId) -> Response:
    _admin(caller)
    data = _export(request, caller, salarie_id)
    return render(
        request,
        "droits_personne.html",
        {"caller": caller, "data": data, "salarie_id": salarie_id},
    )


@router.get("/droits/{salarie_id}/export.json")
def rights_export(request: Request, caller: CallerDep, salarie_id: PathId) -> Response:
    _admin(caller)
    data = _export(request, caller, salarie_id)
    name = f"donnees-{data['personne']['reference']}.json"
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2) + "\n",
        media_type="application/json; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


# --- rectification ----------------------------------------------------------------------


def _identity_page(
    request: Request,
    caller: Caller,
    salarie_id: int,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    app = request.app.state
    try:
        with unit_of_work(app.db, immediate=True) as session:
            view = read_identity(session, caller.user, salarie_id, now=app.clock.now())
            i = view.identity
            stored = {
                "last_name": i.last_name if i else "",
                "first_name": i.first_name if i else "",
                "birth_date": i.birth_date.isoformat() if i and i.birth_date else "",
                "phone": (i.phone or "") if i else "",
                "email": (i.email or "") if i else "",
            }
            # What was typed (a refused form), shown back; every field of the form defined.
            values = {k: (form.get(k, "")[:400] if form else v) for k, v in stored.items()}
    except NotFound:
        raise OutOfScope() from None
    return render(
        request,
        "droits_rectification.html",
        {"caller": caller, "view": view, "values": values, "error": error},
        status=status,
    )


@router.get("/droits/{salarie_id}/rectification")
def rectify_form(request: Request, caller: CallerDep, salarie_id: PathId) -> Response:
    _admin(caller)
    return _identity_page(request, caller, salarie_id)


def _rectify(request: Request, caller: Caller, salarie_id: int, form: dict[str, str]) -> list[str]:
    app = request.app.state
    with unit_of_work(app.db, immediate=True) as session:
        return rectify_identity(session, caller.user, salarie_id, form, clock=app.clock)


@router.post("/droits/{salarie_id}/rectification")
async def rectify_submit(request: Request, caller: CallerDep, salarie_id: PathId) -> Response:
    _admin(caller)
    form = await _form(request, caller)
    try:
        changed = await run_in_threadpool(_rectify, request, caller, salarie_id, form)
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        return _identity_page(
            request, caller, salarie_id, form=form, error=f"Rectification refusée : {exc}.",
            status=exc.status,
        )  # fmt: skip
    message = (
        "Identité rectifiée : " + ", ".join(changed) + "."
        if changed
        else "Identité inchangée : les valeurs saisies étaient déjà enregistrées."
    )
    return set_flash(request, RedirectResponse(f"/droits/{salarie_id}", status_code=303), message)


# --- erasure ----------------------------------------------------------------------------


def _erase_page(
    request: Request, caller: Caller, salarie_id: int, *, error: str | None = None,
    status: int = 200,
) -> Response:  # fmt: skip
    app = request.app.state
    try:
        with unit_of_work(app.db) as session:
            check = erasure_check(session, caller.user, salarie_id)
    except NotFound:
        raise OutOfScope() from None
    return render(
        request,
        "droits_effacement.html",
        {"caller": caller, "check": check, "error": error},
        status=status,
    )


@router.get("/droits/{salarie_id}/effacement")
def erase_form(request: Request, caller: CallerDep, salarie_id: PathId) -> Response:
    _admin(caller)
    return _erase_page(request, caller, salarie_id)


@router.post("/droits/{salarie_id}/effacement")
async def erase_submit(request: Request, caller: CallerDep, salarie_id: PathId) -> Response:
    _admin(caller)
    form = await _form(request, caller)
    app = request.app.state
    try:
        counts = await run_in_threadpool(
            erase_person, app.db, caller.user, salarie_id, form.get("confirmation", ""),
            clock=app.clock,
        )  # fmt: skip
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        return _erase_page(
            request, caller, salarie_id, error=f"Effacement refusé : {exc}.", status=exc.status
        )
    message = (
        "Dossier anonymisé : identité supprimée, "
        + plural(counts["notes"], "note supprimée", "notes supprimées")
        + ", "
        + plural(counts["referrals"], "orientation gardée", "orientations gardées")
        + " sans texte libre ni date précise."
    )
    return set_flash(request, RedirectResponse(f"/droits/{salarie_id}", status_code=303), message)


# --- the CIP/ESP's files announced for anonymisation (linked from the notice) -------------


@router.get("/dossiers/anonymisation")
def announced_page(request: Request, caller: CallerDep) -> Response:
    if caller.user.role not in ("cip", "national_admin") or not caller.user.active:
        raise OutOfScope()
    app = request.app.state
    with unit_of_work(app.db) as session:
        rows = announced_files(session, app.settings, caller.user, today=app.clock.today())
    return render(
        request,
        "droits_echeances.html",
        {
            "caller": caller,
            "rows": rows,
            "labels": STATUS_LABELS,
            "count": plural(len(rows), "dossier", "dossiers"),
            "notice_days": app.settings.retention_notice_days,
        },
    )
