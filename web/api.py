"""The JSON API under /api/v1, documented by OpenAPI at /openapi.json.

Why the same session as the pages: the API serves the same staff from the same browser (and
scripts that log in first); unsafe methods need the session's CSRF token in the
``X-CSRF-Token`` header. Lists and reads use the very queries of the pages, so scope and the
access log are identical; identities never leave through the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from engine.access.permissions import can
from engine.allocation.review import pools_overview
from engine.domain.errors import Forbidden
from engine.domain.lifecycle import STATE_LABELS
from engine.referrals.actions import Actor, StaleEdit, transition
from engine.referrals.case_file import read_case_file
from engine.referrals.queue import QueueFilters, list_queue
from engine.store import models as m
from engine.store.db import unit_of_work
from partners.taxonomy import label_of
from web.security import Caller, OutOfScope, api_caller

router = APIRouter(prefix="/api/v1", tags=["orientations"])
ApiCaller = Annotated[Caller, Depends(api_caller)]
PathId = Annotated[int, Path(ge=1, le=m.MAX_ID, description="Identifiant (1 à 2³¹−1).")]
BodyId = Annotated[int | None, Field(None, ge=1, le=m.MAX_ID)]
Text = Annotated[str | None, Field(None, max_length=4000)]
Code = Annotated[str | None, Field(None, max_length=40)]
Filter = Annotated[str | None, Query(max_length=80)]


class Me(BaseModel):
    id: int
    email: str
    display_name: str
    role: str
    csrf_token: str = Field(description="À renvoyer dans l'en-tête X-CSRF-Token (POST).")


class ReferralItem(BaseModel):
    """One queue row; a partner contact gets the fields of its case page only (the need,
    the territory, the state) — no points, chantier, programme or officer."""

    id: int
    reference: str = Field(description="Référence pseudonyme de la personne (SAL-XXXXXX).")
    external_ref: str | None = Field(
        default=None,
        description="Référence de la personne pour son chantier (pas pour un partenaire).",
    )
    thematique: str
    thematique_label: str
    domain: str
    territory: str | None
    chantier: str | None = None
    programme: str | None = None
    state: str
    state_label: str
    priority: int | None = None
    due_at: datetime | None
    overdue: bool
    created_at: datetime
    version: int


class ReferralPage(BaseModel):
    items: list[ReferralItem]
    next: str | None = Field(description="Curseur de la page suivante (paramètre after).")


class Event(BaseModel):
    at: datetime
    from_state: str | None
    to_state: str
    action: str
    actor: str
    reason: str | None


class ReferralDetail(BaseModel):
    id: int
    reference: str
    thematique: str
    thematique_label: str
    state: str
    state_label: str
    version: int
    territory: str | None
    priority: int | None = None
    priority_breakdown: list[list[object]] | None = None
    explanation: str | None = None
    actions: list[str]
    events: list[Event] = []


class TransitionIn(BaseModel):
    action: str = Field(max_length=40)
    expected_version: BodyId = None
    outcome: Code = None
    reason: Code = None
    note: Text = None
    offer_id: BodyId = None
    pool_id: BodyId = None
    new_owner_id: BodyId = None


class PoolItem(BaseModel):
    id: int
    code: str
    name: str
    capacity: int
    used: int
    waiting: int


def _item(r, minimal: bool) -> ReferralItem:  # type: ignore[no-untyped-def]
    item = ReferralItem(
        id=r.id,
        reference=r.reference,
        thematique=r.thematique,
        thematique_label=label_of(r.thematique),
        domain=r.domain,
        territory=r.territory,
        state_label=STATE_LABELS[r.state],
        due_at=r.due_at,
        overdue=r.overdue,
        created_at=r.created_at,
        version=r.version,
        state=r.state,
    )
    if not minimal:
        item.chantier, item.programme, item.priority = r.chantier, r.programme, r.priority
        item.external_ref = r.external_ref
    return item


@router.get("/me", response_model=Me, summary="Le compte connecté")
def me(caller: ApiCaller) -> Me:
    u = caller.user
    return Me(
        id=u.id,
        email=u.email,
        display_name=u.display_name,
        role=u.role,
        csrf_token=caller.csrf_token,
    )


# The query parameters of the list: anything else is refused (422) rather than silently
# ignored, so that a misspelt filter (``reference`` typed ``ref``) never returns the whole queue.
LIST_PARAMS = frozenset(
    {"after", "limit", "state", "domain", "territory", "chantier", "programme", "sort",
     "reference", "q", "overdue"}
)  # fmt: skip


def _refuse_unknown_params(request: Request) -> None:
    unknown = sorted({k[:40] for k in request.query_params if k not in LIST_PARAMS})
    if unknown:
        raise RequestValidationError(
            [
                {"loc": ("query", k), "msg": "paramètre inconnu", "type": "extra_forbidden"}
                for k in unknown
            ]
        )


@router.get(
    "/referrals",
    response_model=ReferralPage,
    summary="Orientations de mon périmètre",
    responses={
        403: {"description": "Recherche par nom non autorisée pour ce rôle"},
        422: {"description": "Paramètre inconnu ou invalide, curseur invalide"},
    },
)
def list_referrals(
    request: Request,
    caller: ApiCaller,
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    state: Annotated[
        str | None,
        Query(
            max_length=20,
            description="un état, « open » (défaut) ou « all » (défaut d'une recherche)",
        ),
    ] = None,
    domain: Filter = None,
    territory: Filter = None,
    chantier: Filter = None,
    programme: Filter = None,
    sort: str = Query("priority", pattern="^(priority|due|age)$"),
    reference: Annotated[
        str | None,
        Query(
            max_length=80,
            description="Référence SAL-XXXXXX, ou référence du chantier (sauf contact partenaire).",
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=80,
            description="Nom ou prénom : réservé aux rôles qui peuvent lire l'identité (403).",
        ),
    ] = None,
    overdue: Annotated[bool, Query(description="Seulement les orientations en retard.")] = False,
) -> ReferralPage:
    _refuse_unknown_params(request)
    name = (q or "").strip() or None
    if name and not can(caller.user, "read_identity"):
        raise Forbidden(
            "la recherche par nom est réservée aux rôles habilités à lire l'identité des "
            "salarié·es : cherchez par référence"
        )
    filters = QueueFilters(
        domain=domain,
        territory=territory,
        state=state,
        chantier=chantier,
        programme=programme,
        sort=sort,
        reference=(reference or "").strip() or None,
        name=name,
        overdue=overdue,
    )
    with unit_of_work(request.app.state.db) as session:
        page = list_queue(
            session,
            caller.user,
            filters,
            after=after,
            limit=limit,
            now=request.app.state.clock.now(),
        )
    minimal = caller.user.role == "partner_contact"
    return ReferralPage(items=[_item(r, minimal) for r in page.rows], next=page.next_cursor)


def _detail(request: Request, caller: Caller, referral_id: int) -> ReferralDetail:
    with unit_of_work(request.app.state.db, immediate=True) as session:
        case = read_case_file(
            session,
            caller.user,
            referral_id,
            purpose="consultation (API)",
            now=request.app.state.clock.now(),
        )
        if case is None:
            raise OutOfScope()
        ref = case.referral
        out = ReferralDetail(
            id=ref.id,
            reference=case.salarie.reference,
            thematique=ref.thematique,
            thematique_label=label_of(ref.thematique),
            state=ref.state,
            state_label=STATE_LABELS[ref.state],
            version=ref.version,
            territory=case.territory.code if case.territory else None,
            actions=[t.action for t in case.actions],
        )
        if not case.minimal:
            out.priority = ref.priority
            out.priority_breakdown = ref.priority_breakdown
            out.explanation = ref.explanation
            out.events = [
                Event(
                    at=e.at,
                    from_state=e.from_state,
                    to_state=e.to_state,
                    action=e.action,
                    actor=e.actor_label,
                    reason=e.reason,
                )
                for e in case.events
            ]
    return out


@router.get(
    "/referrals/{referral_id}",
    response_model=ReferralDetail,
    summary="Une orientation (lecture journalisée)",
)
def get_referral(request: Request, caller: ApiCaller, referral_id: PathId) -> ReferralDetail:
    return _detail(request, caller, referral_id)


@router.post(
    "/referrals/{referral_id}/transitions",
    response_model=ReferralDetail,
    summary="Appliquer une action du cycle de vie",
    responses={
        403: {"description": "Interdite"},
        409: {"description": "Modifiée entre-temps"},
        422: {"description": "Refusée"},
    },
)
def post_transition(
    request: Request, caller: ApiCaller, referral_id: PathId, body: TransitionIn
) -> ReferralDetail | JSONResponse:
    try:
        with unit_of_work(request.app.state.db, immediate=True) as session:
            transition(
                session,
                request.app.state.settings,
                referral_id,
                body.action,
                actor=Actor.of(caller.user),
                clock=request.app.state.clock,
                expected_version=body.expected_version,
                outcome=body.outcome,
                reason=body.reason,
                note=body.note,
                offer_id=body.offer_id,
                pool_id=body.pool_id,
                new_owner_id=body.new_owner_id,
            )
    except StaleEdit as exc:  # the other domain errors are mapped once, by the app
        return JSONResponse({"detail": str(exc), "current_version": exc.current_version}, 409)
    return _detail(request, caller, referral_id)


@router.get("/pools", response_model=list[PoolItem], summary="Dispositifs à places comptées")
def list_pools(request: Request, caller: ApiCaller) -> list[PoolItem]:
    if not can(caller.user, "read"):
        raise OutOfScope()
    with unit_of_work(request.app.state.db) as session:
        rows = pools_overview(session, caller.user)
    return [
        PoolItem(
            id=p.id, code=p.code, name=p.name, capacity=p.capacity, used=p.used, waiting=p.waiting
        )
        for p in rows
    ]
