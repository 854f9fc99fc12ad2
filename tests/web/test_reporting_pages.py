"""Impact and pilotage pages, their exports and the annual report: who sees what, French
answers to bad parameters, snapshots read (or the honest "computed on the fly"), exports with
the page's numbers and no person in them."""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from engine.domain.clock import Clock
from engine.intake.run import run_intake
from engine.network.seed import MAIL_DOMAIN, seed_network
from engine.network.simulate import simulate_year
from engine.reporting.report import stored_report, write_snapshots
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.migrate import upgrade
from engine.store.settings import Settings
from reporting import formats
from tests.web.world import login
from web import reporting_pages
from web.app import create_app

JAN_1 = Clock.on_day(date(2024, 1, 1), running=False)
DEC_31 = Clock.on_day(date(2024, 12, 31), hour=20, running=False)
JAN_15 = date(2025, 1, 15)  # the app's day: 2024 is closed and snapshotted

READ_ROUTES = (
    "/impact",
    "/pilotage",
    "/impact/export.csv",
    "/impact/export.xlsx",
    "/pilotage/export.csv",
    "/pilotage/export.xlsx",
    "/impact/rapport-annuel",
)


# --- a simulated 2024 with its snapshots ---------------------------------------------------


class Year:
    """A network replayed through 2024 at scale 0.05, its snapshots written on 15 January 2025,
    and one logged-in client per role."""

    def __init__(self, db: Database, clients: dict[str, TestClient]) -> None:
        self.db = db
        self.clients = clients


def _email(local: str) -> str:
    return f"{local}@{MAIL_DOMAIN}"


@pytest.fixture(scope="module")
def year(tmp_path_factory) -> Year:
    url = f"sqlite:///{tmp_path_factory.mktemp('impact') / 'year.db'}"
    upgrade(url)
    db = Database(url)
    settings = Settings(database_url=url, base_url="http://testserver")
    seed_network(db, scale=0.05, seed=5, clock=JAN_1, entrants=True)
    run_intake(db, settings, clock=JAN_1)
    simulate_year(db, settings, year=2024, clock=DEC_31, seed=5)
    write_snapshots(db, year=2024, clock=Clock.on_day(JAN_15, running=False))
    app = create_app(settings, db, Clock.on_day(JAN_15))
    with unit_of_work(db) as s:
        cip = s.scalar(
            select(m.StaffUser.email).where(m.StaffUser.role == "cip").order_by(m.StaffUser.id)
        )
        contact = s.scalar(
            select(m.StaffUser.email)
            .where(m.StaffUser.role == "partner_contact")
            .order_by(m.StaffUser.id)
        )
    emails = {
        "admin": _email("admin"),
        "coordinator": _email("coordination.paris.1"),
        "coordinator_lyon": _email("coordination.lyon.1"),
        "officer": _email("logement.paris.1"),
        "national_queue": _email("equipe-phc"),
        "cip": cip,
        "partner": contact,
    }
    clients = {}
    for key, email in emails.items():
        client = TestClient(app)
        assert login(client, email).status_code == 303, key
        clients[key] = client
    clients["anonymous"] = TestClient(app)
    yield Year(db, clients)
    db.dispose()


class Tables(HTMLParser):
    """The page's data tables: id "tableau-<slug>" -> rows of cell texts (header first)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        found = dict(attrs)
        if tag == "table" and (found.get("id") or "").startswith("tableau-"):
            self._table = found["id"].removeprefix("tableau-")
            self.tables[self._table] = []
        elif self._table and tag == "tr":
            self.tables[self._table].append([])
        elif self._table and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append(_spaces("".join(self._cell)))
            self._cell = None

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if self._cell is not None:
            self._cell.append(data)


def _spaces(text: str) -> str:
    """Collapse the markup's whitespace, keeping the narrow no-break spaces of the figures."""
    return re.sub(r"[ \t\r\n]+", " ", text).strip()


def tables_of(html: str) -> dict[str, list[list[str]]]:
    parser = Tables()
    parser.feed(html)
    return {k: [r for r in rows if r] for k, rows in parser.tables.items()}


