"""The commission pages: one run's ranked lists for one commission pool, and the form where the
coordination records the commission's decision on the rank under examination.

Why thin handlers, as everywhere: the read model (``engine.allocation.commission``) decides
what the user may see, the use case (``commission.decide``) goes through the transition door
and passes the unit on; these handlers read the form, open one unit of work and render. An
id out of range, a pool the user's territory does not serve or a proposal of another
commission is the same 404; every POST checks the CSRF token first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from engine.access.permissions import can
from engine.allocation.commission import (
    UNIT_ATTRIBUTED,
    UNIT_IN_COMMISSION,
    UNIT_RETURNED,
    AlreadyDecided,
    Decision,
    commission_view,
    decide,
)
from engine.domain.errors import DomainError, NotFound, sentence
from engine.domain.labels import (
    COMMISSION_DECISION_LABELS,
    COMMISSION_REFUSAL_LABELS,
    DECLINE_LABELS,
    fr_number,
    plural,
    unit_count,
)
from engine.referrals.actions import Actor, StaleEdit
from engine.store import models as m
from engine.store.db import unit_of_work
from web.flash import set_flash
from web.render import render
from web.security import Caller, OutOfScope, check_form_csrf, page_caller

router = APIRouter(include_in_schema=False)
CallerDep = Annotated[Caller, Depends(page_caller)]
PathId = Annotated[int, Path(ge=1, le=m.MAX_ID)]
STALE = (
    "La proposition a été modifiée par quelqu'un d'autre entre-temps : rechargez la page, "
    "rien n'a été enregistré."
)


def _url(run_id: int, pool_id: int) -> str:
    return f"/attributions/commissions/{run_id}/{pool_id}"


def _page(
    request: Request,
    caller: Caller,
    run_id: int,
    pool_id: int,
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    if not can(caller.user, "review_allocation"):
        raise OutOfScope()
    with unit_of_work(request.app.state.db) as session:
        try:
            view = commission_view(session, caller.user, run_id, pool_id)
        except NotFound:
            raise OutOfScope() from None
        return render(
            request,
            "commission.html",
            {
                "caller": caller,
                "view": view,
                "error": error,
                "action_url": _url(run_id, pool_id),
                "decline_reasons": DECLINE_LABELS,
                "commission_reasons": COMMISSION_REFUSAL_LABELS,
                "decisions": COMMISSION_DECISION_LABELS,
                "unit_words": unit_count(1, view.pool.unit_kind).removeprefix("1 "),
                "units_of": lambda n: unit_count(n, view.pool.unit_kind),
                "ATTRIBUTED": UNIT_ATTRIBUTED,
                "IN_COMMISSION": UNIT_IN_COMMISSION,
                "RETURNED": UNIT_RETURNED,
                "plural": plural,
                "fr_number": fr_number,
            },
            status=status,
        )


@router.get("/attributions/commissions/{run_id}/{pool_id}")
def commission_page(
    request: Request, caller: CallerDep, run_id: PathId, pool_id: PathId
) -> Response:
    return _page(request, caller, run_id, pool_id)


def _decide(
    request: Request,
    caller: Caller,
    run_id: int,
    pool_id: int,
    proposal_id: int,
    decision: str,
    form: dict[str, str],
) -> str:
    """The commission's decision through the use case; the sentence to flash."""
    version = _int(form.get("version"))
    with unit_of_work(request.app.state.db, immediate=True) as session:
        prop = session.get(m.AllocationProposal, proposal_id)
        if prop is None or prop.run_id != run_id or prop.pool_id != pool_id:
            raise NotFound("proposition de commission introuvable")
        reason = form.get("reason") if decision == "refus_candidat" else form.get("motif")
        done: Decision = decide(
            session,
            request.app.state.settings,
            proposal_id,
            decision=decision,
            actor=Actor.of(caller.user),
            clock=request.app.state.clock,
            reason=(reason or "").strip() or None,
            note=form.get("note"),
            expected_version=version if version is not None else 0,
        )
        return done.sentence()


def _int(value: str | None) -> int | None:
    """A form's version: None when absent, 0 (which matches nothing) when malformed."""
    if value is None or not value.strip():
        return None
    try:
        n = int(value.strip())
    except ValueError:
        return 0
    return n if 0 < n <= m.MAX_ID else 0


@router.post("/attributions/commissions/{run_id}/{pool_id}/{proposal_id}/{decision}")
async def commission_decide(
    request: Request,
    caller: CallerDep,
    run_id: PathId,
    pool_id: PathId,
    proposal_id: PathId,
    decision: str,
) -> Response:
    await check_form_csrf(request, caller)
    if decision not in COMMISSION_DECISION_LABELS or not can(caller.user, "review_allocation"):
        raise OutOfScope()
    raw = await request.form()
    form = {k: str(v) for k, v in raw.items() if k != "csrf_token"}
    try:
        message = await run_in_threadpool(
            _decide, request, caller, run_id, pool_id, proposal_id, decision, form
        )
    except NotFound:
        raise OutOfScope() from None
    except AlreadyDecided as exc:
        return _page(request, caller, run_id, pool_id, status=409, error=sentence(str(exc)))
    except StaleEdit:
        return _page(request, caller, run_id, pool_id, status=409, error=STALE)
    except DomainError as exc:
        prefix = {403: "Action refusée : ", 422: "Action impossible : "}.get(exc.status, "")
        return _page(
            request, caller, run_id, pool_id, status=exc.status, error=prefix + sentence(str(exc))
        )
    unit = _int(form.get("unit"))
    url = _url(run_id, pool_id) + (f"#unite-{unit}" if unit else "")
    return set_flash(request, RedirectResponse(url, status_code=303), message)
