"""The ``users create`` and ``serve --print-logins`` commands."""

from __future__ import annotations

from sqlalchemy import select
from typer.testing import CliRunner

from engine.store import models as m
from engine.store.db import unit_of_work
from workflows.cli import app
from workflows.cli_web import DemoLogin, demo_login_lines


def _territory(db):
    with unit_of_work(db) as s:
        s.add(m.Territory(id=1, code="paris", name="Convergence Paris", kind="convergence"))


def test_users_create_from_stdin_and_prompt(sqlite_db, monkeypatch):
    _territory(sqlite_db)
    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", sqlite_db.url)
    runner = CliRunner()
    args = ["users", "create", "--email", "Nouvelle@Example.org", "--name", "Nouvelle Chargée",
            "--role", "officer", "--territory", "paris", "--domain", "sante"]  # fmt: skip
    done = runner.invoke(app, [*args, "--password-stdin"], input="un-mot-de-passe-solide\n")
    assert done.exit_code == 0, done.output
    assert "Compte créé" in done.output
    with unit_of_work(sqlite_db) as s:
        user = s.scalar(select(m.StaffUser).where(m.StaffUser.email == "nouvelle@example.org"))
        assert user.password_hash.startswith("$argon2")
    again = runner.invoke(app, [*args[:2], "--email", "b@example.org", *args[4:]],
                          input="un-mot-de-passe-solide\nautre-chose-encore\n")  # fmt: skip
    assert again.exit_code == 2 and "diffèrent" in again.output


def test_print_logins_lists_one_account_per_role():
    lines = demo_login_lines([DemoLogin(role, label, f"{role}@example.org") for role, label in (
        ("national_admin", "Administration nationale"), ("coordinator", "Coordination"),
        ("officer_sante", "Chargé·e de partenariats santé"), ("cip", "CIP"),
        ("partner_contact", "Contact partenaire"))])  # fmt: skip
    text = "\n".join(lines)
    assert "demo-aiguillage" in lines[0]
    for role in ("Administration nationale", "Coordination", "Chargé·e de partenariats", "CIP",
                 "Contact partenaire"):  # fmt: skip
        assert role in text
