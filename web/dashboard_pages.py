"""The home page of every role, "Tableau de bord": what waits, for whom, and where to act.

Why one address for all roles: after login everybody lands here and sees the figures of their
own scope — a chargée their load and what is late, a coordination its territory, the national
team the territories side by side, a CIP/ESP their chantier's salarié·es, a partner what waits
for its answer. Each figure links to the queue filtered so that its total is that very figure
(same scope, same WHERE: ``engine.referrals.dashboard``), or to the case. Charts are the
server-drawn SVG of the Impact page (``reporting.charts``), each followed by its table.

Scope: ``?territoire=`` opens one territory's view, for the national team (any territory) and
a coordination (its own); any other value or role is the same 404 as a page that does not
exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from fastapi import APIRouter, Request
from markupsafe import Markup
from starlette.responses import Response

from engine.allocation.review import PoolRow, pools_overview
from engine.domain.labels import (
    DOMAIN_LABELS,
    OVERDUE_LABEL,
    STATE_PLURAL_LABELS,
    fr_number,
    plural,
)
from engine.referrals.dashboard import (
    HORS_TERRITOIRE,
    LIST_LIMIT,
    RECENT_ANSWERS,
    RESPONSE_WINDOW,
    NetworkHome,
    OfficerHome,
    TerritoryHome,
    chantier_home,
    network_home,
    officer_home,
    partner_home,
    territory_home,
    territory_of,
)
from engine.referrals.queue import MAX_SEARCH, QueueFilters
from engine.store import models as m
from engine.store.db import unit_of_work
from matching.rules import load_rules
from reporting import charts
from reporting.formats import value_text
from web.pages import CallerDep, queue_url
from web.render import render
from web.reporting_pages import cut_label
from web.security import OutOfScope

router = APIRouter(include_in_schema=False)

# The columns of a territory's queues: the states someone must move, then the overdue ones.
QUEUE_COLUMNS = ("new", "triaging", "referred", "waitlisted")
TITLE = "Tableau de bord"
T = TypeVar("T")


def queue_link(**filters: Any) -> str:
    """The queue's address for these filters (``QueueFilters`` fields), as the queue writes it."""
    return queue_url(QueueFilters(**filters))


def _svg(svg: str) -> Markup:
    return Markup(svg)  # drawn by reporting.charts, every text escaped there


@router.get("/tableau-de-bord")
def dashboard_page(request: Request, caller: CallerDep) -> Response:
    user = caller.user
    asked = request.query_params.get("territoire")
    if asked is not None and (not asked or len(asked) > MAX_SEARCH):
        raise OutOfScope()
    clock = request.app.state.clock
    now = clock.now()
    settings = request.app.state.settings
    context: dict[str, Any] = {
        "caller": caller,
        "title": TITLE,
        "queue_link": queue_link,
        "plural": plural,
        "fr_number": fr_number,
        "fmt": value_text,
        "STATE_PLURAL_LABELS": STATE_PLURAL_LABELS,
        "OVERDUE_LABEL": OVERDUE_LABEL,
        "LIST_LIMIT": LIST_LIMIT,
    }
    with unit_of_work(request.app.state.db) as session:
        cache = request.app.state.queue_counts
        scope = cache.scope_key(user)

        def cached(key: tuple[Any, ...], compute: Callable[[], T]) -> T:
            """The home's figures, reused while no referral changed (``CountCache``)."""
            return cast(T, cache.cached(session, ("dashboard", *key, *scope), now, compute))

        if asked is not None or user.role == "coordinator":
            territory = territory_of(session, user, asked)
            if territory is None:
                raise OutOfScope()
            home = cached(  # the rules file is read only when the figures are computed
                ("territory", territory),
                lambda: territory_home(
                    session, user, territory, now=now, rules=load_rules(settings.rules_file)
                ),
            )
            if home.code == HORS_TERRITOIRE:  # the national pools only
                pools = [p for p in pools_overview(session, user) if p.scope is None]
            else:
                pools = pools_overview(session, user, territory=home.code)
            context.update(_territory(home, pools, national=user.role == "national_admin"))
        elif user.role == "national_admin":
            context.update(
                _network(cached(("network",), lambda: network_home(session, user, now=now)))
            )
        elif user.role == "officer":
            home_o = cached(
                ("officer",),
                lambda: officer_home(session, user, now=now, rules=load_rules(settings.rules_file)),
            )
            name = session.get(m.Territory, user.territory_id) if user.territory_id else None
            context.update(_officer(home_o, user, name.name if name else ""))
        elif user.role == "cip":
            home_c = cached(
                ("chantier",), lambda: chantier_home(session, user, now=now, today=clock.today())
            )
            if home_c is None:
                raise OutOfScope()
            context.update({"view": "chantier", "home": home_c})
        elif user.role == "partner_contact":
            home_p = cached(("partner",), lambda: partner_home(session, user, now=now))
            if home_p is None:
                raise OutOfScope()
            context.update({"view": "partner", "home": home_p})
        else:
            raise OutOfScope()
    return render(request, "dashboard.html", context)


def _officer(home: OfficerHome, user: m.StaffUser, territory: str) -> dict[str, Any]:
    states = [s for s in home.mine.by_state if home.mine[s]]
    labels = [STATE_PLURAL_LABELS[s] for s in states]
    chart = None
    if states:
        chart = _svg(
            charts.bar_chart(
                "Mes orientations en cours, par état",
                labels,
                [home.mine[s] for s in states],
                kind="count",
            )
        )
    return {
        "view": "officer",
        "home": home,
        "scope_label": " · ".join(
            x for x in (DOMAIN_LABELS.get(user.domain or ""), territory) if x
        ),
        "chart": chart,
        "recent_days": RECENT_ANSWERS.days,
    }


def _territory(home: TerritoryHome, pools: list[PoolRow], *, national: bool) -> dict[str, Any]:
    territory = home.code
    load_chart = None
    if home.loads:
        load_chart = _svg(
            charts.bar_chart(
                "Charge des chargé·es : orientations en cours rapportées au plafond",
                [
                    cut_label(f"{x.name} ({DOMAIN_LABELS.get(x.domain or '', '')})")
                    for x in home.loads
                ],
                [x.ratio for x in home.loads],
                kind="rate",
            )
        )
    delay_chart = None
    if home.delays:
        delay_chart = _svg(
            charts.bar_chart(
                "Délai médian de réponse des partenaires",
                [cut_label(d.partner) for d in home.delays],
                [d.median_days for d in home.delays],
                kind="median_days",
            )
        )
    pool_chart = None
    if pools:
        pool_chart = _svg(
            charts.bar_chart(
                "Occupation des dispositifs : places attribuées ou proposées sur la capacité",
                [cut_label(p.name) for p in pools],
                [(p.used + p.proposed) / p.capacity if p.capacity else None for p in pools],
                kind="rate",
            )
        )
    return {
        "view": "territory",
        "home": home,
        "territory": territory,
        "national": national,
        "columns": QUEUE_COLUMNS,
        "load_chart": load_chart,
        "delay_chart": delay_chart,
        "pools": pools,
        "pool_chart": pool_chart,
        "window_days": RESPONSE_WINDOW.days,
    }


def _network(home: NetworkHome) -> dict[str, Any]:
    chart = None
    if home.lines:
        chart = _svg(
            charts.bar_chart(
                "Orientations en cours et en retard, par territoire",
                [cut_label(x.name) for x in home.lines],
                [x.open for x in home.lines],
                kind="count",
                second=[x.overdue for x in home.lines],
                series=("En cours", "En retard"),
            )
        )
    return {"view": "network", "home": home, "chart": chart}
