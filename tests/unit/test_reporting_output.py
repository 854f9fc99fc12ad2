"""French formatting, text and CSV renderings, SVG charts, monthly series and territory table."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reporting import charts, formats
from reporting.catalogue import compute, compute_all
from reporting.indicators import Result
from reporting.records import HealthEvent, Period, Person
from reporting.series import by_territory, monthly_series

NN = "\u202f"
SVG = "{http://www.w3.org/2000/svg}"


def person(**kw: object) -> Person:
    base: dict[str, object] = {
        "id": 1,
        "programme": "cvg",
        "territory": "lyon",
        "chantier": "c",
        "entry_date": date(2024, 1, 15),
    }
    base.update(kw)
    return Person(**base)  # type: ignore[arg-type]


# --- formats --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (0.47, 0, f"47{NN}%"),
        (0.285, 0, f"29{NN}%"),  # half up, despite 0.285 * 100 == 28.499…
        (0.4725, 1, f"47,3{NN}%"),
        (1.0, 0, f"100{NN}%"),
        (0.0, 0, f"0{NN}%"),
        (0.005, 1, f"0,5{NN}%"),
    ],
)
def test_percent(value: float, digits: int, expected: str) -> None:
    assert formats.percent(value, digits) == expected


@pytest.mark.parametrize(
    ("value", "digits", "expected"),
    [
        (4550, 0, f"4{NN}550"),
        (1023, 0, f"1{NN}023"),
        (999, 0, "999"),
        (1234567.891, 2, f"1{NN}234{NN}567,89"),
        (-1500, 0, f"\u22121{NN}500"),
        (2.5, 1, "2,5"),
    ],
)
def test_number(value: float, digits: int, expected: str) -> None:
    assert formats.number(value, digits) == expected


def test_points_ratio_days_and_months() -> None:
    assert formats.points(0.15) == f"+15{NN}pts"
    assert formats.points(-0.05) == f"\u22125{NN}pts"
    assert formats.points(0.0) == f"+0{NN}pts"
    assert formats.ratio(1.5) == f"×{NN}1,50"
    assert formats.days(2.5) == f"2,5{NN}jours"
    assert formats.days(1) == f"1{NN}jour"
    assert formats.days(12.04) == f"12{NN}jours"
    assert formats.month_label("2024-03") == "mars 2024"
    assert formats.month_label("2024") == "2024"
    assert formats.value_text("count", None) == "non calculable"


@given(st.floats(min_value=0, max_value=1))
def test_percent_of_a_fraction_reads_back(x: float) -> None:
    text = formats.percent(x, 1)
    assert text.endswith(f"{NN}%")
    assert float(text.removesuffix(f"{NN}%").replace(",", ".")) == pytest.approx(x * 100, abs=0.05)


def results_2024() -> list[Result]:
    people = [
        person(id=1, freins=4, health_events=(HealthEvent(date(2024, 3, 1), "rights_opened"),)),
        person(id=2, exit_date=date(2024, 6, 1), exit_category="emploi_durable"),
    ]
    return compute_all(Period.year(2024), people=people, programme="cvg", territory="lyon")


def test_text_rendering_has_headings_labels_and_french_values() -> None:
    text = formats.render_text(results_2024(), definitions=True)
    assert "Convergence (CVG) — 2024 — territoire lyon" in text
    assert "Fonctionnement du réseau — 2024 — territoire lyon" in text
    assert f"Salarié·es cumulant 3 à 7 freins à l'emploi : 50{NN}% (1 sur 2)" in text
    assert "Orientations créées : 0" in text
    assert "Sans chargé·e de partenariat emploi mobilisé·e : 100" in text
    assert "non calculable : aucune personne dans le groupe" in text
    assert "Parmi les salarié·es accompagné·es pendant la période" in text
    assert formats.render_text([]) == ""


def test_csv_has_the_json_keys_and_machine_values() -> None:
    rows = list(csv.reader(io.StringIO(formats.csv_text(results_2024()))))
    assert rows[0] == list(formats.CSV_COLUMNS)
    by_code = {row[0]: row for row in rows[1:]}
    assert by_code["share_with_3_to_7_freins"] == [
        "share_with_3_to_7_freins",
        "cvg",
        "Salarié·es cumulant 3 à 7 freins à l'emploi",
        "0.5",
        "1",
        "2",
        "2024",
        "lyon",
    ]
    assert by_code["employment_uplift_when_emploi_officer_mobilised"][3:6] == ["", "", ""]


# --- charts ---------------------------------------------------------------------------------


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    return root


def test_bar_chart_is_well_formed_titled_and_escaped() -> None:
    svg = charts.bar_chart(
        'Sorties <dynamiques> & "autres"',
        ["Emploi & formation", "Autre <sortie>"],
        [0.47, None],
    )
    root = parse(svg)
    assert root.find(f"{SVG}title").text == 'Sorties <dynamiques> & "autres"'  # type: ignore[union-attr]
    label = root.get("aria-label") or ""
    assert label.startswith('Sorties <dynamiques> & "autres". ')
    assert f"Emploi & formation : 47{NN}%" in label
    assert "Autre <sortie> : non calculable" in label
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert f"47{NN}%" in texts and "non calculable" in texts
    widths = [float(r.get("width") or 0) for r in root.iter(f"{SVG}rect")]
    assert widths == [pytest.approx(charts.BAR_SPACE * 0.47), 0.0]


def test_bar_chart_with_a_second_series_has_a_legend_and_both_values() -> None:
    root = parse(
        charts.bar_chart(
            "Accès selon la mobilisation",
            ["Emploi", "Logement"],
            [0.6, 0.45],
            second=[0.45, 0.25],
        )
    )
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts[:2] == list(charts.MOBILISED_SERIES)
    assert f"25{NN}%" in texts
    assert "Emploi : Chargé·e mobilisé·e 60" in (root.get("aria-label") or "")
    assert len(list(root.iter(f"{SVG}rect"))) == 2 + 4


def test_count_bars_scale_to_the_largest() -> None:
    root = parse(charts.bar_chart("Orientations", ["a", "b"], [10, 5], kind="count"))
    widths = [float(r.get("width") or 0) for r in root.iter(f"{SVG}rect")]
    assert widths == [pytest.approx(charts.BAR_SPACE), pytest.approx(charts.BAR_SPACE / 2)]


def test_bar_chart_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        charts.bar_chart("t", ["a"], [0.1, 0.2])


@pytest.mark.parametrize("style", ["column", "line"])
def test_monthly_chart(style: str) -> None:
    labels = ["janv.", "févr.", "mars", "avr."]
    root = parse(
        charts.monthly_chart("Accompagné·es", labels, [3, None, 5, 6], kind="count", style=style)
    )
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert all(m in texts for m in labels)
    assert "févr. : non calculable" in (root.get("aria-label") or "")
    if style == "column":
        assert len(list(root.iter(f"{SVG}rect"))) == 3
    else:
        lines = list(root.iter(f"{SVG}polyline"))
        assert len(lines) == 1 and len((lines[0].get("points") or "").split()) == 2
        assert len(list(root.iter(f"{SVG}circle"))) == 3


def test_table_rows_match_the_chart() -> None:
    assert charts.table_rows(["Emploi"], [0.47]) == [("Libellé", "Valeur"), ("Emploi", f"47{NN}%")]
    rows = charts.table_rows(["Emploi"], [0.6], second=[None], heading="Domaine")
    assert rows == [("Domaine", *charts.MOBILISED_SERIES), ("Emploi", f"60{NN}%", "non calculable")]


def test_comparison_and_series_charts_from_results() -> None:
    results = results_2024()
    uplifts = [r for r in results if r.kind == "difference"]
    root = parse(charts.comparison_chart("Effet de la mobilisation", uplifts))
    assert "Accès à l'emploi quand" in (root.get("aria-label") or "")
    series = monthly_series("cvg/salaries_accompanied_2024", 2024, people=[person()])
    root = parse(charts.series_chart("Accompagné·es par mois", series))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "janv." in texts and "déc." in texts


# --- series ---------------------------------------------------------------------------------


def test_monthly_series_gives_twelve_months() -> None:
    people = [
        person(
            id=1, entry_date=date(2024, 3, 31), exit_date=date(2024, 5, 1), exit_category="autre"
        ),
        person(id=2, entry_date=date(2023, 1, 1)),
    ]
    series = monthly_series("salaries_accompanied_2024", 2024, people=people, programme="cvg")
    assert [r.period for r in series] == [f"2024-{m:02d}" for m in range(1, 13)]
    assert [r.value for r in series] == [1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]
    exits = monthly_series("exit_to_employment_or_training", 2024, people=people, programme="cvg")
    assert [r.value for r in exits][3:5] == [None, 0.0]


def test_by_territory_rows_and_columns() -> None:
    people = [
        person(id=1, territory="lyon", freins=4),
        person(id=2, territory="paris", freins=1),
        person(id=3, territory=None),
    ]
    table = by_territory(
        Period.year(2024),
        keys=["cvg/salaries_accompanied_2024", "share_with_3_to_7_freins", "referrals_created"],
        people=people,
        programme="cvg",
    )
    assert [c.key for c in table.columns] == [
        "cvg/salaries_accompanied_2024",
        "cvg/share_with_3_to_7_freins",
        "referrals_created",
    ]
    assert [row.territory for row in table.rows] == ["lyon", "paris"]
    lyon = table.rows[0]
    assert lyon.cell("cvg/salaries_accompanied_2024").value == 1
    assert lyon.cell("cvg/share_with_3_to_7_freins").value == 1.0
    assert table.rows[1].cell("cvg/share_with_3_to_7_freins").value == 0.0
    assert all(r.territory == row.territory for row in table.rows for r in row.results)
    default = by_territory(Period.year(2024), people=people, programme="phc")
    assert all(c.programme in (None, "phc") for c in default.columns)
    assert default.rows[0].cell("phc/salaries_accompanied_2024").value == 0


def test_the_network_figure_still_counts_people_outside_territories() -> None:
    people = [person(id=1), person(id=2, territory=None)]
    r = compute("salaries_accompanied_2024", Period.year(2024), people=people, programme="cvg")
    assert r.value == 2 and r.territory is None