def _same(shown: str, value: object) -> bool:
    """Is the page's text the French rendering of the exported value?"""
    if value is None or value == "":
        return shown in ("—", "", formats.NOT_COMPUTABLE)
    if isinstance(value, str):
        return shown == _spaces(value)
    if isinstance(value, int) and not isinstance(value, bool):
        # a spreadsheet gives 1.0 back as 1: a whole rate or duration compares as a float
        return shown == formats.number(value) or _same(shown, float(value))
    assert isinstance(value, float)
    texts = {formats.value_text(k, value) for k in ("rate", "difference", "median_days", "count")}
    return shown in texts | {formats.ratio(value)}


def _sheets(body: bytes) -> dict[str, list[list[object]]]:
    book = load_workbook(io.BytesIO(body))
    return {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}


def _people_words(db: Database) -> tuple[set[str], set[str]]:
    """Last names of the people (minus words also found in organisation or place names) and
    their pseudonymous references: none may appear in an export."""
    with unit_of_work(db) as s:
        names = set(s.scalars(select(m.SalarieIdentity.last_name)))
        refs = set(s.scalars(select(m.Salarie.reference)))
        places = " ".join(
            [
                *s.scalars(select(m.Territory.name)),
                *s.scalars(select(m.Partner.name)),
                *s.scalars(select(m.Offer.name)),
                *s.scalars(select(m.SlotPool.name)),
            ]
        )
    return {n for n in names if not re.search(rf"\b{re.escape(n)}\b", places)}, refs


def _assert_no_person(text: str, db: Database) -> None:
    names, refs = _people_words(db)
    assert names and refs
    for name in names:
        assert not re.search(rf"\b{re.escape(name)}\b", text), name
    for ref in refs:
        assert ref not in text, ref


# --- scope by role ---------------------------------------------------------------------


@pytest.mark.parametrize("route", READ_ROUTES)
def test_the_national_team_sees_the_network_and_any_territory(year, route):
    admin = year.clients["admin"]
    assert admin.get(f"{route}?annee=2024").status_code == 200
    assert admin.get(f"{route}?annee=2024&territoire=lyon").status_code == 200
    assert admin.get(f"{route}?annee=2024&territoire=atlantide").status_code == 404


@pytest.mark.parametrize("route", READ_ROUTES)
def test_a_coordinator_or_an_officer_sees_their_territory_only(year, route):
    for key in ("coordinator", "officer"):
        client = year.clients[key]
        assert client.get(f"{route}?annee=2024").status_code == 200
        assert client.get(f"{route}?annee=2024&territoire=paris").status_code == 200
        other = client.get(f"{route}?annee=2024&territoire=lyon")
        assert other.status_code == 404
        if not route.endswith((".csv", ".xlsx")):
            assert "Page introuvable" in other.text


