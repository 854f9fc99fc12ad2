"""The partner directory in the browser: search the catalogue and the services of the national
referential (data·inclusion), an offer's page (source, freshness, rules, counted pools), and
the orientation towards a service that has no public e-mail address.

Why thin handlers over ``engine.directory``: the engine checks who may attach a rule or a pool
(a chargé·e of a territory the service covers), validates in French and audits every write;
here a bad query parameter is ignored rather than answered with an error, anything out of
scope is the same 404 as a missing page, and nothing changes on GET.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from starlette.responses import Response

from engine.access.permissions import can
from engine.directory.local import OPS, add_rule, offer_page, remove_rule, tie_pool
from engine.directory.orientation import orientation_view, record_orientation
from engine.directory.search import (
    CATALOGUE_SOURCE,
    MAX_SEARCH,
    ORIGINS,
    DirectoryFilters,
    directory,
)
from engine.domain.errors import DomainError, NotFound
from engine.domain.labels import plural, unit_count
from engine.referrals.actions import Actor
from engine.store import models as m
from engine.store.db import unit_of_work
from partners.catalogue import UNIT_KINDS
from partners.data_inclusion import (
    MODE_MOBILISATION_LABELS,
    PUBLIC_LABELS,
    V1_THEMATIQUE_LABELS,
)
from partners.eligibility_rules import RULE_FIELDS
from partners.taxonomy import DOMAINS, THEMATIQUES
from web.flash import set_flash
from web.pages import CallerDep, PathId
from web.render import render
from web.security import Caller, OutOfScope, check_form_csrf

router = APIRouter(include_in_schema=False)
MAX_PAGE = 10_000


def _str(value: Any, limit: int = MAX_SEARCH) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text[:limit] or None


def _page(value: Any) -> int:
    text = str(value or "").strip()
    return min(int(text), MAX_PAGE) if text.isdigit() and int(text) > 0 else 1


def _reader(caller: Caller) -> None:
    if not can(caller.user, "read"):
        raise OutOfScope()


async def _form(request: Request, caller: Caller) -> dict[str, str]:
    await check_form_csrf(request, caller)
    raw = await request.form()
    return {k: str(v) for k, v in raw.items() if k != "csrf_token"}


def source_label(service: m.ImportedService | None) -> str:
    """Where an entry comes from, in French."""
    if service is None:
        return CATALOGUE_SOURCE
    return f"data·inclusion, producteur « {service.source} »"


# --- the directory -------------------------------------------------------------------------


@router.get("/partenaires")
def partners_page(request: Request, caller: CallerDep) -> Response:
    _reader(caller)
    q = request.query_params
    territory = _str(q.get("territoire"))
    filters = DirectoryFilters(
        search=_str(q.get("q")),
        thematique=q.get("thematique") if q.get("thematique") in THEMATIQUES else None,
        territory=territory,
        domain=q.get("domaine") if q.get("domaine") in DOMAINS else None,
        origin=q.get("origine") if q.get("origine") in ORIGINS else None,
        to_review=q.get("a_verifier") == "1",
        withdrawn=q.get("retires") == "1",
        page=_page(q.get("page")),
    )
    app = request.app.state
    with unit_of_work(app.db) as session:
        found = directory(session, filters, today=app.clock.today())
        territories = session.scalars(select(m.Territory).order_by(m.Territory.name)).all()
    rows = found.catalogue
    offers = sum(len(r.offers) for r in rows)
    count = plural(len(rows), "partenaire") + (f" · {plural(offers, 'offre')}" if rows else "")
    params = {
        k: v
        for k, v in {
            "q": filters.search,
            "thematique": filters.thematique,
            "territoire": filters.territory,
            "domaine": filters.domain,
            "origine": filters.origin,
            "a_verifier": "1" if filters.to_review else None,
            "retires": "1" if filters.withdrawn else None,
        }.items()
        if v
    }

    def page_url(n: int) -> str:
        return "/partenaires?" + urlencode({**params, "page": str(n)})

    return render(
        request,
        "partners.html",
        {
            "caller": caller,
            "rows": rows,
            "found": found,
            "filters": filters,
            "territories": territories,
            "domains": DOMAINS,
            "thematiques": THEMATIQUES,
            "territory": filters.territory,
            "domain": filters.domain,
            "search": filters.search or "",
            "count": count,
            "unit_count": unit_count,
            "plural": plural,
            "page_url": page_url,
            "source_label": source_label,
            "catalogue_source": CATALOGUE_SOURCE,
        },
    )


# --- an offer's page ---------------------------------------------------------------------


def _offer_response(
    request: Request,
    caller: Caller,
    offer_id: int,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    app = request.app.state
    try:
        with unit_of_work(app.db) as session:
            page = offer_page(session, caller.user, offer_id, today=app.clock.today())
            return render(
                request,
                "partner_offer.html",
                {
                    "caller": caller,
                    "page": page,
                    "error": error,
                    "form": form or {},
                    "source_label": source_label,
                    "RULE_FIELDS": RULE_FIELDS,
                    "OPS": OPS,
                    "UNIT_KINDS": UNIT_KINDS,
                    "V1_THEMATIQUE_LABELS": V1_THEMATIQUE_LABELS,
                    "PUBLIC_LABELS": PUBLIC_LABELS,
                    "MODE_MOBILISATION_LABELS": MODE_MOBILISATION_LABELS,
                    "unit_count": unit_count,
                },
                status=status,
            )
    except NotFound:
        raise OutOfScope() from None


@router.get("/partenaires/offres/{offer_id}")
def offer_detail(request: Request, caller: CallerDep, offer_id: PathId) -> Response:
    _reader(caller)
    return _offer_response(request, caller, offer_id)


def _write(request: Request, caller: Caller, offer_id: int, what: str, form: dict[str, str]) -> str:
    app = request.app.state
    with unit_of_work(app.db, immediate=True) as session:
        if what == "rule" and form.get("retirer"):
            index = int(form["retirer"]) if form["retirer"].isdigit() else 0
            remove_rule(session, caller.user, offer_id, index=index, clock=app.clock)
            return "Règle retirée."
        if what == "rule":
            add_rule(
                session,
                caller.user,
                offer_id,
                field_name=form.get("field", ""),
                op=form.get("op", ""),
                value=form.get("value", "")[:200],
                label=form.get("label", ""),
                clock=app.clock,
            )
            return "Règle ajoutée."
        capacity = form.get("capacity", "").strip()
        pool = tie_pool(
            session,
            caller.user,
            offer_id,
            territory_code=form.get("territory", "")[:80],
            capacity=int(capacity) if capacity.isdigit() and len(capacity) < 7 else 0,
            unit_kind=form.get("unit_kind", "")[:20],
            clock=app.clock,
        )
        return f"Contingent enregistré : {unit_count(pool.capacity, pool.unit_kind)}."


async def _offer_write(request: Request, caller: Caller, offer_id: int, what: str) -> Response:
    form = await _form(request, caller)
    try:
        message = await run_in_threadpool(_write, request, caller, offer_id, what, form)
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        text = exc.message[:1].upper() + exc.message[1:]
        return _offer_response(
            request, caller, offer_id, error=f"{text}.", form=form, status=exc.status
        )
    return set_flash(
        request,
        RedirectResponse(f"/partenaires/offres/{offer_id}", status_code=303),
        message,
    )


@router.post("/partenaires/offres/{offer_id}/regles")
async def offer_rules(request: Request, caller: CallerDep, offer_id: PathId) -> Response:
    return await _offer_write(request, caller, offer_id, "rule")


@router.post("/partenaires/offres/{offer_id}/contingents")
async def offer_pools(request: Request, caller: CallerDep, offer_id: PathId) -> Response:
    return await _offer_write(request, caller, offer_id, "pool")


# --- orienting towards a service -----------------------------------------------------------


def _orientation_response(
    request: Request,
    caller: Caller,
    referral_id: int,
    offer_id: int,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    app = request.app.state
    try:
        with unit_of_work(app.db) as session:
            view = orientation_view(session, caller.user, referral_id, offer_id)
            return render(
                request,
                "orientation_service.html",
                {
                    "caller": caller,
                    "view": view,
                    "error": error,
                    "form": form or {},
                    "source_label": source_label,
                },
                status=status,
            )
    except NotFound:
        raise OutOfScope() from None


@router.get("/orientations/{referral_id}/orienter/{offer_id}")
def orientation_page(
    request: Request, caller: CallerDep, referral_id: PathId, offer_id: PathId
) -> Response:
    return _orientation_response(request, caller, referral_id, offer_id)


def _record(
    request: Request, caller: Caller, referral_id: int, offer_id: int, form: dict[str, str]
) -> None:
    app = request.app.state
    version = form.get("version", "").strip()
    with unit_of_work(app.db, immediate=True) as session:
        record_orientation(
            session,
            app.settings,
            referral_id,
            offer_id,
            actor=Actor.of(caller.user),
            clock=app.clock,
            mode=form.get("mode") or None,
            note=form.get("note"),
            expected_version=int(version) if version.isdigit() and len(version) < 10 else None,
        )


@router.post("/orientations/{referral_id}/orienter/{offer_id}")
async def orientation_submit(
    request: Request, caller: CallerDep, referral_id: PathId, offer_id: PathId
) -> Response:
    form = await _form(request, caller)
    try:
        await run_in_threadpool(_record, request, caller, referral_id, offer_id, form)
    except NotFound:
        raise OutOfScope() from None
    except DomainError as exc:
        text = exc.message[:1].upper() + exc.message[1:]
        return _orientation_response(
            request,
            caller,
            referral_id,
            offer_id,
            error=text if text.endswith(".") else f"{text}.",
            form=form,
            status=exc.status,
        )
    return set_flash(
        request,
        RedirectResponse(f"/orientations/{referral_id}", status_code=303),
        "Orientation enregistrée.",
    )
