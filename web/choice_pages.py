"""The person's stated choices of places, and each family's allocation mechanism, in the browser.

Why thin handlers over ``engine.allocation.preferences``: the engine checks who may record
(the chantier's CIP/ESP, the coordination, the national team), validates every choice in
French, compares the version the page showed and audits; here the form is read into the
engine's shape, an out-of-scope id is the same 404 as a missing one, nothing changes on GET
and every POST checks the session's CSRF token first.

Routes: ``/orientations/{id}/choix`` (the page and its form), ``/orientations/{id}/choix/resume``
(the small block the case page loads), ``/attributions/mecanismes`` (the national page; the
offer travels in the form, since ``/attributions/{id}/{decision}`` is the review's).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from engine.access.permissions import can
from engine.allocation.preferences import (
    ANY,
    MAX_CHOICES,
    MECHANISM_EXPLANATIONS,
    MECHANISM_LABELS,
    ChoicesView,
    choices_summary,
    choices_view,
    mechanism_families,
    record_preferences,
    set_mechanism,
)
from engine.domain.errors import Conflict, DomainError, Forbidden, NotFound, sentence
from engine.domain.labels import plural
from engine.referrals.actions import Actor
from engine.store import models as m
from engine.store.db import unit_of_work
from web.flash import set_flash
from web.pages import CallerDep, PathId
from web.render import render
from web.security import Caller, OutOfScope, check_form_csrf

router = APIRouter(include_in_schema=False)
VALUE_MAX = 100  # characters of one form value read ("pool:12", "territoire:paris")
POOL_PREFIX, TERRITORY_PREFIX = "pool:", "territoire:"


def _version(value: Any) -> int:
    """The version a form carries; 0 (which never matches) when absent or malformed."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 10 else 0


def parse_choice_values(values: list[str]) -> list[dict[str, Any]]:
    """The selects of the form, in order, as the engine's choices: "pool:12" ->
    ``{"pool": 12}``, "territoire:paris" -> ``{"territory": "paris"}``; empty selects are
    skipped. A value of neither kind stays an unreadable item the engine refuses by rank
    (as it refuses more than ``MAX_CHOICES``: the body limit bounds how many arrive)."""
    out: list[dict[str, Any]] = []
    for raw in values:
        value = raw.strip()[:VALUE_MAX]
        if not value:
            continue
        if value.startswith(POOL_PREFIX):
            digits = value.removeprefix(POOL_PREFIX)
            out.append({"pool": int(digits) if digits.isdigit() and len(digits) < 11 else 0})
        elif value.startswith(TERRITORY_PREFIX):
            out.append({"territory": value.removeprefix(TERRITORY_PREFIX)})
        else:
            out.append({"unreadable": value})
    return out


def _error_text(exc: DomainError) -> str:
    """The engine's refusal as the page says it; a stale version in the app's own words."""
    if isinstance(exc, Conflict):
        return sentence(exc.message)
    prefix = "Action refusée" if isinstance(exc, Forbidden) else "Choix non enregistrés"
    return f"{prefix} : {exc.message.rstrip('.')}."


# --- a referral's choices ---------------------------------------------------------------------


def _choices_page(
    request: Request,
    caller: Caller,
    referral_id: int,
    *,
    error: str | None = None,
    submitted: list[str] | None = None,
    status: int = 200,
) -> Response:
    app = request.app.state
    try:
        # Immediate: the page writes its access-log row (SQLite's write lock first).
        with unit_of_work(app.db, immediate=True) as session:
            view = choices_view(session, caller.user, referral_id, now=app.clock.now())
            return render(
                request,
                "choix.html",
                {
                    "caller": caller,
                    "view": view,
                    "error": error,
                    "selected": _selected(view, submitted),
                    "any_value": ANY,
                },
                status=status,
            )
    except NotFound:
        raise OutOfScope() from None


def _selected(view: ChoicesView, submitted: list[str] | None) -> list[str]:
    """The value of each select: what was just sent (after a refusal), else the current
    choices, padded with empty selects — a few more than the choices, never more than
    there are things to choose."""
    chosen = (
        [v.strip()[:VALUE_MAX] for v in submitted if v.strip()][:MAX_CHOICES]
        if submitted is not None
        else [c.value for c in view.current]
    )
    room = len(view.options) + len(view.territories)
    size = min(MAX_CHOICES, max(len(chosen), min(room, len(chosen) + 3), 1))
    return chosen + [""] * (size - len(chosen))


@router.get("/orientations/{referral_id}/choix")
def choices_page(request: Request, caller: CallerDep, referral_id: PathId) -> Response:
    return _choices_page(request, caller, referral_id)


