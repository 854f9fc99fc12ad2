"""The web application factory: French pages, the JSON API under /api/v1, local static files.

Why a factory: the CLI starts it by import string (``uvicorn.run("web.app:create_app",
factory=True)``) and the tests build one per database, each with its own Settings and
Database — nothing is read at import time. Errors are turned into French pages (or JSON for
the API) here, so that "not found" and "out of scope" look exactly the same.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from engine.db import Database
from engine.settings import Settings, load_settings
from web import api, pages, partner_link
from web.render import render
from web.security import ApiUnauthenticated, CsrfRejected, LoginRequired, OutOfScope

STATIC_DIR = Path(__file__).parent / "static"


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    """Build the app for one database (the settings' one unless given)."""
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
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(pages.router)
    app.include_router(partner_link.router)
    app.include_router(api.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
        )
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/connexion?suivant={quote(target)}", status_code=303)

    @app.exception_handler(ApiUnauthenticated)
    async def _api_401(_request: Request, _exc: ApiUnauthenticated) -> Response:
        return JSONResponse(
            {"detail": "Authentification requise : connectez-vous."},
            status_code=401,
            headers={"WWW-Authenticate": 'Cookie realm="aiguillage"'},
        )

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, _exc: CsrfRejected) -> Response:
        message = (
            "Ce formulaire n'a pas été accepté : il a expiré ou ne vient pas d'Aiguillage. "
            "Rien n'a été modifié. Rechargez la page et recommencez."
        )
        if _is_api(request):
            return JSONResponse({"detail": message}, status_code=403)
        return render(request, "error.html", {"title": "Formulaire refusé", "message": message},
                      status=403)  # fmt: skip

    @app.exception_handler(OutOfScope)
    async def _scope(request: Request, _exc: OutOfScope) -> Response:
        return _not_found(request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _not_found(request)
        message = {405: "Méthode non autorisée."}.get(exc.status_code, str(exc.detail))
        if _is_api(request):
            return JSONResponse({"detail": message}, status_code=exc.status_code)
        return render(request, "error.html", {"title": "Erreur", "message": message},
                      status=exc.status_code)  # fmt: skip

    return app


def _not_found(request: Request) -> Response:
    message = "La page demandée n'existe pas ou vous n'y avez pas accès."
    if _is_api(request):
        return JSONResponse({"detail": "Introuvable."}, status_code=404)
    return render(request, "error.html", {"title": "Page introuvable", "message": message},
                  status=404)  # fmt: skip
