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


def test_allocate_prints_the_pages_french(sqlite_db, monkeypatch):
    """``aiguillage allocate`` speaks like the Attributions page: no run number for a
    simulation, no solver words, the least served territory named."""
    from tests.web.world import build_world, waitlist_some

    world = build_world(sqlite_db)
    waitlist_some(world, 8)
    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", sqlite_db.url)
    done = CliRunner().invoke(
        app,
        ["allocate", "--no-prefect", "--dry-run", "--today", world.clock.now().date().isoformat()],
    )
    assert done.exit_code == 0, done.output
    text = done.output
    assert text.startswith("Simulation d'attribution : rien n'a été enregistré ni envoyé.")
    assert "en attente d'une place ;" in text and "proposée" in text and "resteraient" in text
    for jargon in ("exécution n°", "envie", "min_cost_flow", "cp_sat", "(s)", "paris,"):
        assert jargon not in text, jargon
    assert "Priorité respectée" in text or "personne" in text
    # The counts add up, for a simulation and for the real run that follows it.
    import re

    for args, stays in ((["--dry-run"], "resteraient|resterait"), ([], "restent|reste")):
        out = (
            CliRunner()
            .invoke(
                app,
                [
                    "allocate",
                    "--no-prefect",
                    *args,
                    "--today",
                    world.clock.now().date().isoformat(),
                ],
            )
            .output
        )
        before, proposed = map(int, re.search(r"(\d+) personnes? en attente d'une place ; "
                                              r"(\d+) places? ", out).groups())  # fmt: skip
        after = int(re.search(rf"(\d+) personnes? (?:{stays}) en attente", out).group(1))
        assert proposed > 0 and after == before - proposed, out


def test_report_lines_name_the_least_served_territory():
    from engine.allocation.run import AllocationReport

    report = AllocationReport(
        run_id=7, status="optimal", solver="min_cost_flow", time_s=0.01, dry_run=False,
        proposals_by_pool={"CDC Habitat (paris, isere)": 3}, waiting=4, candidates=7,
        worst_share_ratio=0.5, envy=1, envy_causes={"floor": 1}, alpha=0.8,
        worst_share_territory="isere", worst_share_pool="CDC Habitat (paris, isere)",
    )  # fmt: skip
    lines = report.lines_fr({"paris": "Convergence Paris", "isere": "Convergence Isère"})
    text = "\n".join(lines)
    assert lines[0].startswith("Attribution des places")
    assert "CDC Habitat (Paris, Isère) : 3 propositions" in text
    assert (
        "Le territoire le moins servi (Convergence Isère, pour CDC Habitat (Paris, Isère)) "
        "a reçu 50 % de sa part" in text
    )
    assert "7 personnes en attente d'une place ; 3 places proposées." in text
    assert "1 personne est passée après" in text and "exécution" not in text
