"""The web edge: what every request goes through before and after its handler.

Why a pure ASGI middleware (not ``@app.middleware``): it must also wrap the 500 answer, which
Starlette builds outside the user middleware stack — so that an unexpected error still gets
the security headers, a French page, and a log line with the request id, route, status and
error class only (never a statement's parameters, a form field or a traceback with values).
It also refuses, before any handler runs, bodies over the size limit (French 413) and NUL
bytes anywhere in the path, query or body (French 422): PostgreSQL cannot store them and
nobody types them.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from engine.domain.errors import sentence

log = logging.getLogger("aiguillage.web")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'",
    ),
)
NUL_MARKERS = (b"\x00", b"%00")  # in an address: raw, or percent-encoded

ERROR_TITLES = {
    404: "Page introuvable",
    409: "Modification concurrente",
    413: "Envoi trop volumineux",
    422: "Saisie refusée",
    500: "Erreur du serveur",
}


def route_of(scope: Scope) -> str:
    """The route template (``/orientations/{referral_id}``), never the concrete path."""
    route = scope.get("route")
    return getattr(route, "path", None) or "?"


def error_page(status: int, message: str, *, api: bool) -> tuple[bytes, bytes]:
    """(body, content type) of a French error answer; the API gets ``{"detail": …}``."""
    if api:
        return json.dumps({"detail": message}, ensure_ascii=False).encode(), b"application/json"
    title = ERROR_TITLES.get(status, "Erreur")
    html = (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{title} — Aiguillage</title>"
        '<link rel="stylesheet" href="/static/style.css"></head><body><main id="contenu">'
        f"<h1>{title}</h1><p>{message}</p>"
        '<p><a href="/file">Revenir à ma file</a></p></main></body></html>'
    )
    return html.encode(), b"text/html; charset=utf-8"


class EdgeMiddleware:
    """Request id, body limit, NUL bytes, security headers, and the last-resort 500."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(6)
        scope.setdefault("state", {})["request_id"] = request_id
        api = scope.get("path", "").startswith("/api/")
        static = scope.get("path", "").startswith("/static/")
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if not static and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        async def refuse(status: int, message: str) -> None:
            body, ctype = error_page(status, message, api=api)
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", ctype),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

        refusal = _refusal_of_target(scope)
        if refusal is not None:
            await refuse(422, refusal)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await refuse(413, self._too_large())
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await refuse(413, self._too_large())
                return
        refusal = _refusal_of_body(scope, body)
        if refusal is not None:
            await refuse(422, refusal)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay, send_with_headers)
        except Exception as exc:  # the last resort: log the class only, answer in French
            log.error(
                "request=%s route=%s status=500 error=%s",
                request_id,
                route_of(scope),
                type(exc).__name__,
            )
            if not started:
                await refuse(
                    500,
                    sentence(
                        "une erreur inattendue est survenue ; rien n'a été enregistré. Réessayez, "
                        f"et si elle se reproduit signalez la référence {request_id}"
                    ),
                )

    def _too_large(self) -> str:
        return (
            f"L'envoi dépasse la taille autorisée ({self.max_body_bytes // 1000} ko) : "
            "rien n'a été enregistré."
        )


def _refusal_of_target(scope: Scope) -> str | None:
    """A NUL byte in the path or the query, encoded or not: the French refusal, or None."""
    raw_target = scope.get("raw_path") or scope.get("path", "").encode()
    if any(
        marker in raw_target + b"?" + scope.get("query_string", b"") for marker in NUL_MARKERS
    ) or "\x00" in scope.get("path", ""):
        return "L'adresse contient un caractère interdit (octet nul)."
    return None


def _refusal_of_body(scope: Scope, body: bytes) -> str | None:
    """A NUL byte in the body, as the content type spells it: the French refusal, or None."""
    ctype = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
    markers = [b"\x00"]
    if b"urlencoded" in ctype:
        markers.append(b"%00")  # a NUL typed in a form (a literal "%00" is sent as %2500)
    if b"json" in ctype:
        markers.append(b"\\u0000")
    if any(marker in body for marker in markers):
        return "Le formulaire contient un caractère interdit (octet nul) : rien n'a été enregistré."
    return None
