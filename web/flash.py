"""One-shot confirmation messages ("Action enregistrée …") after a redirect.

Why a signed cookie rather than ``?fait=…`` in the address: a message in the query string is
shown to anyone who opens the link, whether or not anything happened. The cookie is set by
the handler that really did the action, signed with the server's secret, read once and
cleared by the next page.
"""

from __future__ import annotations

from fastapi import Request
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.responses import Response

FLASH_COOKIE = "aiguillage_flash"
SALT = "aiguillage.flash"


def _serializer(request: Request) -> URLSafeSerializer:
    return URLSafeSerializer(request.app.state.settings.secret_key.get_secret_value(), salt=SALT)


def set_flash(request: Request, response: Response, message: str, *, path: str = "/") -> Response:
    """Attach a confirmation to a redirect; the next page of ``path`` shows it once."""
    response.set_cookie(
        FLASH_COOKIE,
        _serializer(request).dumps(message[:300]),
        max_age=120,
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.base_url.startswith("https://"),
        path=path,
    )
    return response


def pop_flash(request: Request) -> str | None:
    """The pending confirmation, if a genuine one was set (``clear_flash`` then drops it)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        value = _serializer(request).loads(raw)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


def clear_flash(request: Request, response: Response, *, path: str = "/") -> Response:
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path=path)
    return response
