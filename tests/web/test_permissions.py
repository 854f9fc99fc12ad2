"""Every route × every role: in scope → 200, out of scope → 404 (never a hint), anonymous →
login page or 401. The target is a Paris logement orientation referred to one partner."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.store import models as m
from engine.store.db import unit_of_work
from tests.web.world import csrf_of

ROLES = (
    "admin", "coordinator", "coordinator_other", "officer", "officer_other_domain",
    "officer_other_territory", "cip", "cip_other", "partner", "partner_other",
)  # fmt: skip
SEES_TARGET = {"admin", "coordinator", "officer", "cip", "partner"}
STAFF_READERS = set(ROLES) - {"partner", "partner_other"}
ALLOCATION = {"admin", "coordinator", "coordinator_other"}

# (method, path template, roles answered 200; everyone else 404)
ROUTES = [
    ("GET", "/file", set(ROLES)),
    ("GET", "/orientations/{target}", SEES_TARGET),
    ("GET", "/attributions", ALLOCATION),
    ("GET", "/places", STAFF_READERS),
    ("GET", "/partenaires", STAFF_READERS),
    ("GET", "/preferences", set(ROLES)),
    ("GET", "/journal-acces", {"admin"}),
    ("GET", "/api/v1/me", set(ROLES)),
    ("GET", "/api/v1/referrals", set(ROLES)),
    ("GET", "/api/v1/referrals/{target}", SEES_TARGET),
    ("GET", "/api/v1/pools", STAFF_READERS),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "allowed"), ROUTES, ids=[r[1] for r in ROUTES])
def test_route_by_role(clients, world, role, method, path, allowed):
    url = path.format(target=world.target_id)
    response = clients[role].request(method, url, follow_redirects=False)
    expected = 200 if role in allowed else 404
    assert response.status_code == expected, (role, url, response.text[:300])
    if expected == 404 and not url.startswith("/api/"):
        assert "Page introuvable" in response.text
        assert world.reference not in response.text


@pytest.mark.parametrize(("method", "path", "allowed"), ROUTES, ids=[r[1] for r in ROUTES])
def test_anonymous_is_sent_to_login_or_401(clients, world, method, path, allowed):
    url = path.format(target=world.target_id)
    response = clients["anonymous"].request(method, url, follow_redirects=False)
    if url.startswith("/api/"):
        assert response.status_code == 401
        assert response.json()["detail"].startswith("Authentification requise")
    else:
        assert response.status_code == 303
        assert response.headers["location"].startswith("/connexion?suivant=")


def test_out_of_scope_404_is_identical_to_missing(clients, world):
    """An existing case out of scope and a non-existent id give the same page."""
    out_of_scope = clients["officer_other_territory"].get(f"/orientations/{world.target_id}")
    missing = clients["officer_other_territory"].get("/orientations/99999999")
    assert out_of_scope.status_code == missing.status_code == 404
    assert out_of_scope.text == missing.text


@pytest.mark.parametrize("role", ROLES)
def test_post_action_on_target_by_role(clients, world, role):
    """A refusal with a stale version: out of scope → 404, in scope but not allowed → 403,
    allowed → 409 (stale); in no case does the orientation change."""
    client = clients[role]
    token = csrf_of(client.get("/preferences").text)
    with unit_of_work(world.db) as s:
        before = s.get(m.Referral, world.target_id)
        state, version = before.state, before.version
    response = client.post(
        f"/orientations/{world.target_id}/actions",
        data={"csrf_token": token, "action": "refuse", "reason": "other", "note": "essai",
              "version": str(version + 100), "confirm": "1"},
        follow_redirects=False,
    )  # fmt: skip
    expected = {"cip": 403}.get(role, 409 if role in SEES_TARGET else 404)
    assert response.status_code == expected, response.text[:300]
    with unit_of_work(world.db) as s:
        after = s.get(m.Referral, world.target_id)
        assert (after.state, after.version) == (state, version)


def test_api_list_is_exactly_the_scope(clients, world):
    """Walking every page of the API gives each referral of the scope once, and no other."""
    from engine.access.permissions import referral_scope

    client = clients["officer"]
    seen: list[int] = []
    url = "/api/v1/referrals?limit=37&state=all"
    while url:
        body = client.get(url).json()
        seen += [item["id"] for item in body["items"]]
        url = f"/api/v1/referrals?limit=37&state=all&after={body['next']}" if body["next"] else ""
    with unit_of_work(world.db) as s:
        user = s.get(m.StaffUser, world.user_ids["officer"])
        expected = set(s.scalars(select(m.Referral.id).where(referral_scope(user))))
    assert len(seen) == len(set(seen))
    assert set(seen) == expected
    assert world.target_id in expected


def test_partner_api_sees_only_addressed_referrals(clients, world):
    items = clients["partner"].get("/api/v1/referrals?state=all&limit=200").json()["items"]
    assert world.target_id in {i["id"] for i in items}
    other = clients["partner_other"].get("/api/v1/referrals?state=all&limit=200").json()["items"]
    assert world.target_id not in {i["id"] for i in other}
