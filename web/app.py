"""The web application factory: French pages, the JSON API under /api/v1, local static files.

Why a factory: the CLI starts it by import string (``uvicorn.run("web.app:create_app",
factory=True)``) and the tests build one per database, each with its own Settings and
Database — nothing is read at import time. Errors are turned into French pages (or JSON for
the API) here, so that "not found" and "out of scope" look exactly the same.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from engine.domain.clock import Clock
from engine.domain.errors import DomainError, sentence
from engine.referrals.queue_cache import CountCache
from engine.store.db import Database
from engine.store.settings import Settings, load_settings
from web import (
    api,
    choice_pages,
    commission_pages,
    dashboard_pages,
    directory_pages,
    pages,
    partner_link,
    pathway_pages,
    reporting_pages,
    rights_pages,
)
from web.edge import EdgeMiddleware, route_of
from web.render import render
from web.security import ApiUnauthenticated, CsrfRejected, LoginRequired, OutOfScope

STATIC_DIR = Path(__file__).parent / "static"
log = logging.getLogger("aiguillage.web")


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


async def _login(request: Request, _exc: LoginRequired) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/connexion?suivant={quote(target)}", status_code=303)


async def _api_401(_request: Request, _exc: ApiUnauthenticated) -> Response:
    return JSONResponse(
        {"detail": "Authentification requise : connectez-vous."},
        status_code=401,
        headers={"WWW-Authenticate": 'Cookie realm="aiguillage"'},
    )


async def _csrf(request: Request, _exc: CsrfRejected) -> Response:
    message = (
        "Ce formulaire n'a pas été accepté : il a expiré ou ne vient pas d'Aiguillage. "
        "Rien n'a été modifié. Rechargez la page et recommencez."
    )
    return _error(request, 403, "Formulaire refusé", message)


async def _scope(request: Request, _exc: OutOfScope) -> Response:
    return _not_found(request)


async def _domain(request: Request, exc: DomainError) -> Response:
    """Domain errors mapped once: NotFound 404, Forbidden 403, Conflict 409, Refused 422."""
    if exc.status == 404:
        return _not_found(request)
    title = {403: "Action refusée", 409: "Modification concurrente"}.get(
        exc.status, "Action impossible"
    )
    return _error(request, exc.status, title, sentence(exc.message))


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if errors and all(e.get("loc", ("",))[0] == "path" for e in errors):
        return _not_found(request)  # an id that cannot exist: the same 404 as a missing one
    fields = sorted({str(e.get("loc", ("", "?"))[-1]) for e in errors})
    message = "Saisie refusée : vérifiez " + ", ".join(f"« {f} »" for f in fields) + "."
    if _is_api(request):
        return JSONResponse(
            {
                "detail": message,
                "errors": [
                    {
                        "field": ".".join(str(x) for x in e.get("loc", ())),
                        "message": e.get("msg", ""),
                    }
                    for e in errors
                ],
            },
            status_code=422,
        )
    return _error(request, 422, "Saisie refusée", message)


async def _database(request: Request, exc: DBAPIError) -> Response:
    """A lost write race or a value the database refuses: 409 / 422 in French, never 500.
    The log line carries the request id, route and error class only."""
    status = 409 if isinstance(exc, (OperationalError, IntegrityError)) else 422
    log.warning(
        "request=%s route=%s status=%s error=%s",
        request.scope.get("state", {}).get("request_id", "?"),
        route_of(request.scope),
        status,
        type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__,
    )
    if status == 409:
        return _error(
            request,
            409,
            "Modification concurrente",
            (
                "Quelqu'un d'autre enregistrait au même moment : rien n'a été modifié. "
                "Rechargez la page et recommencez."
            ),
        )
    return _error(
        request,
        422,
        "Saisie refusée",
        "Une valeur saisie n'est pas acceptée : rien n'a été enregistré.",
    )


async def _http(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 404:
        return _not_found(request)
    message = {405: "Méthode non autorisée."}.get(exc.status_code, str(exc.detail))
    return _error(request, exc.status_code, "Erreur", message)


# Every error answered once, in French (pages) or JSON (API): never a 500 with a trace.
_ERROR_HANDLERS: dict[type[Exception], Any] = {
    LoginRequired: _login,
    ApiUnauthenticated: _api_401,
    CsrfRejected: _csrf,
    OutOfScope: _scope,
    DomainError: _domain,
    RequestValidationError: _invalid,
    DBAPIError: _database,
    StarletteHTTPException: _http,
}


def create_app(
    settings: Settings | None = None, db: Database | None = None, clock: Clock | None = None
) -> FastAPI:
    """Build the app for one database (the settings' one unless given) and one clock."""
    settings = settings or load_settings()
    app = FastAPI(
        title="Aiguillage — API",
        description="Orientations et places du réseau Convergence France (API JSON).",
        version="1",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db or Database(settings.database_url)
    app.state.clock = clock or Clock.system()
    app.state.queue_counts = CountCache()
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(pages.router)
    app.include_router(dashboard_pages.router)
    app.include_router(directory_pages.router)
    app.include_router(pathway_pages.router)
    app.include_router(reporting_pages.router)
    app.include_router(partner_link.router)
    app.include_router(rights_pages.router)
    app.include_router(commission_pages.router)
    app.include_router(choice_pages.router)
    app.include_router(api.router)
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_body_bytes)

    for exc_class, handler in _ERROR_HANDLERS.items():
        app.add_exception_handler(exc_class, handler)
    return app


def _error(request: Request, status: int, title: str, message: str) -> Response:
    if _is_api(request):
        return JSONResponse({"detail": message}, status_code=status)
    return render(request, "error.html", {"title": title, "message": message}, status=status)


def _not_found(request: Request) -> Response:
    message = "La page demandée n'existe pas ou vous n'y avez pas accès."
    if _is_api(request):
        return JSONResponse({"detail": "Introuvable."}, status_code=404)
    return render(
        request, "error.html", {"title": "Page introuvable", "message": message}, status=404
    )
