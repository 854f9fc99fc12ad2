"""Server-rendered French pages of the staff: login, queue, case file, allocation, directory.

Why thin handlers: each one reads the form, opens one unit of work, calls an engine use case
or query, and renders; permissions come from ``engine.access.permissions`` through the queries and
``transition``, so an out-of-scope id is a 404 here exactly as it is in the API. No handler
changes anything on GET; every POST checks the session's CSRF token first.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from engine.access.auth import LoginFailed, RateLimited, login, logout
from engine.access.log import (
    AccessFilters,
    access_log,
    access_log_csv,
    access_log_options,
    count_access_log,
)
from engine.access.permissions import can
from engine.allocation.review import (
    DEFAULT_STATUS,
    PROPOSAL_PAGE,
    STATUS_FILTERS,
    ReviewFilters,
    SimulationSummary,
    allocation_review,
    pools_overview,
    simulation_summary,
    territory_names,
)
from engine.domain.errors import Conflict, DomainError, Forbidden, Refused, sentence
from engine.domain.labels import (
    ACTION_LABELS,
    DECLINE_LABELS,
    OVERDUE_LABEL,
    STATE_PLURAL_LABELS,
    deadline_badge,
    fr_number,
    plural,
)
from engine.domain.lifecycle import BY_ACTION, STATES
from engine.intake.freins import add_frein
from engine.outbox.preferences import MODE_LABELS, PreferenceError, get_preferences, set_preferences
from engine.referrals.actions import Actor, NotFound, flag_health_urgency, transition
from engine.referrals.case_file import DESTRUCTIVE_ACTIONS, confirmation, read_case_file
from engine.referrals.notes import add_note
from engine.referrals.queue import (
    MAX_SEARCH,
    SORTS,
    BadCursor,
    QueueCounts,
    QueueFilters,
    list_queue,
    queue_position,
)
from engine.store import models as m
from engine.store.db import unit_of_work
from matching.rules import load_rules
from partners.taxonomy import DOMAINS, label_of
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
QUEUE_PAGE = 50  # rows of a queue page


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
    return HOME


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


HOME = "/tableau-de-bord"  # where every role lands: web.dashboard_pages


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse(HOME if current_caller(request) else "/connexion", status_code=303)


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

NAME_SEARCH_REFUSED = (
    "La recherche par nom est réservée aux personnes habilitées à lire l'identité des "
    "salarié·es : cherchez par référence."
)
NOTHING_TICKED = "Cochez au moins une orientation."


def _filters(request: Request) -> QueueFilters:
    q = request.query_params
    reference = _str(q.get("reference"))
    name = _str(q.get("nom"))
    reference = reference[:MAX_SEARCH] if reference else None
    name = name[:MAX_SEARCH] if name else None
    return QueueFilters(
        domain=_str(q.get("domaine")) if q.get("domaine") in DOMAINS else None,
        territory=_str(q.get("territoire")),
        # A search looks a person up whatever became of their orientations.
        state=_str(q.get("etat")) or ("all" if reference or name else "open"),
        chantier=_str(q.get("chantier")),
        programme=_str(q.get("programme")) if q.get("programme") in ("cvg", "phc") else None,
        mine=q.get("moi") == "1",
        sort=str(q.get("tri")) if q.get("tri") in SORTS else "priority",
        reference=reference,
        name=name,
        overdue=q.get("retard") == "1",
    )


def _queue_params(f: QueueFilters) -> dict[str, str]:
    params = {
        "reference": f.reference or "",
        "nom": f.name or "",
        "domaine": f.domain or "",
        "territoire": f.territory or "",
        "etat": f.state or "",
        "chantier": f.chantier or "",
        "programme": f.programme or "",
        "moi": "1" if f.mine else "",
        "retard": "1" if f.overdue else "",
        "tri": f.sort,
    }
    return {k: v for k, v in params.items() if v}


def queue_url(f: QueueFilters, **extra: str | None) -> str:
    """The queue's address for filters ``f`` (``extra``: apres, tout…; None drops one)."""
    params = _queue_params(f)
    params.update({k: v for k, v in extra.items() if v})
    return "/file?" + urlencode(params) if params else "/file"


