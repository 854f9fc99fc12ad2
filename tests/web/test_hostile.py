"""The web edge as an attacker tries it, on SQLite and PostgreSQL: every route with ids out of
range, NUL bytes and 1 MB strings in paths, query strings, forms and JSON bodies; two writers
racing on the same referral. Never a 5xx, and nothing personal in the server log.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.store import models as m
from tests.web.world import World, csrf_of, fresh_referral, login, world_per_database
from web.app import create_app

HOSTILE = [str(2**63), str(-(2**63) - 1), "0", "-1", "1e9", "a\x00b", "%00", "x" * 1_000_000]
FORM_FIELDS = ("action", "version", "offer_id", "pool_id", "new_owner_id", "note", "reason",
               "outcome", "assignee", "selection", "decision", "email", "password", "suivant",
               "mode_new_referrals")  # fmt: skip
QUERY_FIELDS = ("apres", "after", "avant", "limit", "state", "domain", "territory", "chantier",
                "programme", "sort", "etat", "domaine", "territoire", "tri", "moi", "suivant")  # fmt: skip
JSON_FIELDS = ("expected_version", "offer_id", "pool_id", "new_owner_id", "note", "reason",
               "outcome", "action")  # fmt: skip
TRIES: list[int] = []  # requests sent, for the note


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def hostile(request) -> World:
    yield from world_per_database(request)


def _routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    out = []
    stack = list(app.routes)
    while stack:
        route = stack.pop(0)
        inner = getattr(route, "original_router", None)  # an included router (FastAPI ≥ 0.150)
        if inner is not None:
            stack.extend(inner.routes)
        elif isinstance(route, APIRoute):
            for method in sorted(route.methods - {"HEAD"}):
                out.append((method, route.path))
    assert len(out) > 15, out  # every page and API route, not an empty loop
    return sorted(out, key=lambda r: r[1] == "/deconnexion")  # log out last


def _fill(path: str, value: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", quote(value, safe=""), path)


def _personal(world: World) -> list[str]:
    with world.db.sessions() as s:
        names = [n for (n,) in s.execute(select(m.SalarieIdentity.last_name).limit(200))]
        refs = [r for (r,) in s.execute(select(m.Salarie.reference).limit(200))]
    return [*names, *refs, world.identity_last_name, world.reference, "[parameters:", "SAL-"]


@pytest.mark.parametrize("role", ["admin", "officer", "anonymous"])
def test_every_route_with_hostile_ids_and_strings_never_answers_5xx(hostile, role, caplog):
    app = hostile.app  # type: ignore[attr-defined]
    client = TestClient(app, raise_server_exceptions=False)
    if role != "anonymous":
        assert login(client, hostile.emails[role]).status_code == 303
    token = csrf_of(client.get("/preferences").text) if role != "anonymous" else "x"
    api_token = client.get("/api/v1/me").json().get("csrf_token", "") if role != "anonymous" else ""
    caplog.set_level(logging.INFO)
    seen: list[tuple[str, str, int]] = []
    for method, path in _routes(app):
        for value in HOSTILE:
            # An address is at most a few kB (servers refuse longer ones before the app): the
            # 1 MB string goes whole into bodies, its first 1,500 characters into each query field.
            short = value[:1500]
            url = _fill(path, short) if "{" in path else path
            if method == "GET":
                query = "&".join(f"{k}={quote(short, safe='')}" for k in QUERY_FIELDS)
                seen.append((method, path, client.get(f"{url}?{query}").status_code))
                continue
            if path.startswith("/api/"):
                body = {k: (int(value) if value.lstrip("-").isdigit() else value)
                        for k in JSON_FIELDS}  # fmt: skip
                answer = client.post(url, json=body, headers={"X-CSRF-Token": api_token})
            else:
                form = {k: value for k in FORM_FIELDS} | {"csrf_token": token}
                answer = client.post(url, data=form, follow_redirects=False)
            seen.append((method, path, answer.status_code))
            if "{" in path:  # the real target id with hostile fields too
                real = _fill(path, str(hostile.target_id))
                if path.startswith("/api/"):
                    answer = client.post(real, json=body, headers={"X-CSRF-Token": api_token})
                else:
                    answer = client.post(real, data=form, follow_redirects=False)
                seen.append((method, path, answer.status_code))
    TRIES.append(len(seen))
    errors = [s for s in seen if s[2] >= 500]
    assert not errors, errors[:10]
    log = caplog.text
    leaked = [p for p in _personal(hostile) if p and p in log]
    assert not leaked, leaked[:5]


def test_a_500_still_has_the_security_headers_a_french_page_and_a_clean_log(hostile, caplog):
    app = create_app(hostile.settings, hostile.db, hostile.clock)

    @app.get("/boom-for-test")
    def boom() -> None:
        raise RuntimeError(f"secret detail {hostile.identity_last_name}")

    caplog.set_level(logging.INFO)
    answer = TestClient(app, raise_server_exceptions=False).get("/boom-for-test")
    assert answer.status_code == 500
    assert answer.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in answer.headers and answer.headers["x-request-id"]
    assert "Erreur du serveur" in answer.text and "rien n'a été enregistré" in answer.text
    assert "RuntimeError" in caplog.text and hostile.identity_last_name not in caplog.text
    assert hostile.identity_last_name not in answer.text


@pytest.mark.parametrize("action", ["take", "cancel"])
def test_two_writers_racing_never_get_a_5xx(hostile, action):
    """8 pairs of chargé·e and coordinator posting the same action at the same moment."""
    clients = []
    for role in ("officer", "coordinator"):
        c = TestClient(hostile.app, raise_server_exceptions=False)  # type: ignore[attr-defined]
        assert login(c, hostile.emails[role]).status_code == 303
        clients.append((c, c.get("/api/v1/me").json()["csrf_token"]))
    outcomes: list[int] = []
    rids = [fresh_referral(hostile) for _ in range(8)]
    for rid in rids:
        barrier = threading.Barrier(2)

        def post(client: TestClient, token: str, rid: int = rid, barrier=barrier) -> None:  # type: ignore[no-untyped-def]
            barrier.wait()
            r = client.post(f"/api/v1/referrals/{rid}/transitions",
                            json={"action": action, "expected_version": 1},
                            headers={"X-CSRF-Token": token})  # fmt: skip
            outcomes.append(r.status_code)

        threads = [threading.Thread(target=post, args=pair) for pair in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert all(code < 500 for code in outcomes), outcomes
    assert outcomes.count(200) == len(rids)  # exactly one winner per referral
    assert set(outcomes) <= {200, 409, 422}
    with hostile.db.sessions() as s:
        for rid in rids:
            n = s.scalar(select(func.count()).select_from(m.ReferralEvent).where(
                m.ReferralEvent.referral_id == rid, m.ReferralEvent.action == action))  # fmt: skip
            assert n == 1
