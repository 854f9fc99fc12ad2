"""Server-rendered French pages of the staff: login, queue, case file, allocation, directory.

Why thin handlers: each one reads the form, opens one unit of work, calls an engine use case
or query, and renders; permissions come from ``engine.access.permissions`` through the queries and
``transition``, so an out-of-scope id is a 404 here exactly as it is in the API. No handler
changes anything on GET; every POST checks the session's CSRF token first.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from engine.access.auth import LoginFailed, RateLimited, login, logout
from engine.access.log import access_log
from engine.access.permissions import can
from engine.allocation.review import allocation_review, pools_overview
from engine.domain.errors import Conflict, DomainError, Forbidden, Refused, sentence
from engine.domain.labels import ACTION_LABELS
from engine.domain.lifecycle import BY_ACTION, STATES
from engine.network.directory import partner_directory
from engine.outbox.preferences import MODE_LABELS, PreferenceError, get_preferences, set_preferences
from engine.referrals.actions import Actor, NotFound, flag_health_urgency, transition
from engine.referrals.case_file import read_case_file
from engine.referrals.queue import SORTS, BadCursor, QueueFilters, list_queue
from engine.store import models as m
from engine.store.db import unit_of_work
from partners.taxonomy import DOMAINS
from web.actions import bulk_apply, parse_selection
from web.flash import set_flash
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
# An id in a path: anything outside 1..MAX_ID is the same 404 as a missing row.
PathId = Annotated[int, Path(ge=1, le=m.MAX_ID)]


def _db(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.db


def _settings(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.settings


def _clock(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.clock


def _actor(user: m.StaffUser) -> Actor:
    return Actor.of(user)


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/file"


def _int(value: Any) -> int | None:
    """A form's id or version: None when absent, 0 (which matches nothing) when malformed or
    out of range, so the use case answers "inconnu" instead of the database overflowing."""
    if value is None or str(value).strip() == "":
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        return 0
    return number if 0 < number <= m.MAX_ID else 0


def _str(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


# --- login / logout --------------------------------------------------------------------


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse("/file" if current_caller(request) else "/connexion", status_code=303)


def _login_page(
    request: Request,
    *,
    email: str = "",
    suivant: str = "",
    error: str | None = None,
    status: int = 200,
    flash: str | None = None,
) -> Response:
    token = login_csrf(request)
    response = render(
        request,
        "login.html",
        {"csrf_token": token, "email": email, "suivant": suivant, "error": error, "flash": flash},
        status=status,
    )
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
        # argon2 takes tens of milliseconds of CPU: off the event loop, so that logins (good or
        # bad) never stall the other requests.
        new = await run_in_threadpool(
            login,
            _db(request),
            email[:200],
            password[:1000],
            ip=ip,
            clock=_clock(request),
            replaces=request.cookies.get(SESSION_COOKIE),
        )
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
    await run_in_threadpool(logout, _db(request), request.cookies.get(SESSION_COOKIE, ""))
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
        sort=str(q.get("tri")) if q.get("tri") in SORTS else "priority",
    )


def _queue_params(f: QueueFilters) -> dict[str, str]:
    params = {
        "domaine": f.domain or "",
        "territoire": f.territory or "",
        "etat": f.state or "",
        "chantier": f.chantier or "",
        "programme": f.programme or "",
        "moi": "1" if f.mine else "",
        "tri": f.sort,
    }
    return {k: v for k, v in params.items() if v}


@router.get("/file")
def queue_page(request: Request, caller: CallerDep, apres: str | None = None) -> Response:
    user = caller.user
    filters = _filters(request)
    with unit_of_work(_db(request)) as session:
        try:
            page = list_queue(
                session, user, filters, after=apres, limit=50, now=_clock(request).now()
            )
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
    return render(
        request,
        "queue.html",
        {
            "caller": caller,
            "page": page,
            "filters": filters,
            "territories": territories,
            "chantiers": chantiers,
            "assignees": assignees,
            "owners": owners,
            "next_url": next_url,
            "states": STATES,
            "domains": DOMAINS,
            "minimal": user.role == "partner_contact",
            "can_take": user.role in ("officer", "coordinator", "national_admin"),
            "can_assign": bool(assignees),
        },
    )


@router.post("/file/actions")
async def queue_bulk(request: Request, caller: CallerDep) -> Response:
    await check_form_csrf(request, caller)
    form = await request.form()
    action = str(form.get("action", ""))
    if action not in ("take", "assign"):
        return render(
            request,
            "error.html",
            {
                "caller": caller,
                "title": "Action inconnue",
                "message": "Choisissez « Prendre en charge » ou « Attribuer ».",
            },
            status=422,
        )
    selection = parse_selection([str(v) for v in form.getlist("selection")])
    result = await run_in_threadpool(
        bulk_apply,
        _db(request),
        _settings(request),
        caller.user,
        action,
        selection,
        assignee_id=_int(form.get("assignee")),
        clock=_clock(request),
    )
    verb = "prise(s) en charge" if action == "take" else "attribuée(s)"
    message = f"{result.done} orientation(s) {verb}."
    if result.failed:
        message += (
            f" {len(result.failed)} n'ont pas pu l'être : modifiées entre-temps par quelqu'un "
            "d'autre ou action impossible dans leur état."
        )
    return set_flash(request, RedirectResponse("/file", status_code=303), message)


# --- case file -------------------------------------------------------------------------


def _case_response(
    request: Request,
    caller: Caller,
    referral_id: int,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    failed_action: str | None = None,
    status: int = 200,
    flash: str | None = None,
) -> Response:
    # Immediate: reading a case file writes its access-log row (SQLite's write lock first).
    with unit_of_work(_db(request), immediate=True) as session:
        case = read_case_file(session, caller.user, referral_id, now=_clock(request).now())
        if case is None:
            raise OutOfScope()
        response = render(
            request,
            "case.html",
            {
                "caller": caller,
                "case": case,
                "error": error,
                "form": form or {},
                "failed_action": failed_action,
                "flash": flash,
                "failed_still_possible": any(t.action == failed_action for t in case.actions),
            },
            status=status,
        )
    return response


@router.get("/orientations/{referral_id}")
def case_page(request: Request, caller: CallerDep, referral_id: PathId) -> Response:
    return _case_response(request, caller, referral_id)


@router.post("/orientations/{referral_id}/actions")
async def case_action(request: Request, caller: CallerDep, referral_id: PathId) -> Response:
    await check_form_csrf(request, caller)
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "csrf_token"}
    action = form.get("action", "")
    try:
        await run_in_threadpool(_apply_case_action, request, caller, referral_id, action, form)
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        title = {Conflict: None, Forbidden: "Action refusée", Refused: "Action impossible"}
        prefix = next((v for k, v in title.items() if isinstance(exc, k)), "Action impossible")
        text = str(exc) if prefix is None else f"{prefix} : {exc}."
        return _case_response(
            request,
            caller,
            referral_id,
            error=text,
            form=form,
            failed_action=action,
            status=exc.status,
        )
    label = BY_ACTION[action].label if action in BY_ACTION else ACTION_LABELS.get(action, action)
    return set_flash(
        request,
        RedirectResponse(f"/orientations/{referral_id}", status_code=303),
        f"Action enregistrée : {label}.",
    )


def _apply_case_action(
    request: Request, caller: Caller, referral_id: int, action: str, form: dict[str, str]
) -> None:
    with unit_of_work(_db(request), immediate=True) as session:
        if action == "flag_health_urgency":
            flag_health_urgency(
                session,
                _settings(request),
                referral_id,
                actor_user=caller.user,
                expected_version=_int(form.get("version")),
                clock=_clock(request),
                note=_str(form.get("note")),
            )
            return
        transition(
            session,
            _settings(request),
            referral_id,
            action,
            clock=_clock(request),
            actor=_actor(caller.user),
            expected_version=_int(form.get("version")),
            outcome=_str(form.get("outcome")),
            reason=_str(form.get("reason")),
            note=_str(form.get("note")),
            offer_id=_int(form.get("offer_id")),
            pool_id=_int(form.get("pool_id")),
            new_owner_id=_int(form.get("new_owner_id")),
        )


# --- allocation review -----------------------------------------------------------------


def _allocation_page(
    request: Request,
    caller: Caller,
    *,
    status: int = 200,
    error: str | None = None,
    flash: str | None = None,
    simulation: list[str] | None = None,
) -> Response:
    if not can(caller.user, "review_allocation"):
        raise OutOfScope()
    with unit_of_work(_db(request)) as session:
        review = allocation_review(session, caller.user)
        return render(
            request,
            "allocation.html",
            {
                "caller": caller,
                "review": review,
                "error": error,
                "flash": flash,
                "simulation": simulation,
            },
            status=status,
        )


@router.get("/attributions")
def allocation_page(request: Request, caller: CallerDep) -> Response:
    return _allocation_page(request, caller)


def _decide(
    request: Request, caller: Caller, proposal_id: int, decision: str, form: dict[str, str]
) -> None:
    from engine.allocation.run import decline_proposal, validate_proposal

    version = _int(form.get("version"))
    with unit_of_work(_db(request), immediate=True) as session:
        if decision == "valider":
            validate_proposal(
                session,
                _settings(request),
                proposal_id,
                clock=_clock(request),
                actor=_actor(caller.user),
                expected_version=version,
            )
        else:
            decline_proposal(
                session,
                _settings(request),
                proposal_id,
                clock=_clock(request),
                actor=_actor(caller.user),
                reason=form.get("reason", ""),
                expected_version=version,
            )


@router.post("/attributions/{proposal_id}/{decision}")
async def allocation_decide(
    request: Request, caller: CallerDep, proposal_id: PathId, decision: str
) -> Response:
    await check_form_csrf(request, caller)
    if decision not in ("valider", "decliner") or not can(caller.user, "review_allocation"):
        raise OutOfScope()
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "csrf_token"}
    try:
        await run_in_threadpool(_decide, request, caller, proposal_id, decision, form)
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        prefix = {403: "Action refusée : ", 422: "Action impossible : "}.get(exc.status, "")
        return _allocation_page(
            request, caller, status=exc.status, error=prefix + sentence(str(exc))
        )
    message = {
        "valider": "Proposition validée : la place est attribuée.",
        "decliner": "Proposition déclinée : la personne reste en attente.",
    }[decision]
    return set_flash(request, RedirectResponse("/attributions", status_code=303), message)


@router.post("/attributions/simulation")
async def allocation_dry_run(request: Request, caller: CallerDep) -> Response:
    await check_form_csrf(request, caller)
    if not can(caller.user, "allocate"):
        raise OutOfScope()
    from engine.allocation.run import run_allocation

    territory = None
    if caller.user.role == "coordinator" and caller.user.territory_id is not None:
        with unit_of_work(_db(request)) as session:
            territory = session.scalar(
                select(m.Territory.code).where(m.Territory.id == caller.user.territory_id)
            )
    try:
        report = await run_in_threadpool(
            run_allocation,
            _db(request),
            _settings(request),
            territory=territory,
            dry_run=True,
            actor_user_id=caller.user.id,
            clock=_clock(request),
        )
    except Conflict as exc:
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
        request,
        "partners.html",
        {
            "caller": caller,
            "rows": rows,
            "territories": territories,
            "domains": DOMAINS,
            "territory": territory,
            "domain": domain,
        },
    )


@router.get("/preferences")
def preferences_page(request: Request, caller: CallerDep) -> Response:
    with unit_of_work(_db(request)) as session:
        rows = get_preferences(session, caller.user)
    return render(
        request, "preferences.html", {"caller": caller, "rows": rows, "modes": MODE_LABELS}
    )


@router.post("/preferences")
async def preferences_submit(request: Request, caller: CallerDep) -> Response:
    await check_form_csrf(request, caller)
    form = await request.form()
    choices = {k.removeprefix("mode_"): str(v) for k, v in form.items() if k.startswith("mode_")}
    try:
        with unit_of_work(_db(request), immediate=True) as session:
            set_preferences(session, caller.user, choices, now=_clock(request).now())
    except PreferenceError as exc:
        with unit_of_work(_db(request)) as session:
            rows = get_preferences(session, caller.user)
        return render(
            request,
            "preferences.html",
            {"caller": caller, "rows": rows, "modes": MODE_LABELS, "error": str(exc)},
            status=422,
        )
    return set_flash(
        request,
        RedirectResponse("/preferences", status_code=303),
        "Vos préférences sont enregistrées.",
    )


@router.get("/journal-acces")
def access_log_page(
    request: Request,
    caller: CallerDep,
    avant: Annotated[int | None, Query(ge=1, le=m.MAX_ID)] = None,
) -> Response:
    if not can(caller.user, "view_access_log"):
        raise OutOfScope()
    with unit_of_work(_db(request)) as session:
        rows, nxt = access_log(session, caller.user, before_id=avant)
    return render(request, "access_log.html", {"caller": caller, "rows": rows, "next_id": nxt})