def _state_links(f: QueueFilters, counts: QueueCounts) -> list[dict[str, Any]]:
    """The summary bar: each state's count, a link applying that state filter."""
    links = [
        {
            "label": STATE_PLURAL_LABELS[state],
            "count": n,
            "url": queue_url(replace(f, state=state, overdue=False)),
            "current": f.state == state and not f.overdue,
            "css": "state-count",
        }
        for state, n in counts.by_state.items()
    ]
    if counts.overdue or f.overdue:
        links.append(
            {
                "label": OVERDUE_LABEL,
                "count": counts.overdue,
                "url": queue_url(replace(f, overdue=True)),
                "current": f.overdue,
                "css": "overdue",
            }
        )
    return links


def _position_label(offset: int, shown: int, total: int, whole: bool) -> str:
    """ "12 orientations" on a single page, else "51–100 sur 367 orientations"."""
    total = max(total, offset + shown)
    if whole:
        return plural(total, "orientation")
    word = "orientation" if total < 2 else "orientations"
    return f"{fr_number(offset + 1)}–{fr_number(offset + shown)} sur {fr_number(total)} {word}"


def _queue_response(
    request: Request,
    caller: Caller,
    filters: QueueFilters,
    after: str | None,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The queue page: totals by state, one keyset page with its position, scoped filters."""
    user = caller.user
    now = _clock(request).now()
    if filters.name and not can(user, "read_identity") and error is None:
        error = NAME_SEARCH_REFUSED  # and the engine finds nothing: no count, no row
    with unit_of_work(_db(request)) as session:
        try:
            page = list_queue(session, user, filters, after=after, limit=QUEUE_PAGE, now=now)
            position = queue_position(
                session, user, filters, after=after, limit=QUEUE_PAGE, now=now
            )
        except BadCursor:
            raise OutOfScope() from None
        counts = request.app.state.queue_counts.counts(session, user, filters, now=now)
        options = request.app.state.queue_counts.options(session, user, now=now)
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
    next_url = queue_url(filters, apres=page.next_cursor) if page.next_cursor else None
    previous_url = (
        queue_url(filters, apres=position.previous_cursor) if position.has_previous else None
    )
    whole = not (next_url or previous_url or position.offset)
    select_all = request.query_params.get("tout") == "1"
    bulk_params = {**_queue_params(filters), **({"apres": after} if after else {})}
    return render(
        request,
        "queue.html",
        {
            "caller": caller,
            "page": page,
            "filters": filters,
            "options": options,
            "assignees": assignees,
            "owners": owners,
            "next_url": next_url,
            "previous_url": previous_url,
            "position": _position_label(position.offset, len(page.rows), counts.total, whole),
            "state_links": _state_links(filters, counts),
            "counts": counts,
            "bulk_url": "/file/actions?" + urlencode(bulk_params),
            "select_all": select_all,
            "select_all_url": queue_url(filters, apres=after, tout="1"),
            "states": STATES,
            "minimal": user.role == "partner_contact",
            "can_search_name": can(user, "read_identity"),
            "can_take": user.role in ("officer", "coordinator", "national_admin"),
            "can_assign": bool(assignees),
            "deadline_badge": deadline_badge,
            "fr_number": fr_number,
            "error": error,
        },
        status=status,
    )


@router.get("/file")
def queue_page(request: Request, caller: CallerDep, apres: str | None = None) -> Response:
    return _queue_response(request, caller, _filters(request), _str(apres))


@router.post("/file/actions")
async def queue_bulk(request: Request, caller: CallerDep) -> Response:
    """Take or assign the ticked referrals, then back to the queue with the same filters.

    The form posts to ``/file/actions?<the page's filters>``: the redirect (or the page shown
    again with an error) keeps them. Nothing ticked is an error, never "0 … prise en charge".
    """
    await check_form_csrf(request, caller)
    form = await request.form()
    filters = _filters(request)
    after = _str(request.query_params.get("apres"))
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
    if not selection:
        return _queue_response(request, caller, filters, after, error=NOTHING_TICKED, status=422)
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
    failed = len(result.failed)
    not_done = (
        (
            "1 orientation n'a pas pu l'être : modifiée entre-temps par quelqu'un d'autre ou "
            "action impossible dans son état."
        )
        if failed == 1
        else (
            f"{fr_number(failed)} orientations n'ont pas pu l'être : modifiées entre-temps par "
            "quelqu'un d'autre ou action impossible dans leur état."
        )
    )
    if not result.done:  # nothing happened: an error, not a green confirmation
        verb = "prise en charge" if action == "take" else "attribuée"
        message = f"Aucune orientation {verb}. {not_done}"
        return _queue_response(request, caller, filters, after, error=message, status=409)
    if action == "take":
        message = plural(
            result.done, "orientation prise en charge", "orientations prises en charge"
        )
    else:
        message = plural(result.done, "orientation attribuée", "orientations attribuées")
    message += "." + (f" {not_done}" if failed else "")
    response = RedirectResponse(queue_url(filters, apres=after), status_code=303)
    return set_flash(request, response, message)


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
    confirm_action: str | None = None,
) -> Response:
    # Immediate: reading a case file writes its access-log row (SQLite's write lock first).
    with unit_of_work(_db(request), immediate=True) as session:
        case = read_case_file(session, caller.user, referral_id, now=_clock(request).now())
        if case is None:
            raise OutOfScope()
        confirm = None
        if confirm_action is not None and any(t.action == confirm_action for t in case.actions):
            confirm = confirmation(session, case, confirm_action, form or {})
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
                "confirm": confirm,
                "DESTRUCTIVE_ACTIONS": DESTRUCTIVE_ACTIONS,
            },
            status=status,
        )
    return response


@router.get("/orientations/{referral_id}")
def case_page(request: Request, caller: CallerDep, referral_id: PathId) -> Response:
    return _case_response(request, caller, referral_id)


@router.post("/orientations/{referral_id}/actions")
async def case_action(request: Request, caller: CallerDep, referral_id: PathId) -> Response:
    """A lifecycle action from the case page. A destructive one (cancel, refuse, transfer,
    close) without ``confirm=1`` is tried and rolled back — so a refusal is said at once — and
    answered with the confirmation step: nothing is written until the second submit."""
    await check_form_csrf(request, caller)
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "csrf_token"}
    action = form.get("action", "")
    confirming = action in DESTRUCTIVE_ACTIONS and form.get("confirm") != "1"
    try:
        await run_in_threadpool(
            _apply_case_action, request, caller, referral_id, action, form, dry_run=confirming
        )
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
    if confirming:
        return _case_response(request, caller, referral_id, form=form, confirm_action=action)
    label = BY_ACTION[action].label if action in BY_ACTION else ACTION_LABELS.get(action, action)
    return set_flash(
        request,
        RedirectResponse(f"/orientations/{referral_id}", status_code=303),
        f"Action enregistrée : {label}.",
    )


def _apply_case_action(
    request: Request,
    caller: Caller,
    referral_id: int,
    action: str,
    form: dict[str, str],
    *,
    dry_run: bool = False,
) -> None:
    """Apply the action in one unit of work; with ``dry_run``, every check and effect runs
    and is rolled back (the confirmation step of a destructive action)."""
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
        if dry_run:
            session.rollback()


@router.post("/orientations/{referral_id}/notes")
async def case_note(request: Request, caller: CallerDep, referral_id: PathId) -> Response:
    """A note on the person's case, or the CIP/ESP's reorientation request (a flagged note)."""
    await check_form_csrf(request, caller)
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "csrf_token"}
    kind = "reorientation" if form.get("kind") == "reorientation" else "note"
    try:
        await run_in_threadpool(_add_case_note, request, caller, referral_id, form, kind)
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        what = "Demande non enregistrée" if kind == "reorientation" else "Note non enregistrée"
        return _case_response(
            request,
            caller,
            referral_id,
            error=f"{what} : {exc}.",
            form=form,
            failed_action=kind,
            status=exc.status,
        )
    message = (
        "Demande de réorientation enregistrée : elle est affichée en tête de l'orientation."
        if kind == "reorientation"
        else "Note ajoutée."
    )
    return set_flash(
        request, RedirectResponse(f"/orientations/{referral_id}#notes", status_code=303), message
    )


def _add_case_note(
    request: Request, caller: Caller, referral_id: int, form: dict[str, str], kind: str
) -> None:
    with unit_of_work(_db(request), immediate=True) as session:
        add_note(
            session,
            caller.user,
            referral_id,
            form.get("body"),
            clock=_clock(request),
            reorientation_request=kind == "reorientation",
        )


@router.post("/orientations/{referral_id}/freins")
async def case_frein(request: Request, caller: CallerDep, referral_id: PathId) -> Response:
    """A new frein of the person, from one of their orientations (the intake routes it)."""
    await check_form_csrf(request, caller)
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "csrf_token"}
    try:
        label = await run_in_threadpool(_add_case_frein, request, caller, referral_id, form)
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        return _case_response(
            request,
            caller,
            referral_id,
            error=f"Frein non ajouté : {exc}.",
            form=form,
            failed_action="frein",
            status=exc.status,
        )
    return set_flash(
        request,
        RedirectResponse(f"/orientations/{referral_id}", status_code=303),
        f"Frein ajouté : {label}. Il sera orienté au prochain passage de l'orientation "
        "automatique.",
    )


def _add_case_frein(
    request: Request, caller: Caller, referral_id: int, form: dict[str, str]
) -> str:
    with unit_of_work(_db(request), immediate=True) as session:
        ref = session.get(m.Referral, referral_id)
        if ref is None or not can(caller.user, "read", ref):
            raise NotFound("orientation introuvable")
        frein = add_frein(
            session,
            caller.user,
            ref.salarie_id,
            form.get("thematique"),
            clock=_clock(request),
            rules=load_rules(_settings(request).rules_file),
        )
        return label_of(frein.thematique)


# --- allocation review -----------------------------------------------------------------

NOTHING_TICKED_PROPOSAL = "Cochez au moins une proposition à valider."


def _review_filters(request: Request) -> ReviewFilters:
    """The review's filters from the address: territoire, dispositif, statut, page (values
    outside the user's scope are dropped by the read model)."""
    q = request.query_params
    page = _int(q.get("page")) or 1
    return ReviewFilters(
        territory=_str(q.get("territoire")),
        pool_id=_int(q.get("dispositif")) or None,
        status=_str(q.get("statut")) or DEFAULT_STATUS,
        page=page,
    )


