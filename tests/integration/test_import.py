"""CSV import through the CLI: all or nothing, idempotent, precise French reports."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from engine.domain.clock import Clock
from engine.network.seed import seed_network
from engine.store import models as m
from workflows.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "salaries-exemple.csv"
TODAY = date(2026, 11, 26)


def _counts(db) -> tuple[int, int, int, int]:
    with db.sessions() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(t))
            for t in (m.Salarie, m.Frein, m.SalarieIdentity, m.AuditLog)
        )


@pytest.fixture
def cli(db, monkeypatch):
    seed_network(db, scale=0.02, seed=1, clock=Clock.on_day(TODAY, running=False))
    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", db.url)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_example_imports_then_reimport_changes_nothing(cli, db, tmp_path):
    before = _counts(db)
    first = cli("import", "salaries", str(EXAMPLE))
    assert first.exit_code == 0, first.output
    assert "créé·es : 10" in first.output
    after = _counts(db)
    assert after[0] == before[0] + 10 and after[1] > before[1]
    again = cli("import", "salaries", str(EXAMPLE))
    assert again.exit_code == 0 and "inchangé·es : 10" in again.output
    assert _counts(db)[:3] == after[:3]


def _bad(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


GOOD = EXAMPLE.read_text(encoding="utf-8").splitlines()
HEADER, ROW = GOOD[0], GOOD[1]
SEP = ";" if HEADER.count(";") > HEADER.count(",") else ","
COLS = HEADER.split(SEP)


def _with(column: str, value: str) -> str:
    cells = ROW.split(SEP)
    cells[COLS.index(column)] = value
    return HEADER + "\n" + SEP.join(cells) + "\n"


@pytest.mark.parametrize(
    ("case", "content", "expected"),
    [
        ("missing column", SEP.join(c for c in COLS if c != "programme") + "\n", "programme"),
        ("unknown chantier", _with("chantier", "nulle-part-aci-99"), "chantier"),
        ("bad date", _with("date_entree", "31/02/2024"), "date_entree"),
        ("unknown frein", _with("freins", "sante--teleportation"), "sante--teleportation"),
        ("duplicate reference", HEADER + "\n" + ROW + "\n" + ROW + "\n", "reference"),
        (
            "wrong encoding",
            (HEADER + "\n" + _with("nom", "Hélène").split("\n")[1] + "\n").encode("cp1252"),
            "UTF-8",
        ),
        (
            "wrong delimiter",
            HEADER.replace(SEP, "\t") + "\n" + ROW.replace(SEP, "\t") + "\n",
            "colonne",
        ),
    ],
)
def test_bad_files_are_refused_with_a_precise_report_and_nothing_written(
    cli, db, tmp_path, case, content, expected
):
    before = _counts(db)
    result = cli("import", "salaries", _bad(tmp_path, "bad.csv", content))
    assert result.exit_code == 2, result.output
    assert "aucune donnée n'a été enregistrée" in result.output
    assert expected in result.output
    if case not in ("missing column", "wrong encoding", "wrong delimiter"):
        assert "Ligne" in result.output  # names the row
    assert _counts(db) == before


def test_import_records_orienté_par_exit_category_and_a_new_housing_as_a_dated_change(
    cli, db, tmp_path
):
    header = HEADER + SEP + "oriente_par" + SEP + "categorie_sortie"
    cells = ROW.split(SEP)
    cells[COLS.index("date_sortie")] = "30/06/2024"
    first = header + "\n" + SEP.join([*cells, "maraude", "emploi_transition"]) + "\n"
    assert cli("import", "salaries", _bad(tmp_path, "a.csv", first)).exit_code == 0
    reference = cells[COLS.index("reference")]
    with db.sessions() as s:
        person = s.scalar(select(m.Salarie).where(m.Salarie.external_ref == reference))
        assert (person.referred_by, person.exit_category) == ("maraude", "emploi_transition")
        housing = person.housing
    cells[COLS.index("situation_logement")] = "loge" if housing != "housed" else "rue"
    # The column left empty keeps what was recorded; the new housing is a dated change.
    second = header + "\n" + SEP.join([*cells, "", "emploi_transition"]) + "\n"
    assert cli("import", "salaries", _bad(tmp_path, "b.csv", second)).exit_code == 0
    with db.sessions() as s:
        person = s.scalar(select(m.Salarie).where(m.Salarie.external_ref == reference))
        assert person.referred_by == "maraude"
        change = s.scalars(
            select(m.HousingChange).where(m.HousingChange.salarie_id == person.id)
        ).one()
        assert (change.before, change.after) == (housing, person.housing)
    bad = header + "\n" + SEP.join([*ROW.split(SEP), "maraude", "autre"]) + "\n"
    refused = cli("import", "salaries", _bad(tmp_path, "c.csv", bad))
    assert refused.exit_code == 2 and "categorie_sortie" in refused.output
