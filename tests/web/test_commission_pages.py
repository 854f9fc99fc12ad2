"""The commission pages as the coordination uses them — and as everyone else tries them — on
SQLite and PostgreSQL: the ranked lists of a run for the CDC Habitat pool, the decision
forms, the cascade seen from the page, scope and roles (404), ids out of range, NUL bytes,
missing CSRF tokens, stale forms and a decision someone else recorded first."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.allocation.review import mechanisms_sentence
from engine.allocation.run import run_allocation
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from tests.support.situations import NoSituation, waitlisted_for
from tests.web.world import World, csrf_of, login, world_per_database

UNITS = 2


def _two_flats(db: Database) -> None:
    """The commission pool (CDC Habitat, Paris and Seine-Saint-Denis) gets two flats."""
    with unit_of_work(db) as s:
        pool = s.scalar(select(m.SlotPool).where(m.SlotPool.commission.is_(True)))
        have = s.scalar(select(func.count()).where(m.SlotUnit.pool_id == pool.id))
        s.add_all(m.SlotUnit(pool_id=pool.id, unit_no=have + i) for i in range(1, UNITS - have + 1))
        pool.capacity = UNITS


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def cw(request) -> World:
    """A seeded network per database kind whose commission pool has lists from one run."""
    for world in world_per_database(request, _two_flats):
        with world.db.sessions() as s:
            pool_id = s.scalar(select(m.SlotPool.id).where(m.SlotPool.commission.is_(True)))
        for territory in ("paris", "seine-saint-denis"):
            while True:
                try:
                    waitlisted_for(world, pool_id, territory=territory)
                except NoSituation:
                    break
        report = run_allocation(world.db, world.settings, clock=world.clock)
        assert sum(report.commission_units.values()) == UNITS, report.as_dict()
        world.run_id, world.pool_id = report.run_id, pool_id  # type: ignore[attr-defined]
        yield world


def _client(world: World, role: str) -> TestClient:
    client = TestClient(world.app)  # type: ignore[attr-defined]
    assert login(client, world.emails[role]).status_code == 303
    return client


def _url(world: World) -> str:
    return f"/attributions/commissions/{world.run_id}/{world.pool_id}"  # type: ignore[attr-defined]


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _rows(world: World, unit_no: int = 1) -> list[m.AllocationProposal]:
    P = m.AllocationProposal
    with world.db.sessions() as s:
        return list(s.scalars(select(P).where(
            P.run_id == world.run_id, P.pool_id == world.pool_id,  # type: ignore[attr-defined]
            P.unit_no == unit_no).order_by(P.rank)).all())  # fmt: skip


def _statuses(world: World, unit_no: int = 1) -> list[str]:
    return [p.status for p in _rows(world, unit_no)]


def _post(client: TestClient, world: World, prop: m.AllocationProposal, decision: str, **data):  # type: ignore[no-untyped-def]
    token = csrf_of(client.get(_url(world)).text)
    form = {"csrf_token": token, "version": str(prop.version), "unit": str(prop.unit_no), **data}
    return client.post(f"{_url(world)}/{prop.id}/{decision}", data=form, follow_redirects=False)


def test_the_page_lists_each_unit_with_its_ranks_and_the_current_one(cw):
    coord = _client(cw, "coordinator")
    page = coord.get(_url(cw))
    assert page.status_code == 200
    text = _text(page.text)
    assert "Commission d'attribution" in text and "Paris, Seine-Saint-Denis" in text
    assert re.search(r'id="compte-en-commission">\s*2<', page.text)
    assert re.search(r'id="compte-attribues">\s*0<', page.text)
    with cw.db.sessions() as s:
        for unit_no in range(1, UNITS + 1):
            rows = _rows(cw, unit_no)
            assert f'id="unite-{unit_no}"' in page.text
            current = page.text.split(f'id="rang-en-cours-{unit_no}"', 1)[1].split("</article>")[0]
            first = s.get(m.Salarie, s.get(m.Referral, rows[0].referral_id).salarie_id)
            assert f"Rang 1 en cours d'examen : {first.reference}" in _text(current)
            assert f'value="{rows[0].version}"' in current and 'name="csrf_token"' in current
            assert "Place proposée" in _text(current)  # not "attribuée" before the commission
            for p in rows:
                ref = s.get(m.Referral, p.referral_id)
                assert s.get(m.Salarie, ref.salarie_id).reference in page.text
                assert f'id="rang-{unit_no}-{p.rank}"' in page.text
        # Never a name: the page shows pseudonymous references only.
        for p in _rows(cw):
            ident = s.get(m.SalarieIdentity, s.get(m.Referral, p.referral_id).salarie_id)
            assert ident.last_name not in page.text
    assert 'aria-current="true"' in page.text
    # The Attributions page links the commission with its counts.
    review = coord.get("/attributions").text
    assert f'href="{_url(cw)}"' in review
    row = review.split('<tr class="commission">', 1)[1].split("</tr>")[0]
    assert re.findall(r"<td>(\d+)</td>", row) == ["0", "2", "0"]
    # A rang 1 of Paris is on the Paris review too, but decided on the commission's page.
    with cw.db.sessions() as s:
        paris = s.scalar(select(m.Territory.id).where(m.Territory.code == "paris"))
        for unit_no in range(1, UNITS + 1):
            ref = s.get(m.Referral, _rows(cw, unit_no)[0].referral_id)
            link = f"{_url(cw)}#unite-{unit_no}"
            assert (link in review) == (ref.territory_id == paris)
            assert f"/attributions/{_rows(cw, unit_no)[0].id}/valider" not in review


@pytest.mark.parametrize("role", ["coordinator_other", "officer", "cip", "partner"])
def test_out_of_scope_and_other_roles_get_the_same_404(cw, role):
    client = _client(cw, role)
    assert client.get(_url(cw)).status_code == 404
    prop = _rows(cw)[0]
    token = csrf_of(client.get("/tableau-de-bord").text)
    for decision in ("attribue", "refus_candidat"):
        done = client.post(f"{_url(cw)}/{prop.id}/{decision}",
                           data={"csrf_token": token, "version": str(prop.version),
                                 "reason": "unreachable"}, follow_redirects=False)  # fmt: skip
        assert done.status_code == 404
    assert _statuses(cw)[0] == "proposed"


def test_ids_out_of_range_unknown_decisions_and_foreign_proposals_are_404(cw):
    coord = _client(cw, "coordinator")
    run_id, pool_id = cw.run_id, cw.pool_id  # type: ignore[attr-defined]
    for path in (f"/attributions/commissions/0/{pool_id}",
                 f"/attributions/commissions/{run_id}/{2**63}",
                 f"/attributions/commissions/{run_id}/-1",
                 f"/attributions/commissions/{run_id + 1000}/{pool_id}",
                 f"/attributions/commissions/{run_id}/{pool_id + 1}"):  # fmt: skip
        assert coord.get(path).status_code == 404, path
    prop = _rows(cw)[0]
    token = csrf_of(coord.get(_url(cw)).text)
    form = {"csrf_token": token, "version": str(prop.version)}
    for path in (f"{_url(cw)}/{prop.id}/peut-etre",
                 f"{_url(cw)}/{2**63}/attribue",
                 f"/attributions/commissions/{run_id}/{pool_id + 1}/{prop.id}/attribue"):  # fmt: skip
        assert coord.post(path, data=form, follow_redirects=False).status_code == 404, path
    with cw.db.sessions() as s:  # an ordinary proposal is not a commission's
        ordinary = s.scalar(select(m.AllocationProposal).where(
            m.AllocationProposal.rank.is_(None)).limit(1))  # fmt: skip
    if ordinary is not None:
        path = (
            f"/attributions/commissions/{ordinary.run_id}/{ordinary.pool_id}/{ordinary.id}/attribue"
        )
        assert coord.post(path, data=form, follow_redirects=False).status_code == 404
    assert _statuses(cw)[0] == "proposed"


def test_csrf_nul_bytes_bad_reasons_and_stale_forms_change_nothing(cw):
    coord = _client(cw, "coordinator")
    prop = _rows(cw)[0]
    no_token = coord.post(f"{_url(cw)}/{prop.id}/attribue", data={"version": str(prop.version)},
                          follow_redirects=False)  # fmt: skip
    assert no_token.status_code == 403
    nul = _post(coord, cw, prop, "refus_commission", motif="other", note="pièce\x00manquante")
    assert nul.status_code == 422 and "octet nul" in html.unescape(nul.text)
    missing = _post(coord, cw, prop, "refus_candidat")
    assert missing.status_code == 422
    assert "Choisissez le motif du refus du candidat" in _text(missing.text)
    unknown = _post(coord, cw, prop, "refus_commission", motif="no_show")
    assert unknown.status_code == 422 and "inconnu" in _text(unknown.text)
    other = _post(coord, cw, prop, "refus_commission", motif="other")
    assert other.status_code == 422 and "précision" in _text(other.text)
    token = csrf_of(coord.get(_url(cw)).text)
    stale = coord.post(f"{_url(cw)}/{prop.id}/attribue",
                       data={"csrf_token": token, "version": str(prop.version + 3)})  # fmt: skip
    assert stale.status_code == 409
    assert "modifiée par quelqu'un d'autre entre-temps" in _text(stale.text)
    no_version = coord.post(f"{_url(cw)}/{prop.id}/attribue", data={"csrf_token": token})
    assert no_version.status_code == 409
    later = _rows(cw)[1]  # rang 2 waits its turn
    early = _post(coord, cw, later, "attribue")
    assert early.status_code == 422 and "pas encore examiné" in _text(early.text)
    assert _statuses(cw) == ["proposed"] + ["shortlisted"] * (len(_rows(cw)) - 1)
    assert _rows(cw)[0].version == prop.version


def test_a_refusal_moves_the_unit_to_rang_2_and_a_late_second_decision_is_told(cw):
    coord = _client(cw, "coordinator")
    admin = _client(cw, "admin")
    rows = _rows(cw)
    seen_by_admin = rows[0]  # the admin loaded the page too, with this version
    done = _post(coord, cw, rows[0], "refus_candidat", reason="declined_by_person")
    assert done.status_code == 303 and done.headers["location"].endswith("#unite-1")
    page = coord.get(done.headers["location"])
    text = _text(page.text)
    assert "Refus du candidat enregistré au rang 1" in text
    assert "Passage automatique au rang 2" in text
    assert _statuses(cw)[:2] == ["declined", "proposed"]
    current = page.text.split('id="rang-en-cours-1"', 1)[1].split("</article>")[0]
    assert "Rang 2 en cours d'examen" in _text(current)
    history = page.text.split('id="unite-1"', 1)[1].split("</section>")[0]
    assert "Rang 1" in _text(history) and "Refus de la personne" in _text(history)
    # The national team, on the page it loaded before, decides on rang 1: told, not applied.
    token = csrf_of(admin.get(_url(cw)).text)
    late = admin.post(f"{_url(cw)}/{seen_by_admin.id}/attribue",
                      data={"csrf_token": token, "version": str(seen_by_admin.version)})  # fmt: skip
    assert late.status_code == 409
    assert "déjà été enregistrée" in _text(late.text)
    assert _statuses(cw)[:2] == ["declined", "proposed"]
    # Rang 2 attributed: the unit is consumed, the counts follow.
    rows = _rows(cw)
    done = _post(coord, cw, rows[1], "attribue")
    assert done.status_code == 303
    assert _statuses(cw)[1] == "validated"
    assert all(st in ("declined", "validated", "withdrawn") for st in _statuses(cw))
    page = coord.get(_url(cw)).text
    assert re.search(r'id="compte-attribues">\s*1<', page)
    assert re.search(r'id="compte-en-commission">\s*1<', page)


def test_the_mechanisms_side_by_side_on_the_attributions_page(cw):
    with unit_of_work(cw.db) as s:
        run = s.get(m.AllocationRun, cw.run_id)  # type: ignore[attr-defined]
        run.stats = {**run.stats, "mechanisms": {
            "optimal_weight": 4 * 1200 + 3, "optimal_served": 56, "stable_weight": 4 * 1150,
            "stable_served": 54, "optimal_blocking_pairs": 3, "weight_ratio": 0.9578}}  # fmt: skip
        sentence = mechanisms_sentence(run)
    assert sentence == (
        "Optimum : 1\u202f200 points, 56 personnes ; appariement stable : 1\u202f150 points, "
        "54 personnes ; coût de la stabilité : 50 points (4,2 %) et 2 personnes servies en "
        "moins ; paires bloquantes de l'optimum : 3."
    )
    page = _client(cw, "coordinator").get("/attributions").text
    assert html.escape(sentence, quote=False).replace("'", "&#39;") in page
