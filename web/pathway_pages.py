"""The person's pathway page ("Parcours") and its forms: orienté par, housing and health
events, exit, and the CVG follow-ups 3, 6 and 12 months after exit.

Why its own module: these facts are about the person, not one orientation; the page is a
case-file read (logged), its forms are recorded by ``engine.pathway.facts`` — which checks
the reader's right to the person (the chantier's CIP/ESP, the coordination, the national
team), the dates and the codes, and answers in French.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from engine.domain.errors import DomainError, NotFound, Refused
from engine.domain.vocabulary import FOLLOWUP_MONTHS
from engine.pathway.facts import (
    Recorder,
    record_exit,
    record_follow_up,
    record_health_event,
    record_housing_change,
    set_referred_by,
)
from engine.pathway.read import read_pathway
from engine.store.db import unit_of_work
from web.flash import set_flash
from web.pages import CallerDep, PathId
from web.render import render
from web.security import Caller, OutOfScope, check_form_csrf

router = APIRouter(include_in_schema=False)
Months = Annotated[int, Path(ge=1, le=12)]

FACTS = ("referred_by", "housing", "health", "exit")
FLASH = {
    "referred_by": "Orientation d'origine enregistrée.",
    "housing": "Changement de logement enregistré.",
    "health": "Événement santé enregistré.",
    "exit": "Sortie enregistrée ; les orientations en cours de la personne sont annulées.",
}


def _day(value: str | None, field: str) -> date:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        raise Refused(f"{field} : date attendue au format AAAA-MM-JJ") from None


def _page(
    request: Request,
    caller: Caller,
    salarie_id: int,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
    template: str = "salarie.html",
    months: int | None = None,
) -> Response:
    app = request.app.state
    with unit_of_work(app.db, immediate=True) as session:
        file = read_pathway(session, caller.user, salarie_id, now=app.clock.now())
        if file is None:
            raise OutOfScope()
        return render(
            request,
            template,
            {
                "caller": caller,
                "file": file,
                "error": error,
                "form": form or {},
                "today": app.clock.today(),
                "months": months,
            },
            status=status,
        )


@router.get("/salaries/{salarie_id}")
def pathway_page(request: Request, caller: CallerDep, salarie_id: PathId) -> Response:
    return _page(request, caller, salarie_id)


def _record(request: Request, caller: Caller, salarie_id: int, form: dict[str, str]) -> str:
    app = request.app.state
    fact = form.get("fait", "")
    if fact not in FACTS:
        raise Refused("action inconnue")
    who = Recorder.of(caller.user)
    with unit_of_work(app.db, immediate=True) as session:
        clock = app.clock
        if fact == "referred_by":
            set_referred_by(session, who, salarie_id, form.get("referred_by", ""), clock=clock)
        elif fact == "housing":
            on = _day(form.get("on"), "date du changement")
            record_housing_change(
                session, who, salarie_id, on=on, after=form.get("after", ""), clock=clock
            )
        elif fact == "health":
            on = _day(form.get("on"), "date de l'événement")
            record_health_event(
                session, who, salarie_id, on=on, kind=form.get("kind", ""), clock=clock
            )
        else:
            on = _day(form.get("on"), "date de sortie")
            record_exit(
                session,
                app.settings,
                who,
                salarie_id,
                on=on,
                category=form.get("category", ""),
                clock=clock,
            )
    return FLASH[fact]


@router.post("/salaries/{salarie_id}/parcours")
async def pathway_record(request: Request, caller: CallerDep, salarie_id: PathId) -> Response:
    await check_form_csrf(request, caller)
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "csrf_token"}
    try:
        message = await run_in_threadpool(_record, request, caller, salarie_id, form)
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        return _page(
            request,
            caller,
            salarie_id,
            error=f"Saisie impossible : {exc}.",
            form=form,
            status=exc.status,
        )
    return set_flash(request, RedirectResponse(f"/salaries/{salarie_id}", status_code=303), message)


@router.get("/salaries/{salarie_id}/suivi/{months}")
def follow_up_form(
    request: Request, caller: CallerDep, salarie_id: PathId, months: Months
) -> Response:
    if months not in FOLLOWUP_MONTHS:
        raise OutOfScope()
    return _page(request, caller, salarie_id, template="suivi.html", months=months)


def _answer(
    request: Request, caller: Caller, salarie_id: int, months: int, form: dict[str, str]
) -> None:
    app = request.app.state
    housed = {"oui": True, "non": False}.get(form.get("housed", ""))
    with unit_of_work(app.db, immediate=True) as session:
        record_follow_up(
            session,
            Recorder.of(caller.user),
            salarie_id,
            months=months,
            situation=form.get("situation", ""),
            housed=housed,
            clock=app.clock,
        )


@router.post("/salaries/{salarie_id}/suivi/{months}")
async def follow_up_submit(
    request: Request, caller: CallerDep, salarie_id: PathId, months: Months
) -> Response:
    await check_form_csrf(request, caller)
    if months not in FOLLOWUP_MONTHS:
        raise OutOfScope()
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "csrf_token"}
    try:
        await run_in_threadpool(_answer, request, caller, salarie_id, months, form)
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        return _page(
            request,
            caller,
            salarie_id,
            error=f"Saisie impossible : {exc}.",
            form=form,
            status=exc.status,
            template="suivi.html",
            months=months,
        )
    return set_flash(
        request,
        RedirectResponse(f"/salaries/{salarie_id}", status_code=303),
        f"Suivi à {months} mois enregistré.",
    )
