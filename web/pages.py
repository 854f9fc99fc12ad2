"""Server-rendered French pages of the staff: login, queue, case file, allocation, directory.

Why thin handlers: each one reads the form, opens one unit of work, calls an engine use case
or query, and renders; permissions come from ``engine.permissions`` through the queries and
``transition``, so an out-of-scope id is a 404 here exactly as it is in the API. No handler
changes anything on GET; every POST checks the session's CSRF token first.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from engine import models as m
from engine.auth import LoginFailed, RateLimited, login, logout
from engine.db import unit_of_work
from engine.lifecycle import BY_ACTION, STATES, TransitionError
from engine.permissions import can
from engine.preferences import MODE_LABELS, PreferenceError, get_preferences, set_preferences
from engine.queries import (
    SORTS,
    BadCursor,
    QueueFilters,
    access_log,
    allocation_review,
    list_queue,
    partner_directory,
    pools_overview,
    read_case_file,
)
from engine.referrals import Actor, NotFound, StaleEdit, transition
from partners.taxonomy import DOMAINS
from web.actions import bulk_apply, parse_selection
from web.render import render
from web.security import (
    SESSION_COOKIE,
    Caller,
    OutOfScope,
    check_form_csrf,
    check_login_csrf,
    clear_session_cookie,
    current_caller,
    login_csrf,
    page_caller,
    set_login_csrf_cookie,
    set_session_cookie,
)

router = APIRouter(include_in_schema=False)
CallerDep = Annotated[Caller, Depends(page_caller)]


def _db(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.db


def _settings(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.settings


def _actor(user: m.StaffUser) -> Actor:
    return Actor(user, user.email[:80])


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/file"


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


# --- login / logout --------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/file" if current_caller(request) else "/connexion", status_code=303)


def _login_page(request: Request, *, email: str = "", suivant: str = "", error: str | None = None,
                status: int = 200, flash: str | None = None) -> Response:  # fmt: skip
    token = login_csrf(request)
    response = render(
        request, "login.html",
        {"csrf_token": token, "email": email, "suivant": suivant, "error": error, "flash": flash},
        status=status,
    )  # fmt: skip
    set_login_csrf_cookie(request, response, token)
    return response


@router.get("/connexion")
def login_form(request: Request, suivant: str = "", deconnecte: int = 0) -> Response:
    flash = "Vous êtes déconnecté·e." if deconnecte else None
    return _login_page(request, suivant=suivant, flash=flash)


@router.post("/connexion")
async def login_submit(request: Request) -> Response:
    await check_login_csrf(request)
    form = await request.form()
    email = str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    suivant = str(form.get("suivant", ""))
    ip = request.client.host if request.client else ""
    try:
        new = login(_db(request), email, password, ip=ip,
                    replaces=request.cookies.get(SESSION_COOKIE))  # fmt: skip
    except RateLimited as exc:
        return _login_page(request, email=email, suivant=suivant, error=str(exc), status=429)
    except LoginFailed as exc:
        return _login_page(request, email=email, suivant=suivant, error=str(exc), status=401)
    response = RedirectResponse(_safe_next(suivant), status_code=303)
    set_session_cookie(request, response, new.token)
    return response


@router.post("/deconnexion")
async def logout_submit(request: Request, caller: CallerDep) -> Response:
    await check_form_csrf(request, caller)
    logout(_db(request), request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/connexion?deconnecte=1", status_code=303)
    clear_session_cookie(request, response)
    return response


# --- queue -----------------------------------------------------------------------------


def _filters(request: Request) -> QueueFilters:
    q = request.query_params
    return QueueFilters(
        domain=_str(q.get("domaine")) if q.get("domaine") in DOMAINS else None,
        territory=_str(q.get("territoire")),
        state=_str(q.get("etat")) or "open",
        chantier=_str(q.get("chantier")),
        programme=_str(q.get("programme")) if q.get("programme") in ("cvg", "phc") else None,
        mine=q.get("moi") == "1",
        sort=q.get("tri") if q.get("tri") in SORTS else "priority",
    )


def _queue_params(f: QueueFilters) -> dict[str, str]:
    params = {
        "domaine": f.domain or "", "territoire": f.territory or "", "etat": f.state or "",
        "chantier": f.chantier or "", "programme": f.programme or "",
        "moi": "1" if f.mine else "", "tri": f.sort,
    }  # fmt: skip
    return {k: v for k, v in params.items() if v}


@router.get("/file")
def queue_page(request: Request, caller: CallerDep, apres: str | None = None) -> Response:
    user = caller.user
    filters = _filters(request)
    with unit_of_work(_db(request)) as session:
        try:
            page = list_queue(session, user, filters, after=apres, limit=50)
        except BadCursor:
            raise OutOfScope() from None
        territories = session.scalars(select(m.Territory).order_by(m.Territory.name)).all()
        chantiers_q = select(m.Chantier).order_by(m.Chantier.name)
        if user.role == "cip":
            chantiers_q = chantiers_q.where(m.Chantier.id == user.chantier_id)
        elif user.role in ("officer", "coordinator") and user.territory_id is not None:
            chantiers_q = chantiers_q.where(m.Chantier.territory_id == user.territory_id)
        chantiers = session.scalars(chantiers_q).all()
        assignees: list[m.StaffUser] = []
        if user.role in ("coordinator", "national_admin"):
            aq = select(m.StaffUser).where(m.StaffUser.active, m.StaffUser.role == "officer")
            if user.role == "coordinator":
                aq = aq.where(m.StaffUser.territory_id == user.territory_id)
            assignees = list(session.scalars(aq.order_by(m.StaffUser.display_name)))
        owners = {
            u.id: u.display_name
            for u in session.scalars(
                select(m.StaffUser).where(
                    m.StaffUser.id.in_({r.owner_user_id for r in page.rows} - {None})
                )
            )
        }
    next_url = None
    if page.next_cursor:
        next_url = "/file?" + urlencode({**_queue_params(filters), "apres": page.next_cursor})
    q = request.query_params
    flash = None
    if q.get("fait") in ("take", "assign"):
        done, failed = _int(q.get("n")) or 0, _int(q.get("echecs")) or 0
        verb = "prise(s) en charge" if q.get("fait") == "take" else "attribuée(s)"
        flash = f"{done} orientation(s) {verb}."
        if failed:
            flash += (
                f" {failed} n'ont pas pu l'être : modifiées entre-temps par quelqu'un d'autre "
                "ou action impossible dans leur état."
            )
    return render(
        request, "queue.html",
        {"caller": caller, "page": page, "filters": filters, "territories": territories,
         "chantiers": chantiers, "assignees": assignees, "owners": owners, "next_url": next_url,
         "states": STATES, "domains": DOMAINS, "flash": flash,
         "can_take": user.role in ("officer", "coordinator", "national_admin"),
         "can_assign": bool(assignees)},
    )  # fmt: skip


@router.post("/file/actions")
async def queue_bulk(request: Request, caller: CallerDep) -> Response:
    await check_form_csrf(request, caller)
    form = await request.form()
    action = str(form.get("action", ""))
    if action not in ("take", "assign"):
        return render(request, "error.html", {"caller": caller, "title": "Action inconnue",
                      "message": "Choisissez « Prendre en charge » ou « Attribuer »."}, status=422)  # fmt: skip
    selection = parse_selection([str(v) for v in form.getlist("selection")])
    result = bulk_apply(
        _db(request), _settings(request), caller.user, action, selection,
        assignee_id=_int(form.get("assignee")),
    )  # fmt: skip
    back = "/file?" + urlencode({"fait": action, "n": result.done, "echecs": len(result.failed)})
    return RedirectResponse(back, status_code=303)


# --- case file -------------------------------------------------------------------------


def _case_response(request: Request, caller: Caller, referral_id: int, *, error: str | None = None,
                   form: dict[str, str] | None = None, failed_action: str | None = None,
                   status: int = 200, flash: str | None = None) -> Response:  # fmt: skip
    with unit_of_work(_db(request)) as session:
        case = read_case_file(session, caller.user, referral_id)
        if case is None:
            raise OutOfScope()
        response = render(
            request, "case.html",
            {"caller": caller, "case": case, "error": error, "form": form or {},
             "failed_action": failed_action, "flash": flash,
             "failed_still_possible": any(t.action == failed_action for t in case.actions)},
            status=status,
        )  # fmt: skip
    return response


@router.get("/orientations/{referral_id}")
def case_page(request: Request, caller: CallerDep, referral_id: int, fait: str = "") -> Response:
    flash = None
    if fait in BY_ACTION:
        flash = f"Action enregistrée : {BY_ACTION[fait].label}."
    return _case_response(request, caller, referral_id, flash=flash)


@router.post("/orientations/{referral_id}/actions")
async def case_action(request: Request, caller: CallerDep, referral_id: int) -> Response:
    await check_form_csrf(request, caller)
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "csrf_token"}
    action = form.get("action", "")
    try:
        with unit_of_work(_db(request)) as session:
            transition(
                session, _settings(request), referral_id, action,
                actor=_actor(caller.user), expected_version=_int(form.get("version")),
                outcome=_str(form.get("outcome")), reason=_str(form.get("reason")),
                note=_str(form.get("note")), offer_id=_int(form.get("offer_id")),
                pool_id=_int(form.get("pool_id")), new_owner_id=_int(form.get("new_owner_id")),
            )  # fmt: skip
    except NotFound:
        raise OutOfScope() from None
    except StaleEdit as exc:
        return _case_response(request, caller, referral_id, error=str(exc), form=form,
                              failed_action=action, status=409)  # fmt: skip
    except PermissionError as exc:
        return _case_response(request, caller, referral_id, error=f"Action refusée : {exc}.",
                              form=form, failed_action=action, status=403)  # fmt: skip
    except TransitionError as exc:
        return _case_response(request, caller, referral_id, error=f"Action impossible : {exc}.",
                              form=form, failed_action=action, status=422)  # fmt: skip
    return RedirectResponse(f"/orientations/{referral_id}?fait={action}", status_code=303)


# --- allocation review -----------------------------------------------------------------


def _allocation_page(request: Request, caller: Caller, *, status: int = 200,
                     error: str | None = None, flash: str | None = None,
                     simulation: list[str] | None = None) -> Response:  # fmt: skip
    if not can(caller.user, "review_allocation"):
        raise OutOfScope()
    with unit_of_work(_db(request)) as session:
        review = allocation_review(session, caller.user)
        return render(
            request, "allocation.html",
            {"caller": caller, "review": review, "error": error, "flash": flash,
             "simulation": simulation},
            status=status,
        )  # fmt: skip


@router.get("/attributions")
def allocation_page(request: Request, caller: CallerDep) -> Response:
    fait = request.query_params.get("fait")
    flash = {"valider": "Proposition validée : la place est attribuée.",
             "decliner": "Proposition déclinée : la personne reste en attente."}.get(fait or "")  # fmt: skip
    return _allocation_page(request, caller, flash=flash)


@router.post("/attributions/{proposal_id}/{decision}")
async def allocation_decide(request: Request, caller: CallerDep, proposal_id: int,
                            decision: str) -> Response:  # fmt: skip
    await check_form_csrf(request, caller)
    if decision not in ("valider", "decliner") or not can(caller.user, "review_allocation"):
        raise OutOfScope()
    from engine.allocation import decline_proposal, validate_proposal

    form = await request.form()
    version = _int(form.get("version"))
    try:
        with unit_of_work(_db(request)) as session:
            if decision == "valider":
                validate_proposal(session, _settings(request), proposal_id,
                                  actor=_actor(caller.user), expected_version=version)  # fmt: skip
            else:
                decline_proposal(session, _settings(request), proposal_id,
                                 actor=_actor(caller.user), reason=str(form.get("reason", "")),
                                 expected_version=version)  # fmt: skip
    except NotFound:
        raise OutOfScope() from None
    except StaleEdit as exc:
        return _allocation_page(request, caller, status=409, error=str(exc))
    except PermissionError as exc:
        return _allocation_page(request, caller, status=403, error=f"Action refusée : {exc}.")
    except TransitionError as exc:
        return _allocation_page(request, caller, status=422, error=f"Action impossible : {exc}.")
    return RedirectResponse(f"/attributions?fait={decision}", status_code=303)


@router.post("/attributions/simulation")
async def allocation_dry_run(request: Request, caller: CallerDep) -> Response:
    await check_form_csrf(request, caller)
    if not can(caller.user, "allocate"):
        raise OutOfScope()
    from engine.allocation import AllocationBusy, run_allocation

    territory = None
    if caller.user.role == "coordinator" and caller.user.territory_id is not None:
        with unit_of_work(_db(request)) as session:
            territory = session.scalar(
                select(m.Territory.code).where(m.Territory.id == caller.user.territory_id)
            )
    try:
        report = run_allocation(_db(request), _settings(request), territory=territory,
                                dry_run=True, actor_user_id=caller.user.id)  # fmt: skip
    except AllocationBusy as exc:
        return _allocation_page(request, caller, status=409, error=str(exc))
    return _allocation_page(request, caller, simulation=report.lines_fr())


# --- pools, partners, preferences, access log ------------------------------------------


@router.get("/places")
def pools_page(request: Request, caller: CallerDep) -> Response:
    if not can(caller.user, "read"):
        raise OutOfScope()
    with unit_of_work(_db(request)) as session:
        pools = pools_overview(session, caller.user)
    return render(request, "pools.html", {"caller": caller, "pools": pools})


@router.get("/partenaires")
def partners_page(request: Request, caller: CallerDep) -> Response:
    if not can(caller.user, "read"):
        raise OutOfScope()
    q = request.query_params
    territory = _str(q.get("territoire"))
    domain = q.get("domaine") if q.get("domaine") in DOMAINS else None
    with unit_of_work(_db(request)) as session:
        rows = partner_directory(session, caller.user, territory=territory, domain=domain)
        territories = session.scalars(select(m.Territory).order_by(m.Territory.name)).all()
    return render(
        request, "partners.html",
        {"caller": caller, "rows": rows, "territories": territories, "domains": DOMAINS,
         "territory": territory, "domain": domain},
    )  # fmt: skip


@router.get("/preferences")
def preferences_page(request: Request, caller: CallerDep, enregistre: int = 0) -> Response:
    with unit_of_work(_db(request)) as session:
        rows = get_preferences(session, caller.user)
    flash = "Vos préférences sont enregistrées." if enregistre else None
    return render(request, "preferences.html",
                  {"caller": caller, "rows": rows, "modes": MODE_LABELS, "flash": flash})  # fmt: skip


@router.post("/preferences")
async def preferences_submit(request: Request, caller: CallerDep) -> Response:
    await check_form_csrf(request, caller)
    form = await request.form()
    choices = {k.removeprefix("mode_"): str(v) for k, v in form.items() if k.startswith("mode_")}
    try:
        with unit_of_work(_db(request)) as session:
            set_preferences(session, caller.user, choices)
    except PreferenceError as exc:
        with unit_of_work(_db(request)) as session:
            rows = get_preferences(session, caller.user)
        return render(request, "preferences.html",
                      {"caller": caller, "rows": rows, "modes": MODE_LABELS,
                       "error": str(exc)}, status=422)  # fmt: skip
    return RedirectResponse("/preferences?enregistre=1", status_code=303)


@router.get("/journal-acces")
def access_log_page(request: Request, caller: CallerDep, avant: int | None = None) -> Response:
    if not can(caller.user, "view_access_log"):
        raise OutOfScope()
    with unit_of_work(_db(request)) as session:
        rows, nxt = access_log(session, caller.user, before_id=avant)
    return render(request, "access_log.html",
                  {"caller": caller, "rows": rows, "next_id": nxt})  # fmt: skip