def _review_params(f: ReviewFilters, *, page: bool = True) -> dict[str, str]:
    params = {
        "territoire": f.territory or "",
        "dispositif": str(f.pool_id) if f.pool_id else "",
        "statut": f.status if f.status != DEFAULT_STATUS else "",
        "page": str(f.page) if page and f.page > 1 else "",
    }
    return {k: v for k, v in params.items() if v}


def _review_url(f: ReviewFilters, path: str = "/attributions", **extra: str) -> str:
    params = {**_review_params(f), **extra}
    return path + ("?" + urlencode(params) if params else "")


def _allocation_page(
    request: Request,
    caller: Caller,
    *,
    status: int = 200,
    error: str | None = None,
    flash: str | None = None,
    simulation: SimulationSummary | None = None,
    filters: ReviewFilters | None = None,
) -> Response:
    if not can(caller.user, "review_allocation"):
        raise OutOfScope()
    with unit_of_work(_db(request)) as session:
        review = allocation_review(session, caller.user, filters or _review_filters(request))
        f = review.filters
        shown = len(review.proposals)
        pages = max(1, -(-review.total // PROPOSAL_PAGE))
        if review.total == 0:
            position = "Aucune proposition"
        elif pages == 1:
            position = plural(review.total, "proposition")
        else:
            position = (
                f"{fr_number(review.offset + 1)}–{fr_number(review.offset + shown)} sur "
                f"{plural(review.total, 'proposition')}"
            )
        return render(
            request,
            "allocation.html",
            {
                "caller": caller,
                "review": review,
                "error": error,
                "flash": flash,
                "simulation": simulation,
                "filters": f,
                "status_filters": {k: v[1] for k, v in STATUS_FILTERS.items()},
                "position": position,
                "previous_url": _review_url(replace(f, page=f.page - 1)) if f.page > 1 else None,
                "next_url": _review_url(replace(f, page=f.page + 1)) if f.page < pages else None,
                "action_query": ("?" + urlencode(_review_params(f))) if _review_params(f) else "",
                "decline_reasons": DECLINE_LABELS,
                "select_all": request.query_params.get("tout") == "1",
                "select_all_url": _review_url(f, tout="1"),
                "can_simulate": can(caller.user, "allocate"),
                "plural": plural,
                "fr_number": fr_number,
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
                note=_str(form.get("note")),
                expected_version=version,
            )


def _proposal_error(exc: DomainError) -> str:
    if isinstance(exc, Conflict):
        return (
            "La proposition a été modifiée par quelqu'un d'autre entre-temps : rechargez la "
            "page, rien n'a été enregistré."
        )
    prefix = {403: "Action refusée : ", 422: "Action impossible : "}.get(exc.status, "")
    return prefix + sentence(str(exc))


@router.post("/attributions/selection")
async def allocation_validate_selection(request: Request, caller: CallerDep) -> Response:
    """Validate the ticked proposals, each in its own unit of work through the same use case
    (the transition door) with the version the coordinator saw: one stale or foreign
    proposal does not stop the others, and the summary says what was and was not done."""
    await check_form_csrf(request, caller)
    if not can(caller.user, "review_allocation"):
        raise OutOfScope()
    form = await request.form()
    filters = _review_filters(request)
    selection = parse_selection([str(v) for v in form.getlist("selection")])
    if not selection:
        return _allocation_page(
            request, caller, status=422, error=NOTHING_TICKED_PROPOSAL, filters=filters
        )
    done, failed = await run_in_threadpool(_validate_selection, request, caller, selection)
    parts = []
    if done:
        verb = "validée" if done < 2 else "validées"
        parts.append(f"{plural(done, 'proposition')} {verb} : les places sont attribuées.")
    else:
        parts.append("Aucune proposition validée.")
    if failed:
        verb = "n'a pas pu l'être" if len(failed) < 2 else "n'ont pas pu l'être"
        reasons = " ; ".join(f"{ref} : {why}" for ref, why in failed[:10])
        more = f" ; et {plural(len(failed) - 10, 'autre')}" if len(failed) > 10 else ""
        parts.append(f"{plural(len(failed), 'proposition')} {verb} — {reasons}{more}.")
    url = _review_url(replace(filters, page=1))
    return set_flash(request, RedirectResponse(url, status_code=303), " ".join(parts))


def _validate_selection(
    request: Request, caller: Caller, selection: list[tuple[int, int | None]]
) -> tuple[int, list[tuple[str, str]]]:
    """(number validated, [(reference or "proposition n° …", French reason)])."""
    done, failed = 0, []
    for proposal_id, version in selection:
        name = _proposal_name(request, caller, proposal_id)
        if version is None:
            failed.append((name, "version de la page inconnue, rechargez la page"))
            continue
        try:
            _decide(request, caller, proposal_id, "valider", {"version": str(version)})
            done += 1
        except NotFound:
            failed.append((name, "proposition introuvable dans votre périmètre"))
        except Conflict:
            failed.append((name, "modifiée entre-temps par quelqu'un d'autre"))
        except DomainError as exc:
            failed.append((name, str(exc)))
    return done, failed


def _proposal_name(request: Request, caller: Caller, proposal_id: int) -> str:
    """The person's reference when the proposal is in the user's scope, else only a number
    the user sent (nothing leaks about a proposal they cannot see)."""
    with unit_of_work(_db(request)) as session:
        row = session.execute(
            select(m.Salarie.reference, m.Referral)
            .join(m.Referral, m.Referral.salarie_id == m.Salarie.id)
            .join(m.AllocationProposal, m.AllocationProposal.referral_id == m.Referral.id)
            .where(m.AllocationProposal.id == proposal_id)
        ).first()
        if row is not None and can(caller.user, "read", row[1]):
            return str(row[0])
    return f"proposition n° {proposal_id}"


@router.post("/attributions/{proposal_id}/{decision}")
async def allocation_decide(
    request: Request, caller: CallerDep, proposal_id: PathId, decision: str
) -> Response:
    await check_form_csrf(request, caller)
    if decision not in ("valider", "decliner") or not can(caller.user, "review_allocation"):
        raise OutOfScope()
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "csrf_token"}
    filters = _review_filters(request)
    try:
        await run_in_threadpool(_decide, request, caller, proposal_id, decision, form)
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        return _allocation_page(
            request, caller, status=exc.status, error=_proposal_error(exc), filters=filters
        )
    message = {
        "valider": "Proposition validée : la place est attribuée.",
        "decliner": "Proposition déclinée : la personne reste en attente.",
    }[decision]
    return set_flash(request, RedirectResponse(_review_url(filters), status_code=303), message)


@router.post("/attributions/simulation")
async def allocation_dry_run(request: Request, caller: CallerDep) -> Response:
    await check_form_csrf(request, caller)
    if not can(caller.user, "allocate"):
        raise OutOfScope()
    from engine.allocation.run import run_allocation

    territory, territory_name = None, None
    with unit_of_work(_db(request)) as session:
        names = territory_names(session)
        if caller.user.role == "coordinator" and caller.user.territory_id is not None:
            t = session.get(m.Territory, caller.user.territory_id)
            territory, territory_name = (t.code, t.name) if t else (None, None)
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
        return _allocation_page(request, caller, status=409, error=sentence(str(exc)))
    return _allocation_page(
        request, caller, simulation=simulation_summary(report, territory_name, names)
    )


# --- pools, partners, preferences, access log ------------------------------------------


@router.get("/places")
def pools_page(request: Request, caller: CallerDep) -> Response:
    if not can(caller.user, "read"):
        raise OutOfScope()
    with unit_of_work(_db(request)) as session:
        pools = pools_overview(session, caller.user)
    return render(
        request,
        "pools.html",
        {"caller": caller, "pools": pools, "plural": plural, "fr_number": fr_number},
    )


# /partenaires: web.directory_pages


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


def _access_filters(request: Request) -> tuple[AccessFilters, list[str]]:
    """The access log's filters from the address, and the French errors of bad dates."""
    q = request.query_params
    errors: list[str] = []

    def day(name: str, label: str) -> date | None:
        raw = _str(q.get(name))
        if raw is None:
            return None
        try:
            return date.fromisoformat(raw[:10])
        except ValueError:
            errors.append(f"La date « {label} » n'est pas valide (attendu : jj/mm/aaaa).")
            return None

    reference = _str(q.get("reference"))
    account = _str(q.get("compte"))
    purpose = _str(q.get("motif"))
    f = AccessFilters(
        reference=reference[:MAX_SEARCH] if reference else None,
        account=account[:20] if account else None,
        date_from=day("du", "du"),
        date_to=day("au", "au"),
        purpose=purpose[:80] if purpose else None,
    )
    if f.date_from and f.date_to and f.date_from > f.date_to:
        errors.append("La date de début est après la date de fin.")
    return f, errors


def _access_params(f: AccessFilters) -> dict[str, str]:
    params = {
        "reference": f.reference or "",
        "compte": f.account or "",
        "du": f.date_from.isoformat() if f.date_from else "",
        "au": f.date_to.isoformat() if f.date_to else "",
        "motif": f.purpose or "",
    }
    return {k: v for k, v in params.items() if v}


@router.get("/journal-acces")
def access_log_page(
    request: Request,
    caller: CallerDep,
    avant: Annotated[int | None, Query(ge=1, le=m.MAX_ID)] = None,
) -> Response:
    if not can(caller.user, "view_access_log"):
        raise OutOfScope()
    filters, errors = _access_filters(request)
    with unit_of_work(_db(request)) as session:
        rows, nxt = access_log(session, caller.user, before_id=avant, filters=filters)
        total = count_access_log(session, caller.user, filters)
        accounts, purposes = access_log_options(session, caller.user)
    params = _access_params(filters)
    query = urlencode(params)
    return render(
        request,
        "access_log.html",
        {
            "caller": caller,
            "rows": rows,
            "filters": filters,
            "accounts": accounts,
            "purposes": purposes,
            "count": plural(total, "consultation"),
            "next_url": "/journal-acces?" + urlencode({**params, "avant": str(nxt)})
            if nxt
            else None,
            "export_url": "/journal-acces/export.csv" + (f"?{query}" if query else ""),
            "error": " ".join(errors) or None,
        },
        status=422 if errors else 200,
    )


@router.get("/journal-acces/export.csv")
def access_log_export(request: Request, caller: CallerDep) -> Response:
    """The filtered access log as CSV: names, roles, references — no e-mail address."""
    if not can(caller.user, "view_access_log"):
        raise OutOfScope()
    filters, errors = _access_filters(request)
    if errors:
        return render(
            request,
            "error.html",
            {"caller": caller, "title": "Export impossible", "message": " ".join(errors)},
            status=422,
        )
    with unit_of_work(_db(request)) as session:
        body = access_log_csv(session, caller.user, filters)
    name = f"journal-acces-{_clock(request).now().date().isoformat()}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )
