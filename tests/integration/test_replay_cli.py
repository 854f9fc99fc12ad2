"""``aiguillage allocation replay``: a simulated year replayed from the database, on SQLite and
PostgreSQL — the French report, its figures against the hindsight optimum, the errors."""

from __future__ import annotations

import re
from datetime import date

import pytest
from typer.testing import CliRunner

from engine.allocation.replay import load_year
from engine.domain.clock import Clock
from engine.network.seed import seed_network
from engine.network.simulate import simulate_year
from engine.store.settings import Settings
from workflows.cli import app
from workflows.cli_replay import register

JAN_1 = Clock.on_day(date(2024, 1, 1), running=False)
DEC_31 = Clock.on_day(date(2024, 12, 31), hour=20, running=False)
FAST_HOLD = ("--scenarios", "2", "--horizon-weeks", "8")

register(app)  # idempotent: the launcher may already have registered it


def _cli(monkeypatch, db):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", db.url)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["allocation", "replay", *args])


def _figures(output: str) -> dict[str, float]:
    """The served and hindsight totals and the ratio printed by the command."""
    m = re.search(
        r"Priorité totale servie : ([\d\u202f]+) points? \(optimum a posteriori : "
        r"([\d\u202f]+) points?, soit ([\d,]+) %\)",
        output,
    )
    assert m, output
    served, best, share = (g.replace("\u202f", "").replace(",", ".") for g in m.groups())
    people = re.search(r"Personnes servies : ([\d\u202f]+) \(optimum a posteriori", output)
    assert people, output
    return {
        "served": float(served),
        "best": float(best),
        "share": float(share),
        "people": float(people.group(1).replace("\u202f", "")),
    }


def test_a_simulated_year_replays_under_now_and_hold_against_the_hindsight_optimum(db, monkeypatch):
    settings = Settings(database_url=db.url)
    seed_network(db, scale=0.03, seed=3, clock=JAN_1, entrants=True)
    simulate_year(db, settings, year=2024, clock=DEC_31, seed=3)
    data = load_year(db, year=2024)
    assert data.year.units and data.year.arrivals
    # Everyone in the replay waits for a pool their frein fits; people arrive through the year.
    assert len({a.arrives for a in data.year.arrivals}) > 2
    cli = _cli(monkeypatch, db)

    now = cli("--year", "2024", "--policy", "now")
    assert now.exit_code == 0, now.output
    assert "Rejeu de l'année 2024, politique « now »" in now.output
    assert "attente moyenne :" in now.output and "attente la plus longue :" in now.output
    f_now = _figures(now.output)
    assert 0 < f_now["served"] <= f_now["best"] and f_now["share"] <= 100
    assert f_now["people"] <= len(data.year.units)

    hold = cli("--year", "2024", "--policy", "hold", *FAST_HOLD)
    assert hold.exit_code == 0, hold.output
    assert (
        "politique « hold »" in hold.output
        and "garde d'une place 8 semaines au plus" in hold.output
    )
    f_hold = _figures(hold.output)
    assert f_hold["best"] == f_now["best"] and f_hold["served"] <= f_hold["best"]
    again = cli("--year", "2024", "--policy", "hold", *FAST_HOLD)

    def stable(text: str) -> str:
        return "\n".join(x for x in text.splitlines() if not x.startswith(("Durée", "  …")))

    assert stable(again.output) == stable(hold.output)  # seeded: the same year, the same replay

    other = cli("--year", "2023", "--policy", "now")
    assert other.exit_code == 2
    assert "aucun dispositif à places comptées ouvert en 2023" in other.output


def test_a_year_that_was_never_simulated_is_a_clear_french_error(db, monkeypatch):
    seed_network(db, scale=0.01, seed=1, clock=JAN_1, entrants=True)
    out = _cli(monkeypatch, db)("--year", "2024", "--policy", "now")
    assert out.exit_code == 2
    assert "Erreur : l'année 2024 n'a pas été simulée dans cette base" in out.output
    assert "aiguillage simulate --year 2024" in out.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--year", "2024", "--policy", "later"), "--policy : « later » inconnue"),
        (("--year", "2024", "--max-hold-weeks", "-1"), "--max-hold-weeks : valeur hors de portée"),
        (("--year", "2024", "--scenarios", "0"), "--scenarios : valeur hors de portée"),
        (("--year", "2024", "--units", "weekly"), "--units : « weekly » inconnu"),
        (("--year", "1850"), "--year : année hors de portée"),
    ],
)
def test_bad_options_exit_2_with_a_french_message(args, words, monkeypatch):
    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", "sqlite:///nowhere/never.db")
    out = CliRunner().invoke(app, ["allocation", "replay", *args])
    assert out.exit_code == 2 and words in out.output
