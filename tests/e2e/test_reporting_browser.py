"""Impact, pilotage and the annual report in Chromium: charts drawn with their tables, the
coordinator confined to their territory, the print layout one page per programme."""

from __future__ import annotations

import threading
import time
from datetime import date
from pathlib import Path

import pytest

from engine.domain.clock import Clock
from engine.intake.run import run_intake
from engine.network.seed import MAIL_DOMAIN, seed_network
from engine.network.simulate import simulate_year
from engine.reporting.report import write_snapshots
from engine.store.db import Database
from engine.store.migrate import upgrade
from engine.store.settings import Settings
from tests.e2e.conftest import CHROMIUM, _free_port, shot
from tests.web.world import PASSWORD

pytestmark = pytest.mark.browser

JAN_15 = date(2025, 1, 15)


@pytest.fixture(scope="module")
def served_year(tmp_path_factory):
    """Base URL of a network replayed through 2024 (scale 0.05), snapshotted on 15 January
    2025, served on loopback."""
    uvicorn = pytest.importorskip("uvicorn")
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium introuvable dans /usr/bin/chromium")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-impact') / 'year.db'}"
    upgrade(url)
    db = Database(url)
    settings = Settings(database_url=url, base_url=base)
    seed_network(
        db, scale=0.05, seed=5, clock=Clock.on_day(date(2024, 1, 1), running=False), entrants=True
    )
    run_intake(db, settings, clock=Clock.on_day(date(2024, 1, 1), running=False))
    simulate_year(
        db, settings, year=2024, clock=Clock.on_day(date(2024, 12, 31), hour=20, running=False)
    )
    write_snapshots(db, year=2024, clock=Clock.on_day(JAN_15, running=False))
    from web.app import create_app

    app = create_app(settings, db, Clock.on_day(JAN_15))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield base
    server.should_exit = True
    thread.join(timeout=10)
    db.dispose()


def _login(page, base: str, local: str) -> None:
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse électronique").fill(f"{local}@{MAIL_DOMAIN}")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}/tableau-de-bord")  # every role lands on its home page


def _charts_have_tables(page) -> int:
    """Every chart is an SVG image with a French label, followed by a table with rows."""
    charts = page.locator("figure.chart svg[role=img]")
    n = charts.count()
    for k in range(n):
        chart = charts.nth(k)
        assert chart.is_visible()
        assert chart.get_attribute("aria-label")
        box = chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 40
        table = chart.locator("xpath=ancestor::figure/following-sibling::div[1]//table")
        assert table.locator("tbody tr").count() >= 1
        assert table.locator("caption").inner_text()
    return n


def test_impact_as_the_national_admin(page, served_year):
    base = served_year
    _login(page, base, "admin")
    page.get_by_role("link", name="Impact", exact=True).click()
    page.wait_for_url(f"{base}/impact")
    assert page.locator("#perimetre").inner_text() == "Tout le réseau"
    assert "instantanés" in page.locator("#source").inner_text()
    assert _charts_have_tables(page) >= 10
    assert page.locator("#tableau-territoires-cvg tbody tr").count() >= 13
    tile = page.locator(".tile", has_text="Accès au logement quand").first
    tile.locator("summary").click()  # the definition opens without JavaScript
    assert "comparaison descriptive" in tile.locator(".definition p").inner_text()
    shot(page, "impact-admin")
    # pick a territory in the form: the page narrows to it
    page.get_by_label("Territoire", exact=True).select_option("lyon")
    page.get_by_role("button", name="Afficher").click()
    page.wait_for_url("**territoire=lyon**")
    assert page.locator("#perimetre").inner_text() == "Convergence Lyon"
    assert page.locator("#tableau-territoires-cvg").count() == 0
    with page.expect_download() as download:
        page.get_by_role("link", name="Télécharger tous les tableaux (XLSX)").click()
    assert download.value.suggested_filename == "impact-2024-lyon.xlsx"


def test_impact_as_a_coordinator_shows_their_territory_only(page, served_year):
    base = served_year
    _login(page, base, "coordination.paris.1")
    page.goto(f"{base}/impact?annee=2024")
    assert page.locator("#perimetre").inner_text() == "Convergence Paris"
    assert page.get_by_label("Territoire", exact=True).count() == 0
    assert page.locator("#tableau-territoires-cvg").count() == 0
    assert _charts_have_tables(page) >= 8
    text = page.locator("main").inner_text()
    assert "Convergence Lyon" not in text and "Tout le réseau" not in text
    shot(page, "impact-coordinateur")
    page.goto(f"{base}/impact?annee=2024&territoire=lyon")
    assert page.get_by_role("heading", name="Page introuvable").is_visible()


def test_pilotage_as_the_national_admin(page, served_year):
    base = served_year
    _login(page, base, "admin")
    page.get_by_role("link", name="Pilotage", exact=True).click()
    page.wait_for_url(f"{base}/pilotage")
    assert _charts_have_tables(page) >= 6
    for slug in ("ensemble", "etats", "domaines", "partenaires", "contingents", "territoires"):
        assert page.locator(f"#tableau-{slug} tbody tr").count() >= 1, slug
    shot(page, "pilotage-admin")


def test_the_annual_report_prints_one_page_per_programme(page, served_year):
    base = served_year
    _login(page, base, "admin")
    page.goto(f"{base}/impact?annee=2024")
    page.get_by_role("link", name="Rapport annuel imprimable").click()
    page.wait_for_url(f"{base}/impact/rapport-annuel?annee=2024")
    assert page.locator("section.print-page").count() == 3
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    breaks = page.eval_on_selector_all(
        "section.print-page", "els => els.map(e => getComputedStyle(e).breakAfter)"
    )
    assert breaks[:2] == ["page", "page"]
    shot(page, "rapport-annuel")
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF-")
