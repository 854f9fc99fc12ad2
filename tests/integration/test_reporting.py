"""The network's indicators from a simulated year: the 2024 report reproduced, snapshots kept,
the report command's formats — on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select, update

from engine.domain.clock import Clock
from engine.network.seed import seed_network
from engine.network.simulate import simulate_year
from engine.reporting.report import ReportError, build_report, render, write_snapshots
from engine.store import models as m
from engine.store.db import unit_of_work
from engine.store.settings import Settings

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "convergence-2024.json"
JAN_1 = Clock.on_day(date(2024, 1, 1), running=False)
DEC_31 = Clock.on_day(date(2024, 12, 31), hour=20, running=False)
# Figures of the public at entry (drawn by the seed) and outcomes (drawn by the simulation).
ENTRY_PROFILE = {
    "cvg": ("share_with_3_to_7_freins", "share_with_street_history"),
    "phc": (
        "share_street_or_street_history",
        "share_street_over_2_years",
        "share_referred_by_emergency_social_services",
        "share_without_resources_at_entry",
    ),
}


def _reference() -> dict:
    if REFERENCE.exists():
        return json.loads(REFERENCE.read_text(encoding="utf-8"))
    from engine.network.reference import reference_2024

    return reference_2024()


def _year(db, scale: float, seed: int = 42) -> Settings:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=db.engine.url.render_as_string(hide_password=False))
    seed_network(db, scale=scale, seed=seed, clock=JAN_1, entrants=True)
    simulate_year(db, settings, year=2024, clock=DEC_31, seed=seed)
    return settings


@pytest.mark.slow
def test_the_simulated_2024_reproduces_every_figure_of_the_activity_report(sqlite_db):
    _year(sqlite_db, scale=1)
    ref = _reference()["programmes"]
    figures = {
        (r["programme"], r["code"]): r
        for r in json.loads(render(build_report(sqlite_db, year=2024), "json"))["indicators"]
    }
    checked = 0
    for programme, p in ref.items():
        for code in ENTRY_PROFILE[programme]:
            got = figures[(programme, code)]["value"]
            assert abs(got - p[code]) <= 0.02, (programme, code, got, p[code])
            checked += 1
        assert (
            figures[(programme, "salaries_accompanied_2024")]["value"]
            == p["salaries_accompanied_2024"]
        )
        for code, expected in p["outcomes"].items():
            got = figures[(programme, code)]["value"]
            assert got is not None and abs(got - expected) <= 0.03, (programme, code, got)
            checked += 1
    assert checked == 16


def test_snapshots_keep_closed_months_and_refresh_the_open_one(db):
    _year(db, scale=0.05, seed=7)
    mid_year = Clock.on_day(date(2024, 7, 15), running=False)
    first = write_snapshots(db, year=2024, clock=mid_year)
    assert first["rows_written"] > 0 and first["periods_kept"] == 0
    with unit_of_work(db) as s:
        T = m.IndicatorSnapshot
        march = s.scalar(
            select(T.value).where(
                T.code == "referrals_created", T.period == "2024-03", T.territory == ""
            )
        )
        periods = set(s.scalars(select(T.period).distinct()).all())
        assert periods == {"2024", *(f"2024-{k:02d}" for k in range(1, 8))}
        # Counts only: no column can hold a name or a note.
        assert {c.name for c in T.__table__.columns} == {
            "id", "code", "programme", "period", "territory", "value", "numerator",
            "denominator", "details", "computed_at",
        }  # fmt: skip
        # What a later anonymisation would do to the files: the closed month must not move.
        s.execute(update(m.Referral).where(m.Referral.id > 0).values(domain="transverse"))
    again = write_snapshots(db, year=2024, clock=mid_year)
    assert again["periods_kept"] > 0
    with unit_of_work(db) as s:
        assert march == s.scalar(
            select(T.value).where(
                T.code == "referrals_created", T.period == "2024-03", T.territory == ""
            )
        )
        assert s.scalar(select(func.count()).select_from(T).where(T.period == "2024-07")) > 0


def test_report_formats_and_bad_options(sqlite_db, tmp_path):
    _year(sqlite_db, scale=0.05, seed=9)
    results = build_report(sqlite_db, year=2024, programme="phc")
    text = render(results, "text").decode()
    assert "Premières Heures en Chantier" in text and "Salarié·es accompagné·es" in text
    rows = list(csv.DictReader(io.StringIO(render(results, "csv").decode())))
    assert {"code", "programme", "label", "value", "numerator", "denominator", "period",
            "territory"} <= set(rows[0])  # fmt: skip
    xlsx = tmp_path / "r.xlsx"
    xlsx.write_bytes(render(results, "xlsx"))
    sheet = load_workbook(xlsx).active
    header = [c.value for c in sheet[1]]
    first = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert first["code"] == results[0].code and first["value"] == results[0].value
    with pytest.raises(ReportError, match="--territory"):
        build_report(sqlite_db, year=2024, territory="atlantide")
    with pytest.raises(ReportError, match="--programme"):
        build_report(sqlite_db, year=2024, programme="xyz")
    with pytest.raises(ReportError, match="--year"):
        build_report(sqlite_db, year=1789)


def test_an_empty_year_is_non_calculable_in_french(sqlite_db):
    seed_network(sqlite_db, scale=0.05, seed=1, clock=JAN_1)
    figures = json.loads(render(build_report(sqlite_db, year=2030), "json"))["indicators"]
    rates = [f for f in figures if f["code"] == "exit_to_employment_or_training"]
    assert rates and all(f["value"] is None for f in rates)
    assert "non calculable" in render(build_report(sqlite_db, year=2030), "text").decode()
