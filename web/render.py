"""Jinja2 templates and the French labels and formats every page uses.

Why: one environment (autoescape on, StrictUndefined so a typo fails a test rather than
printing nothing) and one set of filters, so a date or a state reads the same everywhere.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import Response

from engine.domain.clock import as_utc
from engine.domain.labels import (
    ACTION_LABELS,
    DOMAIN_LABELS,
    EXIT_LABELS,
    FOLLOWUP_LABELS,
    FREIN_STATUS_LABELS,
    HEALTH_EVENT_LABELS,
    HOUSING_LABELS,
    OUTCOME_LABELS,
    PROGRAMME_LABELS,
    PROPOSAL_LABELS,
    REFERRED_BY_LABELS,
    REFUSAL_LABELS,
    ROLE_LABELS,
    RUN_STATUS_LABELS,
    STATE_LABELS,
    fr_number,
    plural,
)
from partners.taxonomy import label_of
from web.flash import clear_flash, pop_flash

TEMPLATES_DIR = Path(__file__).parent / "templates"
PARIS = ZoneInfo("Europe/Paris")


def fmt_date(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = as_utc(value).astimezone(PARIS)
    return f"{value.day:02d}/{value.month:02d}/{value.year}"  # strftime costs twice as much


def fmt_datetime(value: datetime | None) -> str:
    if value is None:
        return "—"
    return as_utc(value).astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}".replace("%", " %")


_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES_DIR)),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    # Templates ship with the package and never change under a running app: no stat() of
    # every template file on every render.
    auto_reload=False,
)
templates = Jinja2Templates(env=_env)
templates.env.filters.update(date=fmt_date, datetime=fmt_datetime, ratio=fmt_ratio)
templates.env.globals.update(
    STATE_LABELS=STATE_LABELS,
    OUTCOME_LABELS=OUTCOME_LABELS,
    REFUSAL_LABELS=REFUSAL_LABELS,
    DOMAIN_LABELS=DOMAIN_LABELS,
    ROLE_LABELS=ROLE_LABELS,
    PROGRAMME_LABELS=PROGRAMME_LABELS,
    HOUSING_LABELS=HOUSING_LABELS,
    FREIN_STATUS_LABELS=FREIN_STATUS_LABELS,
    PROPOSAL_LABELS=PROPOSAL_LABELS,
    ACTION_LABELS=ACTION_LABELS,
    RUN_STATUS_LABELS=RUN_STATUS_LABELS,
    EXIT_LABELS=EXIT_LABELS,
    FOLLOWUP_LABELS=FOLLOWUP_LABELS,
    HEALTH_EVENT_LABELS=HEALTH_EVENT_LABELS,
    REFERRED_BY_LABELS=REFERRED_BY_LABELS,
    thematique_label=label_of,
    plural=plural,
    fr_number=fr_number,
)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> Response:
    """Render a page; ``caller`` (or None) and ``csrf_token`` are always defined."""
    ctx: dict[str, Any] = {"caller": None, "csrf_token": "", "flash": None, "error": None}
    ctx.update(context or {})
    caller = ctx.get("caller")
    if caller is not None and not ctx["csrf_token"]:
        ctx["csrf_token"] = caller.csrf_token
    ctx["path"] = request.url.path
    pending = pop_flash(request)
    if ctx["flash"] is None and pending:
        ctx["flash"] = pending
    response = templates.TemplateResponse(request, name, ctx, status_code=status)
    return clear_flash(request, response) if pending else response
