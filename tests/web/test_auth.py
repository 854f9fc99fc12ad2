"""Login, logout, session rotation, cookie flags, CSRF and rate limiting (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.access.auth import AccountError, create_user
from engine.store import models as m
from engine.store.db import unit_of_work
from engine.store.settings import Settings
from tests.web.world import CLOCK, csrf_of, login
from web.app import create_app
from web.security import SESSION_COOKIE


@pytest.fixture
def small(db):
    """A database with one officer account only (no seed: fast)."""
    with unit_of_work(db) as s:
        s.add(m.Territory(id=1, code="paris", name="Convergence Paris", kind="convergence"))
    create_user(db, email="Agent@Example.org", display_name="Agent Test", role="officer",
                password="un-mot-de-passe-solide", territory_code="paris", domain="logement", clock=CLOCK)  # fmt: skip
    return db


def _client(db, base_url="http://testserver") -> TestClient:
    app = create_app(Settings(database_url=db.url, base_url=base_url), db, CLOCK)
    return TestClient(
        app, base_url="https://testserver" if base_url.startswith("https") else "http://testserver"
    )


def test_login_sets_hardened_cookie_and_rotates_token(small):
    client = _client(small)
    first = login(client, "agent@example.org", "un-mot-de-passe-solide")
    assert first.status_code == 303 and first.headers["location"] == "/file"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Secure" not in cookie
    old = client.cookies[SESSION_COOKIE]
    assert login(client, "agent@example.org", "un-mot-de-passe-solide").status_code == 303
    new = client.cookies[SESSION_COOKIE]
    assert new != old
    stale = _client(small)
    stale.cookies.set(SESSION_COOKIE, old)
    assert stale.get("/file", follow_redirects=False).status_code == 303  # old session is gone
    with unit_of_work(small) as s:
        assert s.scalar(select(func.count()).select_from(m.WebSession)) == 1
        stored = s.scalar(select(m.WebSession.token_hash))
        assert new not in stored  # only a hash of the token is stored


def test_secure_cookie_on_https(small):
    client = _client(small, base_url="https://aiguillage.example.org")
    response = login(client, "agent@example.org", "un-mot-de-passe-solide")
    assert "Secure" in response.headers["set-cookie"]


def test_wrong_password_is_a_french_error_without_session(small):
    client = _client(small)
    response = login(client, "agent@example.org", "mauvais")
    assert response.status_code == 401
    assert "Adresse électronique ou mot de passe incorrect" in response.text
    assert SESSION_COOKIE not in client.cookies
    unknown = login(client, "personne@example.org", "mauvais")
    assert "Adresse électronique ou mot de passe incorrect" in unknown.text


def test_rate_limit_after_five_failures(small):
    client = _client(small)
    for _ in range(5):
        assert login(client, "agent@example.org", "mauvais").status_code == 401
    blocked = login(client, "agent@example.org", "un-mot-de-passe-solide")
    assert blocked.status_code == 429
    assert "Trop de tentatives" in blocked.text and "15 minutes" in blocked.text
    assert SESSION_COOKIE not in client.cookies
    with unit_of_work(small) as s:  # the blocked attempt was not even checked nor recorded
        assert s.scalar(select(func.count()).select_from(m.LoginAttempt)) == 5
    create_user(small, email="autre@example.org", display_name="Autre", role="officer",
                password="un-mot-de-passe-solide", territory_code="paris", domain="emploi", clock=CLOCK)  # fmt: skip
    assert login(_client(small), "autre@example.org", "un-mot-de-passe-solide").status_code == 303


def test_login_form_without_csrf_is_rejected(small):
    client = _client(small)
    client.get("/connexion")
    response = client.post(
        "/connexion", data={"email": "agent@example.org", "password": "un-mot-de-passe-solide"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 403
    assert SESSION_COOKIE not in client.cookies


def test_logout_deletes_the_session(small):
    client = _client(small)
    login(client, "agent@example.org", "un-mot-de-passe-solide")
    token = client.cookies[SESSION_COOKIE]
    page = client.get("/preferences")
    assert client.post("/deconnexion", data={}, follow_redirects=False).status_code == 403
    out = client.post("/deconnexion", data={"csrf_token": csrf_of(page.text)},
                      follow_redirects=False)  # fmt: skip
    assert out.status_code == 303 and out.headers["location"] == "/connexion?deconnecte=1"
    replay = _client(small)
    replay.cookies.set(SESSION_COOKIE, token)
    assert replay.get("/api/v1/me").status_code == 401


def test_open_redirect_is_refused(small):
    client = _client(small)
    page = client.get("/connexion")
    response = client.post(
        "/connexion",
        data={"csrf_token": csrf_of(page.text), "email": "agent@example.org",
              "password": "un-mot-de-passe-solide", "suivant": "//evil.example.org/"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.headers["location"] == "/tableau-de-bord"  # the home page, never elsewhere


def test_create_user_refusals(small):
    with pytest.raises(AccountError, match="au moins 12"):
        create_user(small, email="x@example.org", display_name="X", role="officer",
                    password="court", territory_code="paris", domain="emploi", clock=CLOCK)  # fmt: skip
    with pytest.raises(AccountError, match="existe déjà"):
        create_user(small, email="AGENT@example.org", display_name="X", role="officer",
                    password="un-mot-de-passe-solide", territory_code="paris", domain="emploi", clock=CLOCK)  # fmt: skip
    with pytest.raises(AccountError, match="territoire inconnu"):
        create_user(small, email="y@example.org", display_name="Y", role="coordinator",
                    password="un-mot-de-passe-solide", territory_code="nulle-part", clock=CLOCK)  # fmt: skip
