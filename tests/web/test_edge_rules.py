"""The smaller promises of the web edge, each a defect reproduced through a page or route:
login limits per IP and per (account, IP), the secret key, minimal partner lists, partner
link reads in the access log, confirmation messages that cannot be forged, mail subjects.
"""

from __future__ import annotations

import html
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from engine.access.auth import MAX_FAILURES, MAX_FAILURES_PER_IP, create_user
from engine.access.tokens import make_partner_token
from engine.domain.clock import Clock
from engine.store import models as m
from engine.store.db import unit_of_work
from engine.store.settings import Settings
from notifications.render import render as render_mail
from notifications.samples import SAMPLE_BASE_URL, sample_context
from tests.web.world import CLOCK, csrf_of, login
from web.app import create_app
from workflows.cli import app as cli

PASSWORD = "un-mot-de-passe-solide"


def _accounts(db, n: int = 3) -> list[str]:
    with unit_of_work(db) as s:
        s.add(m.Territory(id=1, code="paris", name="Convergence Paris", kind="convergence"))
    emails = [f"agent{i}@example.org" for i in range(n)]
    for e in emails:
        create_user(db, email=e, display_name=e, role="officer", password=PASSWORD,
                    territory_code="paris", domain="logement", clock=CLOCK)  # fmt: skip
    return emails


def _client(db, ip: str, clock: Clock = CLOCK) -> TestClient:
    return TestClient(create_app(Settings(database_url=db.url), db, clock), client=(ip, 40000))


def test_failures_from_one_address_do_not_lock_the_user_out_of_another(db):
    victim = _accounts(db, 1)[0]
    attacker = _client(db, "203.0.113.7")
    for _ in range(MAX_FAILURES):
        assert login(attacker, victim, "mauvais").status_code == 401
    assert login(attacker, victim, PASSWORD).status_code == 429  # locked for that address
    assert login(_client(db, "198.51.100.20"), victim, PASSWORD).status_code == 303


def test_one_address_cannot_spray_every_account(db):
    accounts = _accounts(db, 5)  # 4 failures each: under the per-account limit
    sprayer = _client(db, "203.0.113.9")
    tries = 0
    while tries < MAX_FAILURES_PER_IP:
        for email in accounts:
            if tries < MAX_FAILURES_PER_IP:
                login(sprayer, email, f"essai-{tries}")
                tries += 1
    blocked = login(sprayer, accounts[0], PASSWORD)
    assert blocked.status_code == 429 and "depuis votre poste" in html.unescape(blocked.text)
    # The window slides: 16 minutes later the same address may try again.
    later = _client(db, "203.0.113.9", Clock.fixed(CLOCK.now() + timedelta(minutes=16)))
    assert login(later, accounts[0], PASSWORD).status_code == 303


def test_serve_refuses_the_default_or_a_short_secret(monkeypatch):
    runner = CliRunner()
    monkeypatch.delenv("AIGUILLAGE_SECRET_KEY", raising=False)
    default = runner.invoke(cli, ["serve", "--port", "1"])
    assert default.exit_code == 2 and "AIGUILLAGE_SECRET_KEY" in default.output
    monkeypatch.setenv("AIGUILLAGE_SECRET_KEY", "court")
    short = runner.invoke(cli, ["serve", "--port", "1"])
    assert short.exit_code == 2 and "trop courte" in short.output


def test_a_partner_contact_lists_only_what_its_case_page_shows(clients, world):
    api = clients["partner"].get("/api/v1/referrals?state=all&limit=200").json()["items"]
    mine = next(i for i in api if i["id"] == world.target_id)
    assert mine["priority"] is None and mine["chantier"] is None and mine["programme"] is None
    page = html.unescape(clients["partner"].get("/file?etat=all").text)
    assert "Points" not in page and "Suivie par" not in page and "Programme" not in page
    officer = clients["officer"].get("/api/v1/referrals?state=all&limit=5").json()["items"]
    assert officer[0]["priority"] is not None  # staff keep their columns


def test_partner_link_views_are_in_the_access_log(app, world):
    token = make_partner_token(world.settings.secret_key.get_secret_value(),
                               referral_id=world.target_id, partner_id=world.partner_id,
                               now=world.clock.now())  # fmt: skip
    with world.db.sessions() as s:
        before = s.scalar(select(func.count()).select_from(m.AccessLog)
                          .where(m.AccessLog.user_id.is_(None)))  # fmt: skip
    assert TestClient(app).get(f"/partenaire/reponse/{token}").status_code == 200
    with world.db.sessions() as s:
        rows = s.scalars(select(m.AccessLog).where(m.AccessLog.user_id.is_(None))).all()
        assert len(rows) == before + 1
        assert rows[-1].reader.endswith("(lien signé)") and not rows[-1].with_identity


def test_confirmations_are_shown_only_after_a_real_action(clients, world):
    officer = clients["officer"]
    forged = html.unescape(officer.get(f"/orientations/{world.target_id}?fait=close").text)
    assert "Action enregistrée" not in forged
    assert "prise en charge" not in html.unescape(officer.get("/file?fait=take&n=99").text)
    assert "préférences sont enregistrées" not in html.unescape(
        officer.get("/preferences?enregistre=1").text
    )
    token = csrf_of(officer.get("/preferences").text)
    saved = officer.post("/preferences", data={"csrf_token": token}, follow_redirects=False)
    assert saved.status_code == 303
    assert "préférences sont enregistrées" in html.unescape(officer.get("/preferences").text)
    assert "préférences sont enregistrées" not in html.unescape(officer.get("/preferences").text)


def test_no_measure_next_to_a_reference_in_a_subject():
    msg = render_mail("slot_validated", sample_context("slot_validated"), base_url=SAMPLE_BASE_URL)
    assert "SAL-" in msg.subject and "(" not in msg.subject
    assert "—" not in msg.subject and "Bilan" not in msg.text


def test_every_message_is_refused_with_a_body_over_the_limit(world):
    small = create_app(Settings(database_url=world.db.url, max_body_bytes=1000), world.db,
                       world.clock)  # fmt: skip
    client = TestClient(small)
    big = client.post("/connexion", data={"email": "x" * 5000})
    assert big.status_code == 413 and "taille autorisée" in html.unescape(big.text)
    assert big.headers["x-content-type-options"] == "nosniff"
    assert login(TestClient(small), world.emails["officer"]).status_code == 303