@pytest.mark.parametrize("route", [*READ_ROUTES, "/impact/rapport-annuel.pdf"])
def test_chantiers_partners_and_the_national_queue_get_a_404_and_strangers_the_login(year, route):
    for key in ("cip", "partner", "national_queue"):
        answer = year.clients[key].get(f"{route}?annee=2024")
        assert answer.status_code == 404, key
        assert "Page introuvable" in answer.text
    anonymous = year.clients["anonymous"].get(route, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/connexion?suivant=")


def test_the_navigation_links_follow_the_same_rule(year):
    for key, shown in (("admin", True), ("coordinator", True), ("officer", True),
                       ("cip", False), ("partner", False), ("national_queue", False)):  # fmt: skip
        page = year.clients[key].get("/preferences").text
        assert ('href="/impact"' in page) is shown, key
        assert ('href="/pilotage"' in page) is shown, key


def test_a_coordinator_sees_their_territory_figures_not_the_network(year):
    page = year.clients["coordinator"].get("/impact?annee=2024").text
    assert 'id="perimetre">Convergence Paris<' in page
    assert 'name="territoire"' not in page  # nothing to pick
    assert "tableau-territoires-cvg" not in page  # no territory side by side
    paris = stored_report(year.db, year=2024, today=JAN_15, territory="paris")
    network = stored_report(year.db, year=2024, today=JAN_15)
    key = "cvg/salaries_accompanied_2024"
    mine = next(r for r in paris.results if r.key == key)
    everyone = next(r for r in network.results if r.key == key)
    assert mine.value is not None and everyone.value is not None and mine.value < everyone.value
    shown = tables_of(page)["chiffres-cvg"]
    row = next(r for r in shown if r[0] == mine.label)
    assert row[1] == formats.number(mine.value)


def test_the_national_team_compares_territories_side_by_side(year):
    page = year.clients["admin"].get("/impact?annee=2024").text
    tables = tables_of(page)
    for programme in ("cvg", "phc"):
        rows = tables[f"territoires-{programme}"]
        names = [r[0] for r in rows[1:]]
        assert "Convergence Paris" in names and "Convergence Lyon" in names and len(names) >= 13
    paris = stored_report(year.db, year=2024, today=JAN_15, territory="paris")
    accompanied = next(r for r in paris.results if r.key == "cvg/salaries_accompanied_2024")
    paris_row = next(r for r in tables["territoires-cvg"] if r[0] == "Convergence Paris")
    assert paris_row[1] == formats.number(accompanied.value or 0)


# --- the pages' content ----------------------------------------------------------------


def test_impact_shows_every_figure_with_its_definition_charts_and_tables(year):
    page = year.clients["admin"].get("/impact?annee=2024").text
    network = stored_report(year.db, year=2024, today=JAN_15)
    assert not network.live
    assert "Chiffres lus dans les instantanés" in page and "à la volée" not in page
    for r in network.results:
        if r.section in ("cvg", "phc"):
            assert r.label.replace("'", "&#39;") in page
            assert r.definition.replace("'", "&#39;") in page
    # the three comparisons: both rates, both group sizes, the difference and the ratio
    comparisons = tables_of(page)["comparaisons-cvg"]
    assert len(comparisons) == 4
    for r in (r for r in network.results if r.kind == "difference"):
        row = next(x for x in comparisons if x[0] == r.label)
        a, b = r.groups
        assert row[1:] == [
            formats.percent(a.rate or 0), formats.number(a.numerator), formats.number(a.denominator),
            formats.percent(b.rate or 0), formats.number(b.numerator), formats.number(b.denominator),
            formats.points(r.value or 0), formats.ratio(r.ratio or 0),
        ]  # fmt: skip
    # every chart is an image with a French label, followed by its table
    assert page.count('role="img"') >= 8
    assert re.search(r"</svg>\s*</figure>\s*<div class=\"table-scroll\">\s*<table", page)
    monthly = tables_of(page)["mensuel-cvg-1"]
    assert [r[0] for r in monthly[1:]] == [
        formats.month_label(f"2024-{k:02d}") for k in range(1, 13)
    ]


def test_pilotage_shows_referrals_delays_partners_and_pools(year):
    page = year.clients["admin"].get("/pilotage?annee=2024").text
    tables = tables_of(page)
    assert {"ensemble", "etats", "domaines", "partenaires", "offres", "contingents",
            "territoires"} <= set(tables)  # fmt: skip
    network = stored_report(year.db, year=2024, today=JAN_15)
    created = next(r for r in network.results if r.code == "referrals_created")
    assert created.value and created.value > 0
    assert [formats.number(created.value)] == [
        r[1] for r in tables["ensemble"] if r[0] == created.label
    ]
    by_state = sum(int(r[1].replace(formats.NNBSP, "")) for r in tables["etats"][1:])
    assert by_state == created.value
    assert any(r[0] == "Délai médian de qualification" for r in tables["ensemble"])
    assert len(tables["partenaires"]) > 2 and len(tables["contingents"]) > 2
    coordinator = year.clients["coordinator"].get("/pilotage?annee=2024").text
    assert "tableau-territoires" not in coordinator


def test_a_year_without_snapshots_is_computed_on_the_fly_and_says_so(clients):
    """The shared world (2026) has no snapshot: the page computes and says so."""
    page = clients["admin"].get("/impact")
    assert page.status_code == 200
    assert "Calculé à la volée, pas encore d'instantané" in page.text
    assert clients["coordinator"].get("/pilotage").status_code == 200
    assert clients["cip"].get("/impact").status_code == 404
    assert clients["partner"].get("/pilotage").status_code == 404


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("annee=abc", "Année invalide"),
        ("annee=99999", "Année invalide"),
        ("annee=1999", "Année hors de portée"),
        ("annee=2031", "Année hors de portée"),
        ("annee=-5", "Année invalide"),
        ("annee=2%C2%B2024", "Année invalide"),
        ("programme=xyz", "Programme inconnu"),
        ("annee=2024&programme=%3Cscript%3E", "Programme inconnu"),
    ],
)
def test_bad_parameters_get_a_french_422(year, query, words):
    for route in ("/impact", "/pilotage", "/impact/export.xlsx", "/impact/rapport-annuel.pdf"):
        answer = year.clients["admin"].get(f"{route}?{query}")
        assert answer.status_code == 422, (route, query)
        assert words in answer.text and "Paramètre refusé" in answer.text
        assert "<script>" not in answer.text


