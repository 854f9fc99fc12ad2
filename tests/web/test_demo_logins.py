"""The demonstration: ``serve --print-logins --demo`` lists one account of every role, read
from the database, and the links in mails follow the port the demo is served on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from engine.access.permissions import PARTNER_VISIBLE_STATES
from engine.store import models as m
from workflows.cli import app
from workflows.cli_web import DEMO_ROLES, demo_base_url, demo_login_lines, demo_logins

DEMO_SH = Path(__file__).resolve().parents[2] / "deploy" / "demo.sh"


def test_demo_logins_cover_every_role(world):
    with world.db.sessions() as s:
        logins = demo_logins(s)
        assert [login.role for login in logins] == list(DEMO_ROLES)
        users = {
            login.role: s.scalar(select(m.StaffUser).where(m.StaffUser.email == login.email))
            for login in logins
        }
        assert all(u is not None and u.active for u in users.values())
        assert users["national_admin"].role == "national_admin"
        coordinator = users["coordinator"]
        assert coordinator.role == "coordinator" and not coordinator.national_queue
        for domain in ("emploi", "sante", "logement"):
            officer = users[f"officer_{domain}"]
            assert officer.role == "officer" and officer.domain == domain
            assert officer.territory_id == coordinator.territory_id  # one team to show
        cip = s.get(m.Chantier, users["cip"].chantier_id)
        esp = s.get(m.Chantier, users["esp"].chantier_id)
        assert users["cip"].role == users["esp"].role == "cip"
        assert cip.carries_cvg and esp.carries_phc and not esp.carries_cvg
        contact = users["partner_contact"]
        orientations = s.scalar(
            select(func.count())
            .select_from(m.Referral)
            .join(m.Offer, m.Offer.id == m.Referral.offer_id)
            .where(
                m.Offer.partner_id == contact.partner_id,
                m.Referral.state.in_(PARTNER_VISIBLE_STATES),
            )
        )
        assert contact.role == "partner_contact" and orientations > 0
        territory = s.get(m.Territory, coordinator.territory_id).name
    by_role = {login.role: login.label for login in logins}
    assert by_role["officer_sante"] == f"Chargé·e de partenariats santé ({territory})"
    assert by_role["esp"].startswith("ESP (") and by_role["cip"].startswith("CIP (")
    assert re.search(r"\(.+, \d+ orientations?\)$", by_role["partner_contact"])
    lines = demo_login_lines(logins)
    assert "demo-aiguillage" in lines[0] and len(lines) == len(DEMO_ROLES) + 1
    assert all(login.email in "\n".join(lines) for login in logins)


def test_demo_login_lines_say_which_roles_are_missing():
    lines = demo_login_lines([])
    assert "rôles sans compte" in lines[-1] and "partner_contact" in lines[-1]


@pytest.mark.parametrize(
    ("environ", "host", "port", "expected"),
    [
        ({}, "127.0.0.1", 8123, "http://127.0.0.1:8123"),
        ({}, "0.0.0.0", 8001, "http://127.0.0.1:8001"),
        ({"AIGUILLAGE_BASE_URL": ""}, "localhost", 9000, "http://localhost:9000"),
        ({"AIGUILLAGE_BASE_URL": "https://aiguillage.example.org"}, "127.0.0.1", 8123, None),
    ],
)
def test_demo_base_url_follows_the_port(environ, host, port, expected):
    assert demo_base_url(environ, host, port) == expected


def test_serve_demo_sets_the_base_url_of_the_app(monkeypatch, sqlite_db):
    """``serve --demo --port P`` starts the app (built from the environment) with
    http://127.0.0.1:P as the base URL of mail links, unless one is set."""
    import uvicorn

    from engine.store.settings import load_settings

    seen: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: seen.append(load_settings().base_url))
    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", sqlite_db.url)
    monkeypatch.delenv("AIGUILLAGE_BASE_URL", raising=False)
    runner = CliRunner()
    done = runner.invoke(app, ["serve", "--port", "8123", "--demo", "--print-logins"])
    assert done.exit_code == 0, done.output
    assert seen == ["http://127.0.0.1:8123"]
    assert "rôles sans compte" in done.output  # an empty base: the list says so
    monkeypatch.setenv("AIGUILLAGE_BASE_URL", "https://demo.example.org")
    assert runner.invoke(app, ["serve", "--port", "8124", "--demo"]).exit_code == 0
    assert seen[-1] == "https://demo.example.org"


def test_demo_script_derives_the_base_url_from_its_port():
    script = DEMO_SH.read_text()
    export = script.index(
        "export AIGUILLAGE_BASE_URL=${AIGUILLAGE_BASE_URL:-http://127.0.0.1:$DEMO_PORT}"
    )
    assert export < script.index("DEMO_PORT=${DEMO_PORT:-8000}") + 200
    first_command = script.index('"$VENV/bin/aiguillage"')
    assert script.index("DEMO_PORT=${DEMO_PORT:-8000}") < export < first_command