def _record(request: Request, caller: Caller, referral_id: int, form: Any) -> int | None:
    app = request.app.state
    mode = str(form.get("mode", "choix"))
    choices: list[dict[str, Any]] | str = (
        ANY if mode == "toutes" else parse_choice_values([str(v) for v in form.getlist("choix")])
    )
    with unit_of_work(app.db, immediate=True) as session:
        row = record_preferences(
            session,
            referral_id,
            choices,
            actor=Actor.of(caller.user),
            clock=app.clock,
            expected_version=_version(form.get("version")),
        )
        return None if row is None else len(row.choices)


@router.post("/orientations/{referral_id}/choix")
async def choices_submit(request: Request, caller: CallerDep, referral_id: PathId) -> Response:
    await check_form_csrf(request, caller)
    form = await request.form()
    try:
        count = await run_in_threadpool(_record, request, caller, referral_id, form)
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        keep = None if str(form.get("mode", "")) == "toutes" else [
            str(v) for v in form.getlist("choix")
        ]  # fmt: skip
        return _choices_page(
            request, caller, referral_id, error=_error_text(exc), submitted=keep, status=exc.status
        )
    message = (
        "Choix de la personne enregistrés : toutes les places possibles."
        if count is None
        else f"Choix de la personne enregistrés : {plural(count, 'choix', 'choix')}, dans l'ordre."
    )
    return set_flash(
        request, RedirectResponse(f"/orientations/{referral_id}#choix", status_code=303), message
    )


@router.get("/orientations/{referral_id}/choix/resume")
def choices_block(request: Request, caller: CallerDep, referral_id: PathId) -> Response:
    """The case page's block: the current choices in order and the link to change them."""
    app = request.app.state
    try:
        with unit_of_work(app.db) as session:
            view = choices_summary(session, caller.user, referral_id)
            return render(request, "choix_resume.html", {"caller": caller, "choices": view})
    except NotFound:
        raise OutOfScope() from None


# --- the families' mechanisms -----------------------------------------------------------------


def _mechanisms_page(
    request: Request, caller: Caller, *, error: str | None = None, status: int = 200
) -> Response:
    if not can(caller.user, "review_allocation"):
        raise OutOfScope()
    with unit_of_work(request.app.state.db) as session:
        families = mechanism_families(session, caller.user)
    return render(
        request,
        "mecanismes.html",
        {
            "caller": caller,
            "families": families,
            "editable": caller.user.role == "national_admin",
            "labels": MECHANISM_LABELS,
            "explanations": MECHANISM_EXPLANATIONS,
            "error": error,
        },
        status=status,
    )


@router.get("/attributions/mecanismes")
def mechanisms_page(request: Request, caller: CallerDep) -> Response:
    return _mechanisms_page(request, caller)


def _set(request: Request, caller: Caller, form: Any) -> tuple[str, str, bool]:
    """(offer name, its mechanism now, whether this submit changed it)."""
    app = request.app.state
    offer_id = _version(form.get("offer_id"))  # a positive id, or 0 (which is no offer)
    offer_id = offer_id if offer_id <= m.MAX_ID else 0
    mechanism = str(form.get("mechanism", ""))[:VALUE_MAX]
    expected = str(form.get("expected", "")).strip()[:VALUE_MAX] or None
    with unit_of_work(app.db, immediate=True) as session:
        before = session.scalar(select(m.Offer.allocation_mechanism).where(m.Offer.id == offer_id))
        offer = set_mechanism(
            session,
            offer_id,
            mechanism,
            actor=Actor.of(caller.user),
            clock=app.clock,
            expected=expected,
        )
        return offer.name, offer.allocation_mechanism, before != offer.allocation_mechanism


@router.post("/attributions/mecanismes")
async def mechanisms_submit(request: Request, caller: CallerDep) -> Response:
    await check_form_csrf(request, caller)
    if not can(caller.user, "review_allocation"):
        raise OutOfScope()
    form = await request.form()
    try:
        name, mechanism, changed = await run_in_threadpool(_set, request, caller, form)
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        prefix = "Action refusée" if isinstance(exc, Forbidden) else "Action impossible"
        text = (
            sentence(exc.message)
            if isinstance(exc, Conflict)
            else f"{prefix} : {exc.message.rstrip('.')}."
        )
        return _mechanisms_page(request, caller, error=text, status=exc.status)
    label = MECHANISM_LABELS[mechanism].lower()
    message = (
        f"Mécanisme enregistré pour « {name} » : {label}. Il s'applique dès la prochaine "
        "attribution."
        if changed
        else f"Aucun changement : « {name} » était déjà attribuée par le mécanisme {label}."
    )
    return set_flash(
        request, RedirectResponse("/attributions/mecanismes", status_code=303), message
    )