def test_nul_bytes_and_unknown_exports_are_refused_in_french(year):
    admin = year.clients["admin"]
    nul = admin.get("/impact?annee=2024&territoire=par%00is")
    assert nul.status_code == 422 and "Saisie refusée" in nul.text
    assert admin.get("/impact/export.pdf?annee=2024").status_code == 404
    assert admin.get("/impact/export.csv?annee=2024&tableau=inconnu").status_code == 404


# --- exports ---------------------------------------------------------------------------


@pytest.mark.parametrize(("page", "who"), [("impact", "admin"), ("impact", "coordinator"),
                                           ("pilotage", "admin"), ("pilotage", "officer")])  # fmt: skip
def test_the_xlsx_holds_the_numbers_of_every_table_of_the_page(year, page, who):
    client = year.clients[who]
    html = client.get(f"/{page}?annee=2024").text
    shown = tables_of(html)
    answer = client.get(f"/{page}/export.xlsx?annee=2024")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    where = "reseau" if who == "admin" else "paris"
    assert f'filename="{page}-2024-{where}.xlsx"' in answer.headers["content-disposition"]
    sheets = _sheets(answer.content)
    assert list(sheets)[-1] == "À propos"
    tables = list(shown.values())
    assert len(sheets) == len(tables) + 1
    compared = 0
    for rows, sheet in zip(tables, list(sheets.values())[:-1], strict=True):
        assert [str(h) for h in sheet[0]] == rows[0]  # the same French header
        body = [r for r in rows[1:] if r != ["Aucune donnée pour cette période."]]
        assert len(sheet) - 1 == len(body)
        for text_row, values in zip(body, sheet[1:], strict=True):
            for text, value in zip(text_row, values, strict=True):
                assert _same(text, value), (text, value)
                compared += 1
    assert compared > 100
    about = dict((r[0], r[1]) for r in sheets["À propos"])
    assert about["Année"] == "2024" and "aucune personne" in about["Données"]
    _assert_no_person(
        "\n".join(str(v) for s in sheets.values() for r in s for v in r if v is not None), year.db
    )


def test_each_table_downloads_as_csv_with_its_french_header(year):
    admin = year.clients["admin"]
    html = admin.get("/impact?annee=2024&programme=cvg").text
    shown = tables_of(html)
    assert "chiffres-phc" not in shown  # the programme filter applies to the exports too
    everything = []
    for slug, rows in shown.items():
        assert f"/impact/export.csv?annee=2024&amp;programme=cvg&amp;tableau={slug}" in html
        answer = admin.get(f"/impact/export.csv?annee=2024&programme=cvg&tableau={slug}")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        name = f"impact-2024-reseau-cvg-{slug}.csv"
        assert f'filename="{name}"' in answer.headers["content-disposition"]
        text = answer.content.decode("utf-8")
        everything.append(text)
        got = list(csv.reader(io.StringIO(text)))
        assert got[0] == rows[0]
        body = [r for r in rows[1:] if r != ["Aucune donnée pour cette période."]]
        assert len(got) - 1 == len(body)
        for text_row, values in zip(body, got[1:], strict=True):
            for shown_text, raw in zip(text_row, values, strict=True):
                value: object = raw
                if re.fullmatch(r"-?\d+", raw):
                    value = int(raw)
                elif re.fullmatch(r"-?\d+\.\d*(e-?\d+)?", raw):
                    value = float(raw)
                assert _same(shown_text, value), (slug, shown_text, raw)
    figures = list(csv.reader(io.StringIO(everything[0])))
    assert figures[0] == ["Indicateur", "Valeur", "Numérateur", "Dénominateur", "Remarque"]
    _assert_no_person("\n".join(everything), year.db)
    pilotage = admin.get("/pilotage/export.csv?annee=2024&tableau=partenaires")
    assert pilotage.status_code == 200
    assert pilotage.content.decode().splitlines()[0].startswith("Partenaire,Taux d'acceptation")
    _assert_no_person(pilotage.content.decode(), year.db)


