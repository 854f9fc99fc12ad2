"""Who is calling, and is this form really ours: session cookie and CSRF checks.

Why one module: every page and API route asks the same two questions; answering them in one
place means the cookie flags (HttpOnly, SameSite=Lax, Secure on https), the constant-time
CSRF comparison and the "anonymous → login page / 401" rule cannot drift apart.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from starlette.responses import Response

from engine.access.auth import SESSION_LIFETIME, session_user
from engine.store import models as m
from engine.store.db import unit_of_work

SESSION_COOKIE = "aiguillage_session"
LOGIN_CSRF_COOKIE = "aiguillage_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class LoginRequired(Exception):
    """Anonymous call to a page: redirect to the login page."""


class ApiUnauthenticated(Exception):
    """Anonymous call to the API: 401 JSON."""


class CsrfRejected(Exception):
    """Missing or wrong CSRF token: nothing is changed, 403."""


class OutOfScope(Exception):
    """Missing or out of the user's scope: the same 404 for both."""


@dataclass(frozen=True)
class Caller:
    user: m.StaffUser
    csrf_token: str


def _secure(request: Request) -> bool:
    return request.app.state.settings.base_url.startswith("https://")


def current_caller(request: Request) -> Caller | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    with unit_of_work(request.app.state.db) as session:
        found = session_user(session, token[:200], now=request.app.state.clock.now())
        if found is None:
            return None
        user, web_session = found
        session.expunge(user)
        return Caller(user=user, csrf_token=web_session.csrf_token)


def page_caller(request: Request) -> Caller:
    """Dependency of pages: the caller, or a redirect to the login page."""
    caller = current_caller(request)
    if caller is None:
        raise LoginRequired()
    return caller


def api_caller(request: Request) -> Caller:
    """Dependency of the API: the caller, or 401; unsafe methods need the CSRF header."""
    caller = current_caller(request)
    if caller is None:
        raise ApiUnauthenticated()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), caller.csrf_token.encode()):
            raise CsrfRejected()
    return caller


async def check_form_csrf(request: Request, caller: Caller) -> None:
    """Every POST form carries the session's CSRF token in a hidden field."""
    form = await request.form()
    sent = str(form.get(CSRF_FIELD, ""))
    if not sent or not hmac.compare_digest(sent.encode(), caller.csrf_token.encode()):
        raise CsrfRejected()


def login_csrf(request: Request) -> str:
    """Anonymous forms (login) use a double-submit cookie: cookie value == hidden field."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)


async def check_login_csrf(request: Request) -> None:
    form = await request.form()
    sent = str(form.get(CSRF_FIELD, ""))
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise CsrfRejected()


def set_login_csrf_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/connexion",
    )


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request)
    )


def partner_form_token(secret: str, link_token: str) -> str:
    """CSRF value of the partner answer page: bound to the link, unknowable without the secret."""
    return hmac.new(secret.encode(), b"partner-form:" + link_token.encode(), "sha256").hexdigest()