def test_a_coordinators_export_is_their_territory(year):
    mine = _sheets(year.clients["coordinator"].get("/impact/export.xlsx?annee=2024").content)
    lyon = _sheets(year.clients["coordinator_lyon"].get("/impact/export.xlsx?annee=2024").content)
    admin = _sheets(
        year.clients["admin"].get("/impact/export.xlsx?annee=2024&territoire=paris").content
    )
    assert mine == admin  # exactly what the national team sees for Paris
    assert mine["Chiffres CVG"] != lyon["Chiffres CVG"]
    assert dict((r[0], r[1]) for r in mine["À propos"])["Territoire"] == "Convergence Paris"
    assert not any(name.startswith("Territoires") for name in mine)


# --- the annual report ---------------------------------------------------------------------


def test_the_annual_report_has_one_print_page_per_programme(year):
    page = year.clients["admin"].get("/impact/rapport-annuel?annee=2024")
    assert page.status_code == 200
    html = page.text
    assert html.count('class="print-page"') == 3  # CVG, PHC, then how the network runs
    assert "Convergence (CVG)" in html and "Premières Heures en Chantier (PHC)" in html
    assert "rapport d'activité 2024" in html
    network = stored_report(year.db, year=2024, today=JAN_15)
    for r in network.results:
        if r.section in ("cvg", "phc"):
            assert formats.value_text(r.kind, r.value) in html
    assert "comparaisons-cvg" in html
    css = (reporting_pages.STYLE).read_text(encoding="utf-8")
    assert "@media print" in css and "page-break-after: always" in css
    only_phc = year.clients["coordinator"].get("/impact/rapport-annuel?annee=2024&programme=phc")
    assert only_phc.text.count('class="print-page"') == 2
    assert "— Convergence Paris</p>" in only_phc.text


def test_the_annual_report_pdf_is_printed_by_chromium(year):
    if not reporting_pages.Path(reporting_pages.CHROMIUM).exists():
        pytest.skip("Chromium introuvable dans /usr/bin/chromium")
    answer = year.clients["coordinator"].get("/impact/rapport-annuel.pdf?annee=2024")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.content.startswith(b"%PDF-")
    assert 'filename="rapport-annuel-2024-paris.pdf"' in answer.headers["content-disposition"]
    assert answer.content.count(b"/Type /Page") - answer.content.count(b"/Type /Pages") >= 3


def test_the_pdf_fails_in_french_without_chromium_or_when_it_hangs(year, monkeypatch, tmp_path):
    admin = year.clients["admin"]
    monkeypatch.setattr(reporting_pages, "CHROMIUM", str(tmp_path / "pas-de-chromium"))
    missing = admin.get("/impact/rapport-annuel.pdf?annee=2024")
    assert missing.status_code == 503
    assert "Chromium est introuvable" in missing.text
    stuck = tmp_path / "chromium-bloque"
    stuck.write_text("#!/bin/sh\nsleep 30\n")
    stuck.chmod(0o755)
    monkeypatch.setattr(reporting_pages, "CHROMIUM", str(stuck))
    monkeypatch.setattr(reporting_pages, "PDF_TIMEOUT_SECONDS", 0.5)
    hung = admin.get("/impact/rapport-annuel.pdf?annee=2024")
    assert hung.status_code == 504
    assert "n&#39;a pas pu être fabriqué à temps" in hung.text
